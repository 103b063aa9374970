"""Histograms merge exactly; results merge, round-trip through JSON and judge SLOs."""

from __future__ import annotations

import pytest

from pytest_aksai.load import LatencyHistogram, LoadPlan, LoadResult, Slos

PLAN = LoadPlan(url="http://127.0.0.1:9/v1", model="m", concurrency=4, duration_s=1)


def test_merged_histogram_equals_one_that_saw_every_value() -> None:
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    a.record_seconds([0.001 * i for i in range(1, 101)])
    b.record_seconds([0.5, 0.75])
    both.record_seconds([0.001 * i for i in range(1, 101)] + [0.5, 0.75])
    a.merge(b)
    assert a.summary_ms() == both.summary_ms()
    assert a.count == 102
    assert a.percentile_ms(50) == pytest.approx(51.0, rel=1e-3)
    assert a.max_ms() == pytest.approx(750, rel=1e-3)


def test_histogram_round_trips_through_its_text_form_and_is_empty_as_none() -> None:
    h = LatencyHistogram()
    assert h.summary_ms() == {"p50": None, "p90": None, "p95": None, "p99": None, "max": None, "mean": None}
    h.record_seconds([0.0123, 0.0456])
    assert LatencyHistogram.decode(h.encode()).summary_ms() == h.summary_ms()


def result(requests: int, ttft_s: float, *, good: int, window_s: float = 2.0) -> LoadResult:
    r = LoadResult(plan=PLAN, requests=requests, good_requests=good, output_tokens=requests * 10,
                   window_s=window_s, issue_window_s=window_s, in_flight_s=4 * window_s,
                   in_flight_sample_sum=4.0 * 100, in_flight_samples=100, client_cpu_s=0.1, client_cpu_fraction=0.05)  # fmt: skip
    r.ttft.record_seconds([ttft_s] * requests)
    r.e2e.record_seconds([ttft_s * 2] * requests)
    r.loop_lag.record_seconds([0.001] * 100)
    return r


def test_results_merge_counters_and_histograms_and_survive_json() -> None:
    merged = result(10, 0.1, good=10)
    merged.merge(result(30, 0.3, good=0))
    again = LoadResult.from_json(merged.to_json())
    for r in (merged, again):
        assert r.requests == 40
        assert r.workers == 2
        assert r.attainment == pytest.approx(0.25)
        assert r.achieved_concurrency == pytest.approx(8.0)
        assert r.sampled_concurrency == pytest.approx(8.0)
        assert r.ttft.percentile_ms(50) == pytest.approx(300, rel=1e-3)
        assert r.ttft.percentile_ms(25) == pytest.approx(100, rel=1e-3)
        assert r.req_per_s == pytest.approx(20.0)
    assert again.summary() == merged.summary()


def test_each_slo_is_judged_against_its_own_measurement() -> None:
    r = result(10, 0.1, good=9)
    verdicts = {
        v.name: v
        for v in r.slo_verdicts(
            Slos(ttft_p95_ms=150, e2e_p99_ms=150, attainment_min=0.95, min_output_tokens_per_s=40)
        )
    }
    assert verdicts["ttft_p95_ms"].met
    assert verdicts["ttft_p95_ms"].measured == pytest.approx(100, rel=1e-3)
    assert not verdicts["e2e_p99_ms"].met
    assert not verdicts["attainment_min"].met
    assert verdicts["attainment_min"].measured == pytest.approx(0.9)
    assert verdicts["min_output_tokens_per_s"].met


def test_summary_has_the_keys_the_command_line_promises() -> None:
    summary = result(10, 0.1, good=10).summary()
    for key in ("requests", "errors", "req_per_s", "output_tokens_per_s", "achieved_concurrency",
                "client_cpu_ms_per_request", "valid", "invalid_reasons"):  # fmt: skip
        assert key in summary
    for key in ("ttft_ms", "itl_ms", "e2e_ms"):
        assert set(summary[key]) >= {"p50", "p95", "p99", "max"}
