"""The client checks itself: a run whose numbers the client could have distorted is invalid, not passed."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_aksai._errors import AksaiError

from ._plan import ValidityLimits


@dataclass(frozen=True)
class InvalidReason:
    """One self-check the run missed: the saturated resource, what was measured and the limit."""

    resource: str
    measured: float
    limit: float
    text: str


@dataclass(frozen=True)
class SelfMeasurements:
    """What the validity checks read; every field merges across workers (see LoadResult.merge)."""

    configured_concurrency: int | None
    concurrency_littles_law: float
    concurrency_sampled: float
    schedule_lag_p99_ms: float | None
    loop_lag_p99_ms: float | None
    client_cpu_fraction: float
    measured_requests: int
    start_late_s: float = 0.0


def check_validity(m: SelfMeasurements, limits: ValidityLimits) -> list[InvalidReason]:
    reasons: list[InvalidReason] = []
    if m.measured_requests == 0:
        reasons.append(InvalidReason("requests", 0, 1, "no request finished in the measured window"))
    if m.configured_concurrency is not None:
        want = limits.min_concurrency_fraction * m.configured_concurrency
        for how, got in (
            ("by Little's law", m.concurrency_littles_law),
            ("by sampling", m.concurrency_sampled),
        ):
            if got < want:
                reasons.append(InvalidReason(
                    "in-flight concurrency", got, want,
                    f"the client held {got:.1f} of {m.configured_concurrency} configured streams in flight ({how}); "
                    f"at least {limits.min_concurrency_fraction:.0%} are needed (client CPU, connection pool or "
                    "file descriptors are saturated)"))  # fmt: skip
    if m.schedule_lag_p99_ms is not None and m.schedule_lag_p99_ms > limits.max_schedule_lag_p99_ms:
        reasons.append(InvalidReason(
            "arrival schedule", m.schedule_lag_p99_ms, limits.max_schedule_lag_p99_ms,
            f"arrivals left {m.schedule_lag_p99_ms:.1f} ms late at p99 (limit {limits.max_schedule_lag_p99_ms:g} ms): "
            "the client's event loop could not keep the arrival rate"))  # fmt: skip
    if m.loop_lag_p99_ms is not None and m.loop_lag_p99_ms > limits.max_loop_lag_p99_ms:
        reasons.append(InvalidReason(
            "event loop", m.loop_lag_p99_ms, limits.max_loop_lag_p99_ms,
            f"the client's event loop lagged {m.loop_lag_p99_ms:.1f} ms at p99 (limit {limits.max_loop_lag_p99_ms:g} ms), "
            "so timestamps were taken late"))  # fmt: skip
    if m.client_cpu_fraction > limits.max_client_cpu_fraction:
        reasons.append(InvalidReason(
            "client CPU", m.client_cpu_fraction, limits.max_client_cpu_fraction,
            f"the client used {m.client_cpu_fraction:.0%} of a core (limit {limits.max_client_cpu_fraction * 100:.3g} %)"))  # fmt: skip
    if m.start_late_s > limits.max_start_late_s:
        reasons.append(InvalidReason(
            "shared start", m.start_late_s, limits.max_start_late_s,
            f"a worker began measuring {m.start_late_s:.1f} s after the shared start (limit "
            f"{limits.max_start_late_s:g} s), so the workers' windows do not overlap: its pod was scheduled, "
            "pulled or calibrated too slowly"))  # fmt: skip
    return reasons


class InvalidRunError(AksaiError):
    """The load client saturated itself: its latencies describe the client, not the server."""

    __module__ = "pytest_aksai.load"

    def __init__(self, reasons: list[InvalidReason]) -> None:
        self.reasons = reasons
        resources = ", ".join(dict.fromkeys(r.resource for r in reasons))
        super().__init__(
            f"The load run is invalid: the client saturated its {resources}",
            expected="a client that keeps its configured load and timestamps on time",
            observed="; ".join(r.text for r in reasons),
            fix="Lower --concurrency or --rate per client, give the client a core of its own, or spread the load "
            "over several client processes (load.workers)",
        )
