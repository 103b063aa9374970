"""What a load run measured (`LoadResult`): mergeable histograms and counters, validity, SLO verdicts, JSON."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ._histogram import LatencyHistogram
from ._plan import LoadPlan, Slos
from ._validity import InvalidReason, InvalidRunError, SelfMeasurements, check_validity

RESULT_VERSION = 1
_HISTOGRAMS = ("ttft", "itl", "tpot", "e2e", "schedule_lag", "loop_lag")


def _histogram() -> LatencyHistogram:
    return LatencyHistogram()


@dataclass
class LoadResult:
    """Counters sum, histograms add, windows overlap (workers share a start time): `merge` is exact."""

    plan: LoadPlan
    requests: int = 0
    errors: int = 0
    errors_by_class: Counter[str] = field(default_factory=Counter)
    good_requests: int = 0
    """Requests without error that met every per-request SLO of the plan (TTFT, mean ITL, E2E)."""
    output_tokens: int = 0
    prompt_tokens: int = 0
    window_s: float = 0.0
    """From the start of the measured window to the last completion."""
    issue_window_s: float = 0.0
    """From the start of the measured window to when the last request was issued (Little's law window)."""
    in_flight_s: float = 0.0
    """Sum over requests of their in-flight time inside the issue window."""
    in_flight_sample_sum: float = 0.0
    in_flight_samples: int = 0
    client_cpu_s: float = 0.0
    client_cpu_fraction: float = 0.0
    """The busiest worker's CPU time over its window, in cores."""
    ttft: LatencyHistogram = field(default_factory=_histogram)
    itl: LatencyHistogram = field(default_factory=_histogram)
    tpot: LatencyHistogram = field(default_factory=_histogram)
    e2e: LatencyHistogram = field(default_factory=_histogram)
    schedule_lag: LatencyHistogram = field(default_factory=_histogram)
    loop_lag: LatencyHistogram = field(default_factory=_histogram)
    workers: int = 1
    start_late_s: float = 0.0
    """How late the latest worker began its measured window after the shared start time."""

    # -- derived ---------------------------------------------------------------------------------------
    @property
    def req_per_s(self) -> float:
        return self.requests / self.window_s if self.window_s else 0.0

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.window_s if self.window_s else 0.0

    @property
    def goodput_req_per_s(self) -> float:
        return self.good_requests / self.window_s if self.window_s else 0.0

    @property
    def attainment(self) -> float:
        return self.good_requests / self.requests if self.requests else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def achieved_concurrency(self) -> float:
        return self.in_flight_s / self.issue_window_s if self.issue_window_s else 0.0

    @property
    def sampled_concurrency(self) -> float:
        return self.in_flight_sample_sum / self.in_flight_samples if self.in_flight_samples else 0.0

    @property
    def client_cpu_ms_per_request(self) -> float:
        return self.client_cpu_s * 1000 / self.requests if self.requests else 0.0

    def self_measurements(self) -> SelfMeasurements:
        return SelfMeasurements(
            configured_concurrency=self.plan.concurrency,
            concurrency_littles_law=self.achieved_concurrency,
            concurrency_sampled=self.sampled_concurrency,
            schedule_lag_p99_ms=self.schedule_lag.percentile_ms(99),
            loop_lag_p99_ms=self.loop_lag.percentile_ms(99),
            client_cpu_fraction=self.client_cpu_fraction,
            measured_requests=self.requests,
            start_late_s=self.start_late_s,
        )

    @property
    def invalid_reasons(self) -> list[InvalidReason]:
        return check_validity(self.self_measurements(), self.plan.limits)

    @property
    def valid(self) -> bool:
        return not self.invalid_reasons

    def raise_if_invalid(self) -> None:
        if reasons := self.invalid_reasons:
            raise InvalidRunError(reasons)

    def slo_verdicts(self, slos: Slos | None = None) -> list[SloVerdict]:
        """One verdict per SLO given (the plan's unless `slos` is passed)."""
        measured = {
            "ttft_p95_ms": self.ttft.percentile_ms(95),
            "itl_p95_ms": self.itl.percentile_ms(95),
            "e2e_p99_ms": self.e2e.percentile_ms(99),
            "error_rate_max": self.error_rate,
            "min_output_tokens_per_s": self.output_tokens_per_s,
            "attainment_min": self.attainment,
        }
        verdicts = []
        for name, limit in (slos or self.plan.slos).given().items():
            value = measured[name]
            at_least = name.startswith("min_") or name == "attainment_min"
            met = value is not None and (value >= limit if at_least else value <= limit)
            verdicts.append(SloVerdict(name, value, limit, met))
        return verdicts

    # -- merge and JSON --------------------------------------------------------------------------------
    def merge(self, other: LoadResult) -> None:
        """Add another worker's result of the same plan share (same start time) into this one."""
        for name in ("requests", "errors", "good_requests", "output_tokens", "prompt_tokens", "in_flight_s",
                     "in_flight_sample_sum", "client_cpu_s", "workers"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.in_flight_samples = max(self.in_flight_samples, other.in_flight_samples)
        self.errors_by_class.update(other.errors_by_class)
        self.window_s = max(self.window_s, other.window_s)
        self.issue_window_s = max(self.issue_window_s, other.issue_window_s)
        self.client_cpu_fraction = max(self.client_cpu_fraction, other.client_cpu_fraction)
        self.start_late_s = max(self.start_late_s, other.start_late_s)
        for name in _HISTOGRAMS:
            getattr(self, name).merge(getattr(other, name))

    def to_json(self) -> dict[str, Any]:
        """The mergeable form (histograms in HdrHistogram's compressed text), for `from_json` and workers."""
        data: dict[str, Any] = {"version": RESULT_VERSION, "plan": self.plan.to_json()}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "plan":
                continue
            data[f.name] = value.encode() if isinstance(value, LatencyHistogram) else value
        data["errors_by_class"] = dict(self.errors_by_class)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadResult:
        if data.get("version") != RESULT_VERSION:
            raise ValueError(
                f"load result version {data.get('version')!r}; this client reads {RESULT_VERSION}"
            )
        values = {k: v for k, v in data.items() if k not in ("version", "plan")}
        for name in _HISTOGRAMS:
            values[name] = LatencyHistogram.decode(values[name])
        values["errors_by_class"] = Counter(values["errors_by_class"])
        return cls(plan=LoadPlan.from_json(data["plan"]), **values)

    def summary(self) -> dict[str, Any]:
        """The report a person or CI reads (the `--json` output of the command line)."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "errors_by_class": dict(self.errors_by_class),
            "error_rate": self.error_rate,
            "req_per_s": self.req_per_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "goodput_req_per_s": self.goodput_req_per_s,
            "attainment": self.attainment,
            "prompt_tokens_mean": self.prompt_tokens / self.requests if self.requests else None,
            "output_tokens_mean": self.output_tokens / self.requests if self.requests else None,
            "ttft_ms": self.ttft.summary_ms(),
            "itl_ms": self.itl.summary_ms(),
            "tpot_ms": self.tpot.summary_ms(),
            "e2e_ms": self.e2e.summary_ms(),
            "duration_s": self.window_s,
            "configured_concurrency": self.plan.concurrency,
            "configured_rate": self.plan.rate,
            "achieved_concurrency": self.achieved_concurrency,
            "sampled_concurrency": self.sampled_concurrency,
            "schedule_lag_p99_ms": self.schedule_lag.percentile_ms(99),
            "loop_lag_p99_ms": self.loop_lag.percentile_ms(99),
            "client_cpu_ms_per_request": self.client_cpu_ms_per_request,
            "client_cpu_fraction": self.client_cpu_fraction,
            "valid": self.valid,
            "invalid_reasons": [r.text for r in self.invalid_reasons],
            "slos": [dataclasses.asdict(v) for v in self.slo_verdicts()],
        }


@dataclass(frozen=True)
class SloVerdict:
    name: str
    measured: float | None
    limit: float
    met: bool
