"""What a simulated vLLM server serves, how its engine is configured, and the GPU it "runs" on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GIB = 1 << 30

_DTYPE_BYTES = {"float16": 2, "half": 2, "bfloat16": 2, "float32": 4, "float": 4, "auto": 2}


class EngineConfigError(ValueError):
    """A `vllm:` map (or an engine setting) vLLM would refuse to start with."""


@dataclass(frozen=True)
class ServedModel:
    """The model a pod serves. `served_name` is the id in /v1/models and the `model_name` metric label."""

    served_name: str
    hf_id: str
    max_model_len: int
    """The model's own context limit (max_position_embeddings)."""
    weights_bytes: int
    kv_bytes_per_token: int
    """2 (K and V) × layers × KV heads × head dim × dtype bytes."""
    parameters: float = 0.0
    """Parameter count; 0 derives it from `weights_bytes` at 2 bytes per parameter."""
    vocab_size: int = 32000

    def parameter_count(self) -> float:
        return self.parameters if self.parameters > 0 else self.weights_bytes / 2


@dataclass(frozen=True)
class GpuPerf:
    """The GPUs of the node the pod runs on (a whole VM SKU: `count` GPUs of one model)."""

    name: str
    count: int
    memory_gib_per_gpu: float
    memory_bandwidth_gbps: float
    """Per GPU, in GB/s (10^9 bytes per second)."""
    fp16_tflops: float
    """Dense FP16 tensor throughput per GPU, in TFLOP/s."""


@dataclass(frozen=True)
class EngineConfig:
    """The engine arguments KAITO passes to vLLM (the `vllm:` map of `inference_config.yaml`)."""

    max_model_len: int
    max_num_seqs: int = 256
    gpu_memory_utilization: float = 0.9
    dtype: str = "float16"
    tensor_parallel_size: int = 1
    block_size: int = 16
    enable_prefix_caching: bool = False
    enable_chunked_prefill: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Flags the simulation accepts but does not model (vLLM has hundreds), kebab-case."""

    def __post_init__(self) -> None:
        _check_int("max-model-len", self.max_model_len, minimum=1)
        _check_int("max-num-seqs", self.max_num_seqs, minimum=1)
        _check_int("tensor-parallel-size", self.tensor_parallel_size, minimum=1)
        if self.block_size not in (1, 8, 16, 32, 64, 128):
            raise EngineConfigError(
                f"vllm engine argument block-size: {self.block_size!r} is not a valid KV-cache block size; "
                "valid values are 1, 8, 16, 32, 64, 128 (vLLM's default is 16). Fix the `vllm:` map of the "
                "inference ConfigMap (key inference_config.yaml)."
            )
        util = self.gpu_memory_utilization
        if isinstance(util, bool) or not isinstance(util, int | float) or not 0 < util <= 1:
            raise EngineConfigError(
                f"vllm engine argument gpu-memory-utilization: {util!r} is not a fraction of GPU memory; "
                "it must be a number in (0, 1], e.g. 0.9. Fix the `vllm:` map of the inference ConfigMap "
                "(key inference_config.yaml)."
            )
        if self.dtype not in _DTYPE_BYTES:
            raise EngineConfigError(
                f"vllm engine argument dtype: {self.dtype!r} is not a vLLM dtype; valid values are "
                f"{', '.join(sorted(_DTYPE_BYTES))}. Fix the `vllm:` map of the inference ConfigMap "
                "(key inference_config.yaml); T4 GPUs need float16 (no bfloat16 support)."
            )

    @property
    def dtype_bytes(self) -> int:
        return _DTYPE_BYTES[self.dtype]

    @classmethod
    def from_vllm_map(cls, data: Mapping[str, Any], *, default_max_model_len: int) -> EngineConfig:
        """Parse a `vllm:` map (kebab-case keys as vLLM's CLI flags; snake_case is accepted like vLLM does).

        `default_max_model_len` is the model's own limit, used when the map does not set `max-model-len`.
        """
        if not isinstance(data, Mapping):
            raise EngineConfigError(
                f"the `vllm:` section of inference_config.yaml must be a map of engine arguments, got "
                f"{type(data).__name__} {data!r}; write e.g. `vllm: {{max-model-len: 4096, max-num-seqs: 64}}`."
            )
        values = {str(key).replace("_", "-"): value for key, value in data.items()}
        known: dict[str, Any] = {}
        for key, attr in _FLAGS.items():
            if key in values:
                known[attr] = values.pop(key)
        for attr in ("enable_prefix_caching", "enable_chunked_prefill"):
            if attr in known and not isinstance(known[attr], bool):
                flag = attr.replace("_", "-")
                raise EngineConfigError(
                    f"vllm engine argument {flag}: {known[attr]!r} is not a boolean; write true or false."
                )
        if "dtype" in known and not isinstance(known["dtype"], str):
            raise EngineConfigError(
                f"vllm engine argument dtype: {known['dtype']!r} is not a string; valid values are "
                f"{', '.join(sorted(_DTYPE_BYTES))}."
            )
        known.setdefault("max_model_len", default_max_model_len)
        return cls(**known, extra=values)


_FLAGS = {
    "max-model-len": "max_model_len",
    "max-num-seqs": "max_num_seqs",
    "gpu-memory-utilization": "gpu_memory_utilization",
    "dtype": "dtype",
    "tensor-parallel-size": "tensor_parallel_size",
    "block-size": "block_size",
    "enable-prefix-caching": "enable_prefix_caching",
    "enable-chunked-prefill": "enable_chunked_prefill",
}


def _check_int(flag: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise EngineConfigError(
            f"vllm engine argument {flag}: {value!r} is not valid; it must be an integer >= {minimum}. "
            "Fix the `vllm:` map of the inference ConfigMap (key inference_config.yaml)."
        )
