"""Cross-checks of a load run: the client against the server's own histogram, the sizing model against reality,
and the break-even from the measured throughput.

Tolerances, and why:
- TTFT, client mean − server mean (exact: the histogram's `_sum` / `_count` over the window, no bucket
  error) ≤ max(TTFT_GAP_MIN_MS, TTFT_GAP_SHARE × server mean), and ≥ −TTFT_GAP_MIN_MS. The client's TTFT
  also holds the network, any proxy and the SSE write; on a direct route that is a few ms. More means
  requests queue somewhere between client and engine (an ingress, a port-forward, the client itself).
- Queue onset: the server's concurrency when requests wait (median of `num_requests_running` in the
  samples where `num_requests_waiting` > 0, taken as "stays above zero" when that is half the samples or
  more: an arrival waits up to one engine step even on an idle server) within max(1, 10 %) of what sizing
  predicts: min(max-num-seqs, KV tokens ÷ the mean context of a request in 16-token blocks).
- KV-cache usage: the mean of the window's samples within max(0.05, 25 %) of the prediction: the sequences
  the server ran (its mean `num_requests_running`, at most the predicted capacity) × their mean context
  (prompt + completion ÷ 2, in blocks) ÷ KV tokens. Prefix caching, chunked
  prefill and block rounding move a real vLLM by a few percent, not by a factor.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_aksai.sizing import (
    Catalog,
    FitReport,
    ServingConfig,
    breakeven_requests_per_day,
    evaluate,
    kaito_fixed_daily,
    selfhost_cost_per_token,
)

from ._result import LoadResult
from ._server_window import ServerWindow

TTFT_GAP_MIN_MS = 25.0
TTFT_GAP_SHARE = 0.10
QUEUED_SHARE = 0.5
ONSET_TOLERANCE_SHARE = 0.10
KV_TOLERANCE_ABS = 0.05
KV_TOLERANCE_SHARE = 0.25
BLOCK_SIZE = 16
"""vLLM's default KV block size, in tokens."""


def serving_config(vllm: Mapping[str, Any]) -> ServingConfig:
    """The memory-relevant engine arguments of a `vllm:` map (kebab- or snake-case, as vLLM accepts)."""
    values = {str(k).replace("_", "-"): v for k, v in vllm.items()}

    def number(key: str, kind: type[int] | type[float]) -> Any:
        return None if values.get(key) is None else kind(values[key])

    return ServingConfig(
        dtype=str(values.get("dtype") or "auto"),
        max_model_len=number("max-model-len", int),
        max_num_seqs=number("max-num-seqs", int),
        gpu_memory_utilization=number("gpu-memory-utilization", float),
        tensor_parallel_size=number("tensor-parallel-size", int),
        quantization=None if values.get("quantization") is None else str(values["quantization"]),
        kv_cache_dtype=str(values.get("kv-cache-dtype") or "auto"),
    )


@dataclass(frozen=True)
class SizingPrediction:
    fit: FitReport
    context_tokens: float
    """The mean context of a request in flight (prompt + completion ÷ 2), rounded up to whole blocks."""
    capacity: int
    """Sequences the engine runs at once before requests wait."""
    in_flight: float
    """Sequences the load keeps at the server (achieved concurrency, at most the capacity)."""
    kv_usage: float

    @property
    def queue_onset(self) -> int:
        return self.capacity + 1


def predict(
    model_ref: str,
    sku_name: str,
    vllm: Mapping[str, Any],
    catalog: Catalog,
    result: LoadResult,
    *,
    runtime_overhead_gib: float,
    running: float | None = None,
) -> SizingPrediction:
    """What sizing says the server does under this run's measured shape (raises UnknownEntryError).

    `running`: the sequences the server ran on average (its gauge); default the client's in-flight count.
    """
    fit = evaluate(
        catalog.model_spec(model_ref),
        catalog.gpu_sku(sku_name),
        serving_config(vllm),
        runtime_overhead_gib=runtime_overhead_gib,
    )
    requests = max(result.requests - result.errors, 1)
    prompt = result.prompt_tokens / requests if result.prompt_tokens else result.plan.prompt_tokens
    completion = result.output_tokens / requests if result.output_tokens else result.plan.max_tokens
    context = math.ceil((prompt + completion / 2) / BLOCK_SIZE) * BLOCK_SIZE
    capacity = min(fit.max_num_seqs, fit.kv_token_capacity // context) if context else fit.max_num_seqs
    in_flight = min(result.achieved_concurrency if running is None else running, float(capacity))
    usage = in_flight * context / fit.kv_token_capacity if fit.kv_token_capacity else 1.0
    return SizingPrediction(fit, context, capacity, in_flight, min(usage, 1.0))


@dataclass(frozen=True)
class Queueing:
    """What the server's scheduler gauges showed over the window."""

    samples: int
    waiting_share: float
    """Share of samples with requests waiting."""
    running_while_waiting: float | None
    """Median running sequences in the samples with requests waiting."""
    kv_usage_mean: float | None
    running_mean: float | None

    @property
    def queued(self) -> bool:
        return self.samples > 0 and self.waiting_share >= QUEUED_SHARE

    @property
    def onset(self) -> int | None:
        """The concurrency at which requests wait: one more than the server runs; None without queueing."""
        if not self.queued or self.running_while_waiting is None:
            return None
        return round(self.running_while_waiting) + 1


def queueing(server: ServerWindow) -> Queueing:
    samples = server.samples
    waiting = [s for s in samples if s.waiting > 0]
    return Queueing(
        samples=len(samples),
        waiting_share=len(waiting) / len(samples) if samples else 0.0,
        running_while_waiting=statistics.median(s.running for s in waiting) if waiting else None,
        kv_usage_mean=statistics.fmean(s.kv_usage for s in samples) if samples else None,
        running_mean=statistics.fmean(s.running for s in samples) if samples else None,
    )


def onset_tolerance(predicted_onset: int) -> float:
    return max(1.0, ONSET_TOLERANCE_SHARE * predicted_onset)


def kv_tolerance(predicted: float) -> float:
    return max(KV_TOLERANCE_ABS, KV_TOLERANCE_SHARE * predicted)


def ttft_gap_limit_ms(server_mean_ms: float) -> float:
    return max(TTFT_GAP_MIN_MS, TTFT_GAP_SHARE * server_mean_ms)


@dataclass(frozen=True)
class BreakEvenFromLoad:
    api: str
    tokens_per_s: float
    """Prompt and completion tokens per second of one replica, measured."""
    price_per_hour: float
    api_cost_per_request: float
    selfhost_cost_per_request: float
    standalone_requests_per_day: float | None
    kaito_requests_per_day: float | None


def breakeven(
    result: LoadResult,
    catalog: Catalog,
    sku_name: str,
    api_model: str,
    *,
    fixed_daily: float,
    replicas: int = 1,
) -> BreakEvenFromLoad:
    """The sizing guide's break-even with the measured tok/s (raises UnknownEntryError, ValueError)."""
    sku = catalog.gpu_sku(sku_name)
    if sku.price_per_hour is None:
        raise ValueError(f"the catalog has no price for {sku.name}; add one under [sizing] skus")
    api = catalog.api_price(api_model)
    good = max(result.requests - result.errors, 1)
    prompt, completion = result.prompt_tokens / good, result.output_tokens / good
    tokens_per_s = (result.prompt_tokens + result.output_tokens) / result.window_s / max(replicas, 1)
    if tokens_per_s <= 0:
        raise ValueError("the run measured no tokens")
    selfhost = selfhost_cost_per_token(sku.price_per_hour, tokens_per_s) * (prompt + completion)
    api_cost = api.cost_per_request(round(prompt), round(completion))
    return BreakEvenFromLoad(
        api=api.name,
        tokens_per_s=tokens_per_s,
        price_per_hour=sku.price_per_hour,
        api_cost_per_request=api_cost,
        selfhost_cost_per_request=selfhost,
        standalone_requests_per_day=breakeven_requests_per_day(fixed_daily, api_cost, selfhost),
        kaito_requests_per_day=breakeven_requests_per_day(
            kaito_fixed_daily(fixed_daily, sku.price_per_hour), api_cost, selfhost
        ),
    )
