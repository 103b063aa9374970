"""The load suite's checks each fail on the simulated lab broken the way they are meant to catch.

Every SLO is set in the inner runs' profile, so all ten checks are judged in every case. The validity limit on
the client's event-loop lag is relaxed to 100 ms: the cases run several at a time on a shared 2-core machine,
where the scheduler alone delays a 10 ms timer by more than the default 5 ms (a quiet core keeps it under
1 ms). The simulated engine paces its steps on the same two cores, so under that load its steps run late
too: the ITL and attainment limits leave room for it (twice the roofline's prefill-stalled ITL p95 of about
120 ms, 90 %), while the faults move their checks far past any limit. One case makes the client's CPU limit
unreachable, to show an invalid run errors every check.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.faults._matrix import Case, Verdicts, failing

LOAD_CHECKS = {
    "test_ttft_p95",
    "test_itl_p95",
    "test_e2e_p99",
    "test_error_rate",
    "test_output_throughput",
    "test_attainment",
    "test_ttft_matches_server",
    "test_queueing_matches_sizing",
    "test_kv_usage_matches_sizing",
    "test_breakeven",
}
PROFILE = """
[clusters.fast.load]
concurrency = 10
duration_s = 10
max_tokens = 64
[clusters.fast.load.validity]
max_loop_lag_p99_ms = 100
[clusters.fast.slos]
itl_p95_ms = 400
attainment_min = 0.9
e2e_p99_ms = 10000
min_output_tokens_per_s = 40
breakeven_requests_per_day_max = 5000000
"""
INVALID = PROFILE.replace(
    "max_loop_lag_p99_ms = 100", "max_loop_lag_p99_ms = 100\nmax_client_cpu_fraction = 0.0001"
)


def _case(*faults: str, profile: str = PROFILE) -> Case:
    return Case(faults, suites=("test_load.py",), profile=profile)


CASES: dict[str, Case] = {
    "load-healthy": _case(),
    "vllm-slow-ttft": _case("vllm-slow-ttft"),
    "vllm-errors-under-load": _case("vllm-errors-under-load"),
    "vllm-kv-smaller-than-configured": _case("vllm-kv-smaller-than-configured"),
    "load-invalid-run": _case(profile=INVALID),
    "load-three-workers": _case(profile=PROFILE.replace("concurrency = 10", "concurrency = 10\nworkers = 3")),
    "load-past-the-knee": _case(profile=PROFILE.replace("concurrency = 10", "concurrency = 16")),
    "load-service-proxy": Case(suites=("test_load.py",), profile=PROFILE, route="service-proxy"),
}
CASE_TESTS = {
    "load-healthy": "test_healthy_lab",
    "vllm-slow-ttft": "test_slow_ttft",
    "vllm-kv-smaller-than-configured": "test_kv_fault",
    "load-invalid-run": "test_an_invalid_run",
    "load-three-workers": "test_three_workers",
    "load-past-the-knee": "test_past_the_knee",
    "load-service-proxy": "test_the_service_proxy",
}


def test_healthy_lab_meets_every_slo_and_cross_check(matrix: Callable[[str], Verdicts]) -> None:
    verdicts = matrix("load-healthy")
    assert set(verdicts) == LOAD_CHECKS
    assert {n: (c["outcome"], c["message"]) for n, c in verdicts.items() if c["outcome"] != "passed"} == {}
    gap = verdicts["test_ttft_matches_server"]["measurements"]
    assert gap["load_ttft_server_mean_ms"]["value"] > 0
    assert gap["load_ttft_server_mean_ms"]["clock"] == "wall"
    assert verdicts["test_ttft_p95"]["measurements"]["load_valid"]["value"] == 1.0


def test_healthy_lab_records_the_scalers_replicas_and_the_sizing_row(
    matrix: Callable[[str], Verdicts],
) -> None:
    """The default lab's ScaledObject serves the Workspace: its replicas during the run are in the report."""
    verdicts = matrix("load-healthy")
    ttft = verdicts["test_ttft_p95"]
    assert "load:inference/workspace-phi4-mini:replicas" in ttft["timelines"], ttft["timelines"]
    measured = {k: m["value"] for k, m in ttft["measurements"].items()}
    assert measured["load_replicas"] == 1
    assert measured["load_ready_replicas_min"] == measured["load_ready_replicas_max"] == 1
    assert "sizing" in verdicts["test_queueing_matches_sizing"]["tables"]


def test_the_service_proxy_route_is_refused_naming_why(matrix: Callable[[str], Verdicts]) -> None:
    """Load through the API server's service proxy would time the API server: every check errors, saying so."""
    verdicts = matrix("load-service-proxy")
    assert {n: c["outcome"] for n, c in verdicts.items()} == dict.fromkeys(LOAD_CHECKS, "error")
    for check in verdicts.values():
        message = check["message"]
        assert "through the API server's service proxy" in message, message
        assert "API Priority and Fairness" in message and "route service-proxy" in message, message


@pytest.mark.parametrize(
    ("fault", "expected", "consequences", "says"),
    [
        (
            "vllm-slow-ttft",
            {"test_ttft_p95", "test_attainment"},
            # Closed loop: every request lasts 3 s longer, so the measured tok/s halves and self-hosting stops
            # paying off against the API.
            {"test_breakeven", "test_output_throughput"},
            {"test_ttft_p95": "TTFT p95 was", "test_attainment": "SLO attainment"},
        ),
        (
            "vllm-errors-under-load",
            {"test_error_rate", "test_attainment"},
            set(),
            {"test_error_rate": "errors: http_500", "test_attainment": "errors: http_500"},
        ),
        (
            "vllm-kv-smaller-than-configured",
            {"test_queueing_matches_sizing", "test_kv_usage_matches_sizing"},
            # Requests queue behind a full cache and are preempted: latency SLOs may miss too.
            {"test_ttft_p95", "test_itl_p95", "test_e2e_p99", "test_attainment"},
            {
                "test_queueing_matches_sizing": "queueing began at",
                "test_kv_usage_matches_sizing": "sizing predicts",
            },
        ),
    ],
)
def test_fault_fails_exactly_its_checks(
    matrix: Callable[[str], Verdicts],
    fault: str,
    expected: set[str],
    consequences: set[str],
    says: dict[str, str],
) -> None:
    verdicts = matrix(fault)
    assert set(verdicts) == LOAD_CHECKS
    failed = failing(verdicts)
    assert expected <= set(failed) <= expected | consequences, failed
    assert {n: c["outcome"] for n, c in verdicts.items() if n not in failed} == dict.fromkeys(
        LOAD_CHECKS - set(failed), "passed"
    )
    for name, phrase in says.items():
        assert phrase in failed[name] and "run valid" in failed[name], failed[name]
        assert "AssertionError" not in failed[name] and "Traceback" not in failed[name], failed[name]


def test_slow_ttft_is_also_in_the_servers_histogram(matrix: Callable[[str], Verdicts]) -> None:
    """The delay is the server's: client and server TTFT agree, so the cross-check passes and names no proxy."""
    measured = {
        k: m["value"] for k, m in matrix("vllm-slow-ttft")["test_ttft_matches_server"]["measurements"].items()
    }
    assert measured["load_ttft_server_mean_ms"] > 2500
    assert abs(measured["load_ttft_gap_ms"]) <= measured["load_ttft_gap_limit_ms"]


def test_kv_fault_names_both_numbers(matrix: Callable[[str], Verdicts]) -> None:
    message = failing(matrix("vllm-kv-smaller-than-configured"))["test_kv_usage_matches_sizing"]
    assert "KV-cache usage averaged" in message and "sizing predicts" in message, message
    assert "not the size its config implies" in message, message


def test_an_invalid_run_errors_every_check_naming_the_saturated_resource(
    matrix: Callable[[str], Verdicts],
) -> None:
    verdicts = matrix("load-invalid-run")
    assert {n: c["outcome"] for n, c in verdicts.items()} == dict.fromkeys(LOAD_CHECKS, "error")
    for check in verdicts.values():
        assert "The load run is invalid: the client saturated its client CPU" in check["message"], check


def test_three_workers_run_as_an_indexed_job_and_their_results_merge(
    matrix: Callable[[str], Verdicts],
) -> None:
    """`[load] workers = 3`: three pods of an Indexed Job run the real client; the suite judges the merge."""
    verdicts = matrix("load-three-workers")
    assert {n: (c["outcome"], c["message"]) for n, c in verdicts.items() if c["outcome"] != "passed"} == {}
    measured = verdicts["test_ttft_p95"]["measurements"]
    assert measured["load_workers"]["value"] == 3
    assert measured["load_achieved_concurrency"]["value"] >= 0.95 * 10


def test_past_the_knee_queueing_starts_where_sizing_says(matrix: Callable[[str], Verdicts]) -> None:
    """16 streams on a server of max-num-seqs 12: requests wait from the 13th on, as predicted."""
    verdicts = matrix("load-past-the-knee")
    assert verdicts["test_queueing_matches_sizing"]["outcome"] == "passed", verdicts[
        "test_queueing_matches_sizing"
    ]
    assert verdicts["test_kv_usage_matches_sizing"]["outcome"] == "passed", verdicts[
        "test_kv_usage_matches_sizing"
    ]
    measured = verdicts["test_queueing_matches_sizing"]["measurements"]
    assert measured["load_queue_onset_predicted"]["value"] == 13
    assert abs(measured["load_queue_onset_measured"]["value"] - 13) <= 1.3
