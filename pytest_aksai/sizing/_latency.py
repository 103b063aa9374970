"""The GPU roofline that paces the simulated vLLM engine, and the latency and throughput it predicts.

One engine step runs every scheduled sequence once: a newly admitted sequence is prefilled (its whole
prompt, no chunked prefill) and gets its first token; every other running sequence decodes one token.
A step lasts

    STEP_OVERHEAD_S + max(FLOPs / (fp16 FLOP/s × COMPUTE_EFFICIENCY), bytes / (bytes/s × BANDWIDTH_EFFICIENCY))

with FLOPs = 2 × parameters × tokens processed in the step and bytes = the weights (read once per step)
plus the KV cache of every running sequence; with tensor parallelism the rates scale by
TP × TENSOR_PARALLEL_EFFICIENCY. The simulated model server (`pytest_aksai.sim`) paces itself with
`Roofline.step_seconds`; `predict` turns the same step time into steady-state figures for the recommender,
so a recommendation and the simulated cluster agree by construction. Both are estimates from datasheet
figures and efficiency factors, not measurements: docs/explanation/sizing.md states their limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

COMPUTE_EFFICIENCY = 0.5
"""Share of peak FP16 tensor throughput a prefill reaches (typical model FLOPs utilisation)."""
BANDWIDTH_EFFICIENCY = 0.75
"""Share of peak memory bandwidth a decode step reaches."""
TENSOR_PARALLEL_EFFICIENCY = 0.85
"""Per-GPU scaling when a model is split over several GPUs (all-reduce per layer costs the rest)."""
STEP_OVERHEAD_S = 0.002
"""Scheduler, sampling and kernel-launch time per step."""
LATENCY_QUANTILE = 0.95
"""The quantile `predict` reports TTFT and ITL at."""


@dataclass(frozen=True)
class Roofline:
    """The rates of one vLLM engine: `tensor_parallel_size` GPUs serving one copy of the model."""

    parameters: float
    weights_bytes: float
    """Weights of the whole model as loaded (after quantization)."""
    kv_bytes_per_token: float
    """KV cache of one token over all layers and all GPUs of the engine."""
    flops_per_s: float
    bytes_per_s: float

    @classmethod
    def of(
        cls,
        *,
        parameters: float,
        weights_bytes: float,
        kv_bytes_per_token: float,
        dense_fp16_tflops: float,
        bandwidth_gbs: float,
        tensor_parallel_size: int,
    ) -> Roofline:
        """The engine's effective rates from per-GPU datasheet figures (TFLOP/s and GB/s of one GPU)."""
        if tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be at least 1, got {tensor_parallel_size}")
        scale = tensor_parallel_size * (TENSOR_PARALLEL_EFFICIENCY if tensor_parallel_size > 1 else 1.0)
        return cls(
            parameters=parameters,
            weights_bytes=weights_bytes,
            kv_bytes_per_token=kv_bytes_per_token,
            flops_per_s=dense_fp16_tflops * 1e12 * COMPUTE_EFFICIENCY * scale,
            bytes_per_s=bandwidth_gbs * 1e9 * BANDWIDTH_EFFICIENCY * scale,
        )

    def step_seconds(self, *, prefill_tokens: float, decode_seqs: float, kv_tokens: float) -> float:
        """Duration of one engine step, in seconds of GPU time."""
        flops = 2.0 * self.parameters * (prefill_tokens + decode_seqs)
        read_bytes = self.weights_bytes + kv_tokens * self.kv_bytes_per_token
        return STEP_OVERHEAD_S + max(flops / self.flops_per_s, read_bytes / self.bytes_per_s)


@dataclass(frozen=True)
class Prediction:
    """Steady-state figures of one engine running `batch` sequences of prompt + completion tokens."""

    batch: int
    ttft_p95_s: float
    itl_p95_s: float
    mean_step_s: float
    output_tokens_per_s: float
    tokens_per_s: float
    """Prompt and completion tokens per second (how the sizing guide counts throughput)."""


def poisson_quantile(mean: float, quantile: float) -> int:
    """The smallest k with P(Poisson(mean) ≤ k) ≥ quantile."""
    k, term = 0, math.exp(-mean)
    cumulative = term
    while cumulative < quantile:
        k += 1
        term *= mean / k
        cumulative += term
    return k


def predict(roofline: Roofline, *, batch: int, prompt_tokens: int, completion_tokens: int) -> Prediction:
    """What an engine holding `batch` sequences at all times delivers.

    Each sequence lasts `completion_tokens` steps, so on average batch ÷ completion sequences are admitted
    (and prefilled) per step; admissions are taken as Poisson, and the p95 step is the one with the p95
    number of prompts to prefill. The mean step sees the mean prefill load and the KV cache at the mean
    context (prompt + completion ÷ 2); the p95 step sees the full context (prompt + completion).
    ITL p95 = the p95 step. TTFT p95 = waiting out a p95 step, then the step that prefills the prompt
    (at least one prompt: the request's own).
    """
    if batch < 1 or prompt_tokens < 1 or completion_tokens < 1:
        raise ValueError(
            f"batch, prompt and completion must be positive: {batch}, {prompt_tokens}, {completion_tokens}"
        )
    admitted_per_step = batch / completion_tokens
    mean_step = roofline.step_seconds(
        prefill_tokens=admitted_per_step * prompt_tokens,
        decode_seqs=max(batch - admitted_per_step, 0.0),
        kv_tokens=batch * (prompt_tokens + completion_tokens / 2),
    )
    full_context = batch * (prompt_tokens + completion_tokens)

    def step_with(prompts: int) -> float:
        return roofline.step_seconds(
            prefill_tokens=prompts * prompt_tokens,
            decode_seqs=max(batch - prompts, 0),
            kv_tokens=full_context,
        )

    prompts_p95 = poisson_quantile(admitted_per_step, LATENCY_QUANTILE)
    itl = step_with(prompts_p95)
    output_tps = batch / mean_step
    return Prediction(
        batch=batch,
        ttft_p95_s=itl + step_with(max(1, prompts_p95)),
        itl_p95_s=itl,
        mean_step_s=mean_step,
        output_tokens_per_s=output_tps,
        tokens_per_s=output_tps * (prompt_tokens + completion_tokens) / completion_tokens,
    )
