"""KAITO model presets as the simulated KAITO controller runs them, and what a preset pod's vLLM process does.

A preset is a model of the sizing catalog that names a `kaito_preset`; the numbers (weights, KV bytes per
token, context limit) come from `pytest_aksai.sizing`, the GPU figures from its SKU catalog. KAITO (v0.5 and
later) runs every vLLM preset from its base image, downloading the weights from Hugging Face at start, with
`python3 /workspace/vllm/inference_api.py` reading the engine arguments of the mounted inference ConfigMap.

Cold start of a model pod, in cluster seconds (a first start on a fresh node):
image pull of the multi-GB base image, then `load_seconds`: weights download at `HF_DOWNLOAD_BYTES_PER_S`,
weights read into GPU memory at `GPU_LOAD_BYTES_PER_S`, then vLLM's engine start (profiling run, KV-cache
allocation, CUDA graph capture) of `ENGINE_START_SECONDS`.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from pytest_aksai.sim._addons.vllm._server import EngineConfig, EngineConfigError, GpuPerf, ServedModel
from pytest_aksai.sizing import GpuSku, ModelSpec, default_catalog

KAITO_BASE_IMAGE = "mcr.microsoft.com/aks/kaito/kaito-base:0.4.2"
BASE_IMAGE_PULL_SECONDS = 150.0
"""First pull of the base image (about 10 GB of layers) on a fresh node."""
INFERENCE_PORT = 5000
INFERENCE_CONFIG_KEY = "inference_config.yaml"
CONFIG_MOUNT_PATH = "/mnt/config"
INFERENCE_API = "/workspace/vllm/inference_api.py"

HF_DOWNLOAD_BYTES_PER_S = 250e6
GPU_LOAD_BYTES_PER_S = 2e9
ENGINE_START_SECONDS = 35.0
OOM_AFTER_FRACTION = 0.8
"""With `kaito-inference-oom`, the process is killed this far into loading (weights moving to the GPU)."""


class UnknownPresetError(LookupError):
    pass


class InferenceConfigError(ValueError):
    """The inference ConfigMap is missing or invalid; the message is what KAITO's webhook answers."""


@dataclass(frozen=True)
class Preset:
    name: str
    model: ModelSpec

    @property
    def hf_id(self) -> str:
        return self.model.hf_id

    @property
    def served_name(self) -> str:
        """vLLM's served model name: the last segment of the Hugging Face repo id, lowercased."""
        return self.model.hf_id.rsplit("/", 1)[-1].lower()

    @property
    def token_limit(self) -> int:
        """KAITO's ModelTokenLimit: the model's own context window."""
        return self.model.max_context

    @property
    def weights_bytes(self) -> int:
        return self.model.weights_bytes


def presets() -> dict[str, Preset]:
    return {m.kaito_preset: Preset(m.kaito_preset, m) for m in default_catalog().models if m.kaito_preset}


def preset(name: str) -> Preset:
    table = presets()
    try:
        return table[name.strip().lower()]
    except KeyError:
        raise UnknownPresetError(
            f"unsupported preset name {name!r} in the Workspace's `inference.preset.name`; the simulated KAITO "
            f"knows: {', '.join(sorted(table))}. Use one of these, or add the model with its `kaito_preset` to the "
            "sizing catalog."
        ) from None


def preset_for_hf_id(hf_id: str) -> Preset | None:
    for entry in presets().values():
        if entry.hf_id.lower() == hf_id.lower():
            return entry
    return None


def served_model(entry: Preset) -> ServedModel:
    model = entry.model
    return ServedModel(
        served_name=entry.served_name,
        hf_id=model.hf_id,
        max_model_len=model.max_context,
        weights_bytes=model.weights_bytes,
        kv_bytes_per_token=model.kv_bytes_per_token,
        parameters=float(model.parameters),
    )


def gpu_perf(sku: GpuSku) -> GpuPerf:
    return GpuPerf(
        name=sku.gpu_model,
        count=sku.gpu_count,
        memory_gib_per_gpu=sku.vram_gib,
        memory_bandwidth_gbps=sku.bandwidth_gbs,
        fp16_tflops=sku.dense_fp16_tflops,
    )


def load_seconds(entry: Preset) -> float:
    """Cluster seconds from the container's start until vLLM answers /health."""
    weights = float(entry.weights_bytes)
    return weights / HF_DOWNLOAD_BYTES_PER_S + weights / GPU_LOAD_BYTES_PER_S + ENGINE_START_SECONDS


def inference_command(entry: Preset, gpu_count: int, *, with_config: bool) -> list[str]:
    """The main container's command, as KAITO writes it: a shell running inference_api.py."""
    args = [
        "python3",
        INFERENCE_API,
        f"--model={entry.hf_id}",
        f"--served-model-name={entry.served_name}",
        "--download-dir=/workspace/weights",
        f"--tensor-parallel-size={gpu_count}",
        f"--port={INFERENCE_PORT}",
        "--trust-remote-code",
    ]
    if with_config:
        args.append(f"--kaito-config-file={CONFIG_MOUNT_PATH}/{INFERENCE_CONFIG_KEY}")
    return ["/bin/sh", "-c", shlex.join(args)]


def parse_inference_config(configmap: Mapping[str, Any] | None, name: str, namespace: str) -> dict[str, Any]:
    """The `vllm:` map of an inference ConfigMap, checked as KAITO's webhook checks it."""
    if configmap is None:
        raise InferenceConfigError(
            f"ConfigMap '{name}' specified in 'config' not found in namespace '{namespace}'"
        )
    data = configmap.get("data") or {}
    if INFERENCE_CONFIG_KEY not in data:
        raise InferenceConfigError(f"missing field(s): {INFERENCE_CONFIG_KEY} in ConfigMap")
    try:
        parsed = yaml.safe_load(data[INFERENCE_CONFIG_KEY]) or {}
    except yaml.YAMLError as exc:
        raise InferenceConfigError(
            f"Failed to parse {INFERENCE_CONFIG_KEY}: {exc}: {INFERENCE_CONFIG_KEY}"
        ) from None
    if not isinstance(parsed, Mapping):
        raise InferenceConfigError(
            f"Failed to parse {INFERENCE_CONFIG_KEY}: the document is not a map: {INFERENCE_CONFIG_KEY}"
        )
    vllm = parsed.get("vllm") or {}
    if not isinstance(vllm, Mapping):
        raise InferenceConfigError(
            f"Failed to parse {INFERENCE_CONFIG_KEY}: `vllm` must be a map of engine "
            f"arguments, got {vllm!r}: {INFERENCE_CONFIG_KEY}"
        )
    return {str(k): v for k, v in vllm.items()}


def engine_config(vllm: Mapping[str, Any], entry: Preset) -> EngineConfig:
    """Engine arguments for the preset; raises InferenceConfigError with KAITO's and vLLM's messages."""
    raw = vllm.get("max-model-len", vllm.get("max_model_len"))
    if raw is not None and str(raw).strip():
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise InferenceConfigError(
                f"invalid value: max-model-len must be an integer: strconv.Atoi: parsing {str(raw)!r}: invalid "
                "syntax: max-model-len"
            ) from None
        if value > entry.token_limit:
            raise InferenceConfigError(
                f"invalid value: max-model-len {value} exceeds model's maximum supported context window "
                f"{entry.token_limit} (ModelTokenLimit): max-model-len"
            )
    try:
        return EngineConfig.from_vllm_map(vllm, default_max_model_len=entry.token_limit)
    except EngineConfigError as exc:
        raise InferenceConfigError(str(exc)) from None
