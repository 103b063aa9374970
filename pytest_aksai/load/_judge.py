"""A measured load run against one endpoint, and its verdicts: one per SLO and one per cross-check.

Each verdict states the measured value, the limit and the run's validity; the suite's checks only assert them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_aksai._public import public
from pytest_aksai.sizing import Catalog, UnknownEntryError

from . import _crosscheck as X
from ._result import LoadResult
from ._server_window import ServerWindow
from ._validity import InvalidRunError
from ._worker import MergedRun

_SLO_WHAT = {
    "ttft_p95_ms": ("TTFT p95", "ms", "ttft", 95),
    "itl_p95_ms": ("inter-token latency p95", "ms", "itl", 95),
    "e2e_p99_ms": ("end-to-end latency p99", "ms", "e2e", 99),
    "error_rate_max": ("error rate", "", None, None),
    "min_output_tokens_per_s": ("output throughput", "tok/s", None, None),
    "attainment_min": ("SLO attainment (requests meeting every latency SLO)", "", None, None),
}


@public
@dataclass(frozen=True)
class LoadVerdict:
    """One check's outcome: `passed` None means not judged (`message` says why)."""

    name: str
    passed: bool | None
    message: str
    measurements: dict[str, float] = field(default_factory=dict)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "nothing"
    if unit == "":
        return f"{value:.2%}" if value < 1 or value == 1 else f"{value:g}"
    return f"{value:,.1f} {unit}"


@public
@dataclass
class LoadRun:
    """The load run of one endpoint (a KAITO Workspace): the merged result, the server's window, the context
    the cross-checks need (model, GPU SKU, `vllm:` map, catalog)."""

    workspace: str
    merged: MergedRun
    route: str
    model_ref: str | None = None
    sku_name: str | None = None
    vllm: Mapping[str, Any] = field(default_factory=dict)
    catalog: Catalog | None = None
    runtime_overhead_gib: float = 1.0
    fixed_daily_usd: float = 8.88
    api_model: str = "gpt-4o-mini"
    breakeven_max: float | None = None
    replicas: int = 1
    """The ready replicas that served the run (time-averaged when a scaler's were recorded)."""
    scaler: str | None = None
    """The ScaledObject (or HTTPScaledObject) serving the endpoint, if any."""
    ready_replicas_seen: tuple[int, int] | None = None
    """(fewest, most) ready replicas the scaler's target had during the run."""
    replicas_timeline: str | None = None
    """The report timeline of the scaler's replicas during the run."""

    @property
    def result(self) -> LoadResult:
        return self.merged.result

    @property
    def server(self) -> ServerWindow | None:
        return self.merged.server

    @property
    def valid(self) -> bool:
        return not self.merged.invalid_reasons

    def raise_if_invalid(self) -> None:
        """An invalid run is an error naming the saturated resource: neither a pass nor a latency failure."""
        __tracebackhide__ = True
        if reasons := self.merged.invalid_reasons:
            raise InvalidRunError(reasons)

    def _shape(self) -> str:
        plan, r = self.result.plan, self.result
        load = f"{plan.concurrency} streams" if plan.concurrency else f"{plan.rate:g} req/s ({plan.arrival})"
        workers = f" from {r.workers} workers" if r.workers > 1 else ""
        seen, scaled = self.ready_replicas_seen, ""
        if seen is not None and seen[0] != seen[1]:
            scaled = (
                f"; {self.scaler} moved its ready replicas between {seen[0]} and {seen[1]} during the run"
            )
        return (
            f"{load} of {plan.prompt_tokens}-token prompts and up to {plan.max_tokens} tokens for "
            f"{plan.duration_s:g} s{workers} against {self.workspace} via {self.route}: {r.requests} requests, "
            f"run valid ({r.achieved_concurrency:.1f} in flight, client loop lag p99 "
            f"{_fmt(r.loop_lag.percentile_ms(99), 'ms')}){scaled}"
        )

    def summary_measurements(self) -> dict[str, float]:
        r = self.result
        values: dict[str, float | None] = {
            "load_requests": r.requests,
            "load_errors": r.errors,
            "load_req_per_s": r.req_per_s,
            "load_output_tokens_per_s": r.output_tokens_per_s,
            "load_achieved_concurrency": r.achieved_concurrency,
            "load_ttft_p50_ms": r.ttft.percentile_ms(50),
            "load_ttft_p95_ms": r.ttft.percentile_ms(95),
            "load_itl_p95_ms": r.itl.percentile_ms(95),
            "load_e2e_p99_ms": r.e2e.percentile_ms(99),
            "load_attainment": r.attainment,
            "load_valid": float(self.valid),
            "load_workers": r.workers,
            "load_replicas": self.replicas,
        }
        if self.ready_replicas_seen is not None:
            values["load_ready_replicas_min"], values["load_ready_replicas_max"] = self.ready_replicas_seen
        return {k: float(v) for k, v in values.items() if v is not None}

    # -- SLOs --------------------------------------------------------------------------------------------
    def slo(self, name: str) -> LoadVerdict:
        what, unit, _, _ = _SLO_WHAT[name]
        verdicts = {v.name: v for v in self.result.slo_verdicts()}
        verdict = verdicts.get(name)
        if verdict is None:
            return LoadVerdict(name, None, f"[slos] {name} is not set: {what} is not judged")
        measured = verdict.measured
        measurements = {f"load_{name}_limit": verdict.limit}
        if measured is not None:
            measurements[f"load_{name}_measured"] = measured
        bound = "at least" if name.startswith("min_") or name == "attainment_min" else "at most"
        message = (
            f"{what} was {_fmt(measured, unit)}, the SLO [slos] {name} is {bound} {_fmt(verdict.limit, unit)} "
            f"({self._shape()})"
        )
        if name in ("error_rate_max", "attainment_min") and self.result.errors_by_class:
            classes = ", ".join(f"{k} × {v}" for k, v in sorted(self.result.errors_by_class.items()))
            message += f"; errors: {classes}"
        return LoadVerdict(name, verdict.met, message, measurements)

    def distribution(
        self, name: str
    ) -> tuple[int, list[tuple[float, float, int]], dict[str, float], dict[str, float]]:
        """(count, bins, percentiles, limits) of a latency SLO's histogram (ms), for the report."""
        _, _, histogram_name, _ = _SLO_WHAT[name]
        if histogram_name is None:
            raise ValueError(f"{name} is not a latency SLO")
        histogram = getattr(self.result, histogram_name)
        percentiles = {k: v for k, v in histogram.summary_ms().items() if v is not None and k != "mean"}
        limit = self.result.plan.slos.given().get(name)
        limits = {f"SLO {name}": limit} if limit is not None else {}
        return histogram.count, histogram.bins_ms(), percentiles, limits

    # -- cross-checks ------------------------------------------------------------------------------------
    def _server_problem(self) -> str | None:
        if self.server is None:
            return "the run did not observe the server's /metrics"
        return self.server.problem or None

    def ttft_against_server(self) -> LoadVerdict:
        name = "ttft_against_server"
        problem = self._server_problem()
        if problem is not None:
            return LoadVerdict(name, None, f"client TTFT not compared with the server's: {problem}")
        assert self.server is not None
        client_mean = self.result.ttft.mean_ms()
        server_mean = self.server.ttft_mean_ms()
        client_count, server_count = self.result.ttft.count, self.server.ttft_count or 0
        if client_mean is None or server_mean is None:
            return LoadVerdict(name, None, "no request reached its first token: nothing to compare")
        if abs(server_count - client_count) > max(2, 0.1 * client_count):
            return LoadVerdict(
                name,
                None,
                f"the server's TTFT histogram counted {server_count:.0f} first tokens in the window, the client "
                f"{client_count}: the scraped pod serves other traffic or is one of several replicas, so the "
                "two cannot be compared",
            )
        gap = client_mean - server_mean
        limit = X.ttft_gap_limit_ms(server_mean)
        measurements = {
            "load_ttft_client_mean_ms": client_mean,
            "load_ttft_server_mean_ms": server_mean,
            "load_ttft_gap_ms": gap,
            "load_ttft_gap_limit_ms": limit,
        }
        server_p95 = self.server.ttft_quantile_ms(0.95)
        if server_p95 is not None:
            measurements["load_ttft_server_p95_ms"] = server_p95
        passed = -X.TTFT_GAP_MIN_MS <= gap <= limit
        where = (
            "requests queue between the client and the engine (an ingress or gateway, a port-forward, or the "
            "client itself)"
            if gap > 0
            else "the server counts time the client never saw: its clock or its histogram is wrong"
        )
        message = (
            f"client-measured TTFT averaged {client_mean:,.1f} ms, the server's own "
            f"vllm:time_to_first_token_seconds {server_mean:,.1f} ms over the same {client_count} requests: a "
            f"difference of {gap:+,.1f} ms, allowed between −{X.TTFT_GAP_MIN_MS:g} and +{limit:,.1f} ms "
            f"(max({X.TTFT_GAP_MIN_MS:g} ms, {X.TTFT_GAP_SHARE:.0%} of the server's))"
            + ("" if passed else f"; {where}")
            + f" ({self._shape()})"
        )
        return LoadVerdict(name, passed, message, measurements)

    def _prediction(self, name: str, running: float | None = None) -> X.SizingPrediction | LoadVerdict:
        if self.catalog is None or self.model_ref is None or self.sku_name is None:
            return LoadVerdict(
                name, None, "the Workspace names no preset model or no instanceType: no prediction"
            )
        try:
            return X.predict(self.model_ref, self.sku_name, self.vllm, self.catalog, self.result,
                             runtime_overhead_gib=self.runtime_overhead_gib, running=running)  # fmt: skip
        except (UnknownEntryError, ValueError) as exc:
            return LoadVerdict(name, None, f"sizing cannot predict this server: {exc}")

    def _sizing_inputs(self, p: X.SizingPrediction) -> str:
        f = p.fit
        return (
            f"{f.model} on {f.gpu} at max-num-seqs {f.max_num_seqs}, gpu-memory-utilization "
            f"{f.gpu_memory_utilization:g}: a KV cache of {f.kv_token_capacity:,} tokens, {p.context_tokens:.0f} "
            "tokens per request in flight"
        )

    def queueing_against_sizing(self) -> LoadVerdict:
        name = "queueing_against_sizing"
        problem = self._server_problem()
        if problem is not None:
            return LoadVerdict(name, None, f"queueing not compared with sizing: {problem}")
        prediction = self._prediction(name)
        if isinstance(prediction, LoadVerdict):
            return prediction
        assert self.server is not None
        q = X.queueing(self.server)
        if q.samples == 0:
            return LoadVerdict(name, None, "the server's scheduler gauges were never sampled")
        offered = round(self.result.achieved_concurrency)
        predicted = prediction.queue_onset
        measurements: dict[str, float] = {
            "load_queue_onset_predicted": predicted,
            "load_waiting_share": q.waiting_share,
        }
        if q.onset is not None:
            measurements["load_queue_onset_measured"] = q.onset
        tolerance = X.onset_tolerance(predicted)
        inputs = self._sizing_inputs(prediction)
        if offered < predicted:
            passed = not q.queued
            detail = (
                f"sizing predicts requests wait only from {predicted} concurrent requests on ({inputs}); at "
                f"{offered} in flight they waited in {q.waiting_share:.0%} of the samples of "
                "vllm:num_requests_waiting"
            )
            if q.onset is not None:
                detail += f", with the server running {q.onset - 1} sequences: queueing began at {q.onset}"
        else:
            passed = q.onset is not None and abs(q.onset - predicted) <= tolerance
            seen = f"began at {q.onset}" if q.onset is not None else f"never stayed above zero at {offered}"
            detail = (
                f"sizing predicts requests wait from {predicted} concurrent requests on ({inputs}); measured, "
                f"queueing {seen} (tolerance ±{tolerance:g})"
            )
        if not passed:
            detail += (
                ". The sizing inputs or the server's config are not what the profile says: compare the engine's "
                "KV cache size in its start-up log with the prediction"
            )
        return LoadVerdict(name, passed, f"{detail} ({self._shape()})", measurements)

    def sizing_row(self) -> dict[str, Any] | None:
        """The run's row of the report's sizing table: what sizing predicts at this run's shape (model, GPU,
        KV budget and capacity, sequences before requests wait, KV usage) against what the server's gauges
        showed; None when sizing cannot predict this server."""
        problem = self._server_problem()
        q = X.queueing(self.server) if problem is None and self.server is not None else None
        running = q.running_mean if q is not None and q.samples else None
        prediction = self._prediction("sizing", running=running)
        if isinstance(prediction, LoadVerdict):
            return None
        f = prediction.fit
        offered = round(self.result.achieved_concurrency)
        if q is None or not q.samples:
            observed = f"not observed ({problem or 'no scheduler gauge sampled'})"
        elif q.onset is not None:
            observed = f"{q.onset - 1} running when requests began to wait"
        else:
            observed = f"no waiting at {offered} in flight (≥ {offered})"
        return {
            "workload": f"Workspace {self.workspace}",
            "basis": f"load run: {offered} in flight, {prediction.context_tokens:.0f}-token context",
            "model": f.model,
            "GPU": f.gpu,
            "VRAM GiB": f.vram_gib,
            "KV budget GiB": f.kv_budget_gib,
            "KV capacity tokens": f.kv_token_capacity,
            "max-num-seqs": f.max_num_seqs,
            "predicted concurrency": prediction.capacity,
            "observed concurrency": observed,
            "KV usage predicted": f"{prediction.kv_usage:.1%}",
            "KV usage observed": f"{q.kv_usage_mean:.1%}"
            if q is not None and q.kv_usage_mean is not None
            else None,
        }

    def kv_usage_against_sizing(self) -> LoadVerdict:
        name = "kv_usage_against_sizing"
        problem = self._server_problem()
        if problem is not None:
            return LoadVerdict(name, None, f"KV-cache usage not compared with sizing: {problem}")
        assert self.server is not None
        q = X.queueing(self.server)
        prediction = self._prediction(name, running=q.running_mean)
        if isinstance(prediction, LoadVerdict):
            return prediction
        measured = q.kv_usage_mean
        if measured is None:
            return LoadVerdict(name, None, "the server's KV-cache gauge was never sampled")
        tolerance = X.kv_tolerance(prediction.kv_usage)
        passed = abs(measured - prediction.kv_usage) <= tolerance
        message = (
            f"KV-cache usage averaged {measured:.1%} over the run, sizing predicts {prediction.kv_usage:.1%} for "
            f"the {prediction.in_flight:.1f} sequences the server ran ({self._sizing_inputs(prediction)}), tolerance "
            f"±{tolerance:.1%}"
            + ("" if passed else ": the server's KV cache is not the size its config implies")
            + f" ({self._shape()})"
        )
        return LoadVerdict(name, passed, message, {
            "load_kv_usage_measured": measured,
            "load_kv_usage_predicted": prediction.kv_usage,
        })  # fmt: skip

    def breakeven(self) -> LoadVerdict:
        name = "breakeven"
        if self.catalog is None or self.sku_name is None:
            return LoadVerdict(
                name, None, "the Workspace names no instanceType: no GPU price for a break-even"
            )
        try:
            b = X.breakeven(self.result, self.catalog, self.sku_name, self.api_model,
                            fixed_daily=self.fixed_daily_usd, replicas=self.replicas)  # fmt: skip
        except (UnknownEntryError, ValueError) as exc:
            return LoadVerdict(name, None, f"no break-even: {exc}")
        per_day = b.kaito_requests_per_day
        head = (
            f"at the measured {b.tokens_per_s:,.0f} tok/s per replica a request on {self.sku_name} "
            f"(${b.price_per_hour:g}/h) costs ${b.selfhost_cost_per_request:.6f}, on {b.api} "
            f"${b.api_cost_per_request:.6f}: "
        )
        head += (
            "self-hosting never breaks even"
            if per_day is None
            else f"self-hosting with KAITO's always-on node breaks even above {per_day:,.0f} requests/day"
        )
        measurements = {"load_tokens_per_s_per_replica": b.tokens_per_s}
        if per_day is not None:
            measurements["load_breakeven_requests_per_day"] = per_day
        if self.breakeven_max is None:
            return LoadVerdict(name, None, f"{head} (not judged: [slos] breakeven_requests_per_day_max is not set)",
                               measurements)  # fmt: skip
        measurements["load_breakeven_requests_per_day_max"] = self.breakeven_max
        passed = per_day is not None and per_day <= self.breakeven_max
        return LoadVerdict(
            name,
            passed,
            f"{head}; the limit [slos] breakeven_requests_per_day_max is {self.breakeven_max:,.0f} ({self._shape()})",
            measurements,
        )
