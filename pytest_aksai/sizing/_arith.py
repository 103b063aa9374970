"""The sizing formulas. Pure functions; docs/explanation/sizing.md explains each one."""

from __future__ import annotations

import math

GIB = 1024**3
WEIGHT_MARGIN = 1.3
"""Weights must fit usable VRAM with 30% to spare (activations, CUDA graphs, fragmentation)."""
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
"""vLLM's default --gpu-memory-utilization."""
DEFAULT_MAX_NUM_SEQS = 256
"""vLLM's default --max-num-seqs."""
DEFAULT_RUNTIME_OVERHEAD_GIB = 1.0
"""Per-GPU memory vLLM uses besides weights and KV cache (CUDA context, activation peak, graphs)."""
DEFAULT_FIXED_DAILY_USD = 8.88
"""Fixed daily cost of a scale-to-zero deployment: the always-on system node pool ($0.37/hour × 24)."""

WEIGHT_BYTES_PER_PARAM: dict[str, float] = {
    "int4": 0.5,
    "awq": 0.5,
    "awq_marlin": 0.5,
    "gptq": 0.5,
    "gptq_marlin": 0.5,
    "marlin": 0.5,
    "bitsandbytes": 0.5,
    "int8": 1.0,
    "fp8": 1.0,
    "fp16": 2.0,
    "bf16": 2.0,
}
DTYPE_BYTES: dict[str, float] = {
    "float16": 2.0,
    "half": 2.0,
    "fp16": 2.0,
    "bfloat16": 2.0,
    "bf16": 2.0,
    "float32": 4.0,
    "float": 4.0,
}
KV_CACHE_DTYPE_BYTES: dict[str, float] = {"fp8": 1.0, "fp8_e4m3": 1.0, "fp8_e5m2": 1.0, "fp8_inc": 1.0}


def weights_bytes(parameters: int, bytes_per_param: float) -> float:
    """Weights = parameters × bytes per parameter."""
    return parameters * bytes_per_param


def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int, kv_dtype_bytes: float) -> float:
    """KV bytes per token = 2 (K and V) × layers × KV heads × head dim × KV dtype bytes."""
    return 2 * layers * kv_heads * head_dim * kv_dtype_bytes


def kv_budget_bytes(vram_bytes: float, utilization: float, weights: float, overhead_bytes: float) -> float:
    """KV budget = VRAM × gpu-memory-utilization − weights − runtime overhead (may be negative)."""
    return vram_bytes * utilization - weights - overhead_bytes


def sequences_that_fit(kv_budget: float, kv_per_token: float, max_model_len: int) -> int:
    """Whole sequences of max-model-len tokens that the KV budget holds."""
    if kv_budget <= 0:
        return 0
    return int(kv_budget // kv_per_token) // max_model_len


def next_power_of_two(n: int) -> int:
    if n < 1:
        raise ValueError(f"next_power_of_two needs a positive integer, got {n}")
    return 1 << (n - 1).bit_length()


def recommended_max_model_len(p95_prompt: int, p95_completion: int) -> int:
    """2 × p95(prompt + completion), rounded up to a power of two."""
    return next_power_of_two(2 * (p95_prompt + p95_completion))


def replicas_for(peak_concurrency: int, max_num_seqs: int) -> int:
    """Replicas = ceil(peak concurrency / max-num-seqs)."""
    if max_num_seqs < 1:
        raise ValueError(f"max_num_seqs must be at least 1, got {max_num_seqs}")
    return max(1, math.ceil(peak_concurrency / max_num_seqs))


def selfhost_cost_per_token(gpu_price_per_hour: float, throughput_tokens_per_s: float) -> float:
    """Self-hosted cost per token = GPU $/hour ÷ (throughput tok/s × 3600)."""
    return gpu_price_per_hour / (throughput_tokens_per_s * 3600)


def breakeven_requests_per_day(
    fixed_daily: float, api_cost_per_request: float, selfhost_cost_per_request: float
) -> float | None:
    """Fixed daily overhead ÷ (API cost per request − self-hosted cost per request).

    None when self-hosting costs at least as much per request as the API: there is no break-even.
    """
    margin = api_cost_per_request - selfhost_cost_per_request
    if margin <= 0:
        return None
    return fixed_daily / margin


def kaito_fixed_daily(
    system_fixed_daily: float, gpu_price_per_hour: float, always_on_nodes: int = 1
) -> float:
    """KAITO keeps its GPU node(s) up: the system pool plus 24 h of each always-on GPU node."""
    return system_fixed_daily + 24 * gpu_price_per_hour * always_on_nodes
