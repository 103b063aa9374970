"""Load and latency SLOs of each endpoint: one measured run, one check per SLO, and the cross-checks.

Each endpoint under test (a Ready KAITO Workspace) gets one load run with the shape of the profile's [load]
table (the seed's customer-support-chat row unless set), measured once and judged by every check below.
A run the load client could not drive faithfully errors every check, naming the saturated resource. See
docs/reference/suites/load.md for what each check proves and what a failure means.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_aksai import CheckReport, LoadRun, LoadVerdict

pytestmark = [pytest.mark.load, pytest.mark.disruptive]

Measure = Callable[..., None]


def _judge(run: LoadRun, verdict: LoadVerdict, measure: Measure) -> None:
    for name, value in {**run.summary_measurements(), **verdict.measurements}.items():
        # Latencies are the client's wall clock, never the simulated cluster's compressed one.
        measure(name, value, clock="wall") if name.endswith("_ms") else measure(name, value)
    if verdict.passed is None:
        pytest.skip(verdict.message)
    if not verdict.passed:
        pytest.fail(verdict.message, pytrace=False)


def _show(run: LoadRun, name: str, title: str, report: CheckReport) -> None:
    """The latency histogram the SLO is judged on, in the run report."""
    count, bins, percentiles, limits = run.distribution(name)
    shown = report.distribution(f"load:{run.workspace}:{name}", f"{title} of {run.workspace} (client)")
    shown.count, shown.bins, shown.percentiles, shown.limits = count, bins, percentiles, limits


def test_ttft_p95(aksai_load: LoadRun, aksai_measure: Measure, aksai_report: CheckReport) -> None:
    if aksai_load.replicas_timeline is not None:  # the scaler's replicas during the run, drawn first
        aksai_report.timeline(aksai_load.replicas_timeline)
    _show(aksai_load, "ttft_p95_ms", "Time to first token", aksai_report)
    _judge(aksai_load, aksai_load.slo("ttft_p95_ms"), aksai_measure)


def test_itl_p95(aksai_load: LoadRun, aksai_measure: Measure, aksai_report: CheckReport) -> None:
    _show(aksai_load, "itl_p95_ms", "Inter-token latency", aksai_report)
    _judge(aksai_load, aksai_load.slo("itl_p95_ms"), aksai_measure)


def test_e2e_p99(aksai_load: LoadRun, aksai_measure: Measure, aksai_report: CheckReport) -> None:
    _show(aksai_load, "e2e_p99_ms", "End-to-end latency", aksai_report)
    _judge(aksai_load, aksai_load.slo("e2e_p99_ms"), aksai_measure)


@pytest.mark.explains("aksai_load_run")
def test_error_rate(aksai_load: LoadRun, aksai_measure: Measure) -> None:
    _judge(aksai_load, aksai_load.slo("error_rate_max"), aksai_measure)


def test_output_throughput(aksai_load: LoadRun, aksai_measure: Measure) -> None:
    _judge(aksai_load, aksai_load.slo("min_output_tokens_per_s"), aksai_measure)


def test_attainment(aksai_load: LoadRun, aksai_measure: Measure) -> None:
    _judge(aksai_load, aksai_load.slo("attainment_min"), aksai_measure)


def test_ttft_matches_server(aksai_load: LoadRun, aksai_measure: Measure) -> None:
    _judge(aksai_load, aksai_load.ttft_against_server(), aksai_measure)


def _sizing_row(run: LoadRun, report: CheckReport) -> None:
    """Predicted against observed, in the run report's sizing table."""
    row = run.sizing_row()
    if row is not None:
        report.sizing(row)


def test_queueing_matches_sizing(
    aksai_load: LoadRun, aksai_measure: Measure, aksai_report: CheckReport
) -> None:
    _sizing_row(aksai_load, aksai_report)
    _judge(aksai_load, aksai_load.queueing_against_sizing(), aksai_measure)


def test_kv_usage_matches_sizing(
    aksai_load: LoadRun, aksai_measure: Measure, aksai_report: CheckReport
) -> None:
    _sizing_row(aksai_load, aksai_report)
    _judge(aksai_load, aksai_load.kv_usage_against_sizing(), aksai_measure)


def test_breakeven(aksai_load: LoadRun, aksai_measure: Measure, aksai_report: CheckReport) -> None:
    verdict = aksai_load.breakeven()
    aksai_report.cost.breakeven.update(
        {f"{aksai_load.workspace} {name}": float(value) for name, value in verdict.measurements.items()}
    )
    _judge(aksai_load, verdict, aksai_measure)
