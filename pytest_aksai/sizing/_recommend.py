"""The recommender: the cheapest deployment that holds the peak load (and meets the latency SLOs), on every
SKU shape of the catalog, with its throughput, idle cost and break-even against the APIs.

For every SKU, allowed quantization, tensor-parallel size (a divisor of the SKU's GPU count that divides the
model's attention heads; the other GPUs of the node run data-parallel copies) and capacity type (spot only
when allowed): the fit at the recommended max-model-len, max-num-seqs = what the KV cache holds (capped),
lowered until the predicted latency meets the SLOs, the replicas (nodes) the peak concurrency needs, and
their $/hour. The cheapest wins; docs/explanation/sizing.md explains the rule and the limits of the prediction.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from pytest_aksai._errors import AksaiError
from pytest_aksai.sizing import _arith as A
from pytest_aksai.sizing._catalog import ApiPrice, GpuSku, ModelSpec
from pytest_aksai.sizing._fit import FitReport, ServingConfig, evaluate
from pytest_aksai.sizing._latency import Prediction, Roofline, predict
from pytest_aksai.sizing._resolve import RefusedInput

CapacityType = Literal["on-demand", "spot"]
Verdict = Literal["recommended", "costs-more", "over-slo", "does-not-fit", "no-price"]


@dataclass(frozen=True)
class Load:
    prompt_tokens: int
    completion_tokens: int
    peak_concurrency: int

    @property
    def tokens_per_request(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Slo:
    """Latency objectives at p95, in seconds; None = no objective."""

    ttft_p95_s: float | None = None
    itl_p95_s: float | None = None

    @property
    def given(self) -> bool:
        return self.ttft_p95_s is not None or self.itl_p95_s is not None

    def misses(self, p: Prediction) -> list[str]:
        out = []
        if self.ttft_p95_s is not None and p.ttft_p95_s > self.ttft_p95_s:
            out.append(f"TTFT p95 {p.ttft_p95_s * 1e3:.0f} ms > {self.ttft_p95_s * 1e3:g} ms")
        if self.itl_p95_s is not None and p.itl_p95_s > self.itl_p95_s:
            out.append(f"ITL p95 {p.itl_p95_s * 1e3:.0f} ms > {self.itl_p95_s * 1e3:g} ms")
        return out


@dataclass(frozen=True)
class Choices:
    """What the user allows and fixes. Prices given here replace the catalog's (only for one SKU)."""

    quantizations: tuple[str | None, ...] = (None,)
    allow_spot: bool = False
    dtype: str = "auto"
    kv_cache_dtype: str = "auto"
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    max_num_seqs_limit: int = A.DEFAULT_MAX_NUM_SEQS
    runtime_overhead_gib: float = A.DEFAULT_RUNTIME_OVERHEAD_GIB
    price_per_hour: float | None = None
    spot_price_per_hour: float | None = None


@dataclass(frozen=True)
class Deployment:
    """One configuration that holds the peak load: `replicas` nodes of `sku`, each running
    `data_parallel_size` engines of `tensor_parallel_size` GPUs."""

    sku: GpuSku
    capacity_type: CapacityType
    price_per_hour: float
    """One node."""
    quantization: str | None
    tensor_parallel_size: int
    data_parallel_size: int
    max_model_len: int
    max_num_seqs: int
    kv_sequences: int
    """Sequences of max-model-len the KV cache of one engine holds."""
    replicas: int
    batch_at_peak: int
    """Sequences each engine runs at the peak concurrency."""
    prediction: Prediction
    """Predicted latency and throughput of one engine at `batch_at_peak`."""
    fit: FitReport

    @property
    def cost_per_hour_peak(self) -> float:
        return self.replicas * self.price_per_hour

    @property
    def sequences_per_replica(self) -> int:
        return self.data_parallel_size * self.max_num_seqs

    @property
    def predicted_tokens_per_s(self) -> float:
        """Prompt + completion tokens per second of one replica (node) at the peak batch."""
        return self.data_parallel_size * self.prediction.tokens_per_s

    def rank_key(self) -> tuple[float, int, bool, bool, float]:
        """Cheapest at peak; then fewer GPUs, on-demand before spot, unquantized, lower ITL."""
        return (
            round(self.cost_per_hour_peak, 6),
            self.replicas * self.sku.gpu_count,
            self.capacity_type == "spot",
            self.quantization is not None,
            self.prediction.itl_p95_s,
        )


@dataclass(frozen=True)
class Outcome:
    """What one SKU can do: its best deployment, or why it has none."""

    sku: GpuSku
    verdict: Verdict
    reason: str
    deployment: Deployment | None = None


@dataclass(frozen=True)
class Recommendation:
    model: ModelSpec
    load: Load
    slo: Slo
    max_model_len: int
    best: Deployment
    outcomes: tuple[Outcome, ...]
    """Every SKU considered, the recommended one first, then the others by cost at peak, then the rest."""
    alternatives: tuple[Outcome, ...] = field(default_factory=tuple)
    """Three other SKUs, one per other GPU model first, cheapest node first, each with the reason it lost."""


class NothingFits(AksaiError, ValueError):
    """No SKU holds the load: the message lists why for the most promising ones."""


def tensor_parallel_sizes(model: ModelSpec, sku: GpuSku) -> list[int]:
    """Divisors of the SKU's GPU count that divide the attention heads, the whole node (KAITO's) first."""
    return [
        n for n in range(sku.gpu_count, 0, -1) if sku.gpu_count % n == 0 and model.attention_heads % n == 0
    ]


def recommended_max_model_len(model: ModelSpec, load: Load, given: int | None) -> int:
    """The seed's rule (2 × p95(prompt + completion), to a power of two), capped at the context limit."""
    if load.tokens_per_request > model.max_context:
        raise RefusedInput(
            "--p95-prompt + --p95-completion",
            f"{load.prompt_tokens} + {load.completion_tokens} = {load.tokens_per_request}",
            f"is longer than {model.name}'s context limit of {model.max_context} tokens",
            f"prompt + completion ≤ {model.max_context}",
            "check the token counts (tokens, not characters), or pick a model with a longer context",
        )
    if given is None:
        return min(A.recommended_max_model_len(load.prompt_tokens, load.completion_tokens), model.max_context)
    if not load.tokens_per_request <= given <= model.max_context:
        raise RefusedInput(
            "--max-model-len",
            given,
            f"must hold one p95 request ({load.tokens_per_request} tokens) and stay within {model.name}'s "
            f"context limit",
            f"{load.tokens_per_request} to {model.max_context}",
            "drop --max-model-len to use the rule 2 × p95(prompt + completion), or pass a value in that range",
        )
    return given


def _prices(sku: GpuSku, choices: Choices) -> list[tuple[CapacityType, float | None]]:
    out: list[tuple[CapacityType, float | None]] = [
        ("on-demand", choices.price_per_hour if choices.price_per_hour is not None else sku.price_per_hour)
    ]
    spot = choices.spot_price_per_hour if choices.spot_price_per_hour is not None else sku.spot_price_per_hour
    if choices.allow_spot and spot is not None:
        out.append(("spot", spot))
    return out


def _largest_batch(roofline: Roofline, load: Load, slo: Slo, limit: int) -> int:
    """The largest batch ≤ limit whose predicted latency meets the SLOs (latency grows with the batch)."""
    if not slo.given:
        return limit
    return bisect.bisect_right(
        range(1, limit + 1),
        False,
        key=lambda b: bool(slo.misses(_predict(roofline, load, b))),
    )


def _predict(roofline: Roofline, load: Load, batch: int) -> Prediction:
    return predict(
        roofline, batch=batch, prompt_tokens=load.prompt_tokens, completion_tokens=load.completion_tokens
    )


def engine_roofline(model: ModelSpec, sku: GpuSku, fit: FitReport) -> Roofline:
    """The roofline of one engine of the fitted configuration (weights as quantized, KV as configured)."""
    return Roofline.of(
        parameters=model.parameters,
        weights_bytes=fit.weights_gib * A.GIB,
        kv_bytes_per_token=fit.kv_bytes_per_token,
        dense_fp16_tflops=sku.dense_fp16_tflops,
        bandwidth_gbs=sku.bandwidth_gbs,
        tensor_parallel_size=fit.tensor_parallel_size,
    )


def _sku_outcome(model: ModelSpec, sku: GpuSku, load: Load, slo: Slo, choices: Choices, mml: int) -> Outcome:
    if sku.gpu_count < 1:
        return Outcome(sku, "does-not-fit", "does not fit: the VM size has no GPU")
    deployments: list[Deployment] = []
    fit_failure = ""
    slo_failure = ""
    unpriced = False
    for quantization in choices.quantizations:
        for tp in tensor_parallel_sizes(model, sku):
            probe_config = ServingConfig(
                dtype=choices.dtype,
                max_model_len=mml,
                max_num_seqs=1,
                gpu_memory_utilization=choices.gpu_memory_utilization,
                tensor_parallel_size=tp,
                quantization=quantization,
                kv_cache_dtype=choices.kv_cache_dtype,
            )
            probe = evaluate(model, sku, probe_config, runtime_overhead_gib=choices.runtime_overhead_gib)
            if not probe.fits or probe.max_concurrent_seqs < 1:
                fit_failure = fit_failure or next(c.message for c in probe.checks if c.status == "fail")
                continue
            roofline = engine_roofline(model, sku, probe)
            limit = min(probe.max_concurrent_seqs, choices.max_num_seqs_limit)
            batch_max = _largest_batch(roofline, load, slo, limit)
            if batch_max == 0:
                slo_failure = slo_failure or (
                    f"over the SLO even with one sequence per engine: predicted "
                    f"{', '.join(slo.misses(_predict(roofline, load, 1)))} at tensor-parallel-size {tp}"
                    + (f", {quantization}" if quantization else "")
                )
                continue
            engines = sku.gpu_count // tp
            replicas = math.ceil(load.peak_concurrency / (engines * batch_max))
            batch_at_peak = math.ceil(load.peak_concurrency / (replicas * engines))
            fit = evaluate(
                model,
                sku,
                replace(probe_config, max_num_seqs=batch_max),
                runtime_overhead_gib=choices.runtime_overhead_gib,
            )
            for capacity_type, price in _prices(sku, choices):
                if price is None:
                    unpriced = True
                    continue
                deployments.append(
                    Deployment(
                        sku=sku,
                        capacity_type=capacity_type,
                        price_per_hour=price,
                        quantization=quantization,
                        tensor_parallel_size=tp,
                        data_parallel_size=engines,
                        max_model_len=mml,
                        max_num_seqs=batch_max,
                        kv_sequences=probe.max_concurrent_seqs,
                        replicas=replicas,
                        batch_at_peak=batch_at_peak,
                        prediction=_predict(roofline, load, batch_at_peak),
                        fit=fit,
                    )
                )
    if deployments:
        best = min(deployments, key=Deployment.rank_key)
        return Outcome(sku, "costs-more", _cost_reason(best, load), best)
    if unpriced:
        return Outcome(
            sku,
            "no-price",
            f"fits, but has no price in the catalog; pass --gpu {sku.name} --gpu-price USD to rank it",
        )
    if slo_failure:
        return Outcome(sku, "over-slo", slo_failure)
    return Outcome(sku, "does-not-fit", f"does not fit: {fit_failure}")


def _cost_reason(d: Deployment, load: Load) -> str:
    spot = " spot" if d.capacity_type == "spot" else ""
    return (
        f"{d.replicas} replica(s) × ${d.price_per_hour:.3f}/hour{spot} = ${d.cost_per_hour_peak:.2f}/hour at "
        f"peak; one replica holds {d.sequences_per_replica} sequences of {d.max_model_len} tokens"
    )


def recommend(
    model: ModelSpec, skus: Sequence[GpuSku], load: Load, slo: Slo = Slo(), choices: Choices = Choices()
) -> Recommendation:
    """The cheapest deployment of `model` over `skus` that holds `load` (and meets `slo`)."""
    mml = recommended_max_model_len(model, load, choices.max_model_len)
    outcomes = [_sku_outcome(model, sku, load, slo, choices, mml) for sku in skus]
    feasible = sorted(
        (o for o in outcomes if o.deployment is not None),
        key=lambda o: o.deployment.rank_key() if o.deployment else (),
    )
    if not feasible:
        by_node_price = sorted(outcomes, key=_node_price_key)
        raise NothingFits(
            f"no SKU holds {model.name} at max-model-len {mml} for {load.peak_concurrency} concurrent "
            f"requests: "
            + "; ".join(f"{o.sku.name}: {o.reason}" for o in by_node_price[:3])
            + ("; …" if len(outcomes) > 3 else "")
            + ". Allow a quantization (--quantization awq), a shorter --max-model-len, relax the SLOs, or add "
            "a larger SKU with --models-file."
        )
    winner = feasible[0]
    assert winner.deployment is not None
    best = winner.deployment
    ranked = [
        Outcome(winner.sku, "recommended", _cost_reason(best, load), best),
        *feasible[1:],
        *sorted((o for o in outcomes if o.deployment is None), key=_node_price_key),
    ]
    return Recommendation(model, load, slo, mml, best, tuple(ranked), _alternatives(ranked[1:], best))


def _alternatives(others: Sequence[Outcome], best: Deployment, count: int = 3) -> tuple[Outcome, ...]:
    """The cheapest node of each other GPU model first (so that one T4 size stands for all T4 sizes),
    then other sizes, cheapest node first; each with the reason it lost."""
    by_node_price = sorted(others, key=_node_price_key)
    picked: list[Outcome] = []
    seen = {best.sku.gpu_model}
    for o in by_node_price:
        if o.sku.gpu_model not in seen:
            seen.add(o.sku.gpu_model)
            picked.append(o)
    picked += [o for o in by_node_price if o not in picked]
    return tuple(_lost_against(o, best) for o in picked[:count])


def _node_price_key(o: Outcome) -> tuple[bool, float, str]:
    return (o.sku.price_per_hour is None, o.sku.price_per_hour or 0.0, o.sku.name)


def _lost_against(o: Outcome, best: Deployment) -> Outcome:
    d = o.deployment
    if d is None:
        return o
    why = "more replicas" if d.replicas > best.replicas else "a dearer node"
    return Outcome(o.sku, o.verdict, f"{why}: {o.reason}", d)


@dataclass(frozen=True)
class BreakEven:
    api: ApiPrice
    api_cost_per_request: float
    selfhost_cost_per_request: float
    standalone_requests_per_day: float | None
    kaito_requests_per_day: float | None


@dataclass(frozen=True)
class Economics:
    """Cost per request and break-even of one replica at a throughput (predicted, given or measured)."""

    tokens_per_s: float
    throughput_source: Literal["roofline-estimate", "given"]
    idle_cost_per_day_standalone: float
    """vLLM scaled to zero when idle: only the system pool keeps running."""
    idle_cost_per_day_kaito: float
    """KAITO keeps its node: the system pool plus 24 h of one replica."""
    against: tuple[BreakEven, ...]


def economics(
    deployment: Deployment,
    load: Load,
    apis: Sequence[ApiPrice],
    *,
    fixed_daily: float = A.DEFAULT_FIXED_DAILY_USD,
    tokens_per_s: float | None = None,
) -> Economics:
    """The seed's break-even formulas at the deployment's price and the given (or predicted) throughput."""
    throughput = deployment.predicted_tokens_per_s if tokens_per_s is None else tokens_per_s
    selfhost = A.selfhost_cost_per_token(deployment.price_per_hour, throughput) * load.tokens_per_request
    kaito_fixed = A.kaito_fixed_daily(fixed_daily, deployment.price_per_hour)
    rows = []
    for api in apis:
        cost = api.cost_per_request(load.prompt_tokens, load.completion_tokens)
        rows.append(
            BreakEven(
                api=api,
                api_cost_per_request=cost,
                selfhost_cost_per_request=selfhost,
                standalone_requests_per_day=A.breakeven_requests_per_day(fixed_daily, cost, selfhost),
                kaito_requests_per_day=A.breakeven_requests_per_day(kaito_fixed, cost, selfhost),
            )
        )
    return Economics(
        tokens_per_s=throughput,
        throughput_source="roofline-estimate" if tokens_per_s is None else "given",
        idle_cost_per_day_standalone=fixed_daily,
        idle_cost_per_day_kaito=kaito_fixed,
        against=tuple(rows),
    )


def breakeven_sentence(b: BreakEven, sku_name: str) -> str:
    """The break-even as a sentence a person can read."""
    head = (
        f"Against {b.api.name} (${b.api_cost_per_request:.6f}/request), a request on {sku_name} costs "
        f"${b.selfhost_cost_per_request:.6f}"
    )
    if b.standalone_requests_per_day is None or b.kaito_requests_per_day is None:
        return f"{head}: self-hosting costs more per request than the API, so it never breaks even."
    return (
        f"{head}: self-hosting pays off above about {b.standalone_requests_per_day:,.0f} requests/day with "
        f"vLLM scaled to zero when idle, or above about {b.kaito_requests_per_day:,.0f} requests/day with "
        f"KAITO's always-on node."
    )
