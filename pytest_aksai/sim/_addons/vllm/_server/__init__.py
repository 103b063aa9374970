"""A vLLM-compatible OpenAI server per ready model pod of the simulated cluster (see docs/model-server.md)."""

from ._app import DEFAULT_VLLM_VERSION, LEGACY_VLLM_VERSION, create_app
from ._config import EngineConfig, EngineConfigError, GpuPerf, ServedModel
from ._engine import SimEngine, kv_cache_blocks
from ._server import ModelServer

__all__ = [
    "DEFAULT_VLLM_VERSION",
    "LEGACY_VLLM_VERSION",
    "EngineConfig",
    "EngineConfigError",
    "GpuPerf",
    "ModelServer",
    "ServedModel",
    "SimEngine",
    "create_app",
    "kv_cache_blocks",
]
