"""Each conformance check fails on the broken simulated cluster it is meant to catch, and only there.

The bundled suites run in pytest processes of their own against the embedded simulated cluster, healthy and
then with one named fault at a time (several runs at once); the run report gives each check's verdict and
message.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.faults._matrix import Case, Verdicts, failing

KAITO_CHECKS = {
    "test_workspace_is_ready",
    "test_workload_is_ready",
    "test_services_expose_the_model",
    "test_served_name_matches_the_preset",
    "test_inference_config_is_valid",
    "test_gpu_node_matches_instance_type",
    "test_cold_start_by_phase",
}
API_CHECKS = {
    "test_health",
    "test_version",
    "test_models_list",
    "test_completion",
    "test_chat_completion",
    "test_chat_streams_through_the_sdk",
    "test_chat_stream_wire_format",
    "test_streaming_really_streams",
    "test_stream_usage_chunk",
    "test_unknown_model_is_404",
    "test_prompt_over_context_is_400",
    "test_required_metrics_are_exposed",
    "test_metrics_move_with_traffic",
}


CASES: dict[str, Case] = {
    "healthy": Case(),
    "healthy-service-proxy": Case(route="service-proxy"),
    "vllm-no-metrics": Case(("vllm-no-metrics",)),
    "vllm-buffered-stream": Case(("vllm-buffered-stream",)),
    "vllm-broken-chat-template": Case(("vllm-broken-chat-template",)),
    "vllm-wrong-served-name": Case(("vllm-wrong-served-name",)),
    "kaito-inference-oom": Case(("kaito-inference-oom",)),
    "vllm-legacy-metrics": Case(("vllm-legacy-metrics",)),
    "vllm-legacy-metrics-strict": Case(("vllm-legacy-metrics",), strict=True),
}
CASE_TESTS = {
    "kaito-inference-oom": "test_oom_killed_inference",
    "vllm-legacy-metrics": "test_an_old_server",
    "vllm-legacy-metrics-strict": "test_an_old_server",
}


@pytest.mark.parametrize("case", ["healthy", "healthy-service-proxy"])
def test_healthy_lab_passes_every_check(matrix: Callable[[str], Verdicts], case: str) -> None:
    verdicts = matrix(case)
    assert set(verdicts) == KAITO_CHECKS | API_CHECKS
    assert {n: c["outcome"] for n, c in verdicts.items() if c["outcome"] != "passed"} == {}
    assert verdicts["test_cold_start_by_phase"]["measurements"]["cold_start_model_load_s"]["value"] > 0


@pytest.mark.parametrize(
    ("fault", "expected", "says"),
    [
        (
            "vllm-no-metrics",
            {"test_required_metrics_are_exposed", "test_metrics_move_with_traffic"},
            "answered 404, expected 200 with Prometheus text",
        ),
        ("vllm-buffered-stream", {"test_streaming_really_streams"}, "the stream is buffered"),
        (
            "vllm-broken-chat-template",
            {"test_chat_completion", "test_chat_streams_through_the_sdk", "test_chat_stream_wire_format"},
            "answered 500",
        ),
        (
            "vllm-wrong-served-name",
            {"test_served_name_matches_the_preset"},
            "expected one of ['phi-4-mini-instruct']",
        ),
    ],
)
def test_each_model_server_fault_fails_exactly_its_checks(
    matrix: Callable[[str], Verdicts], fault: str, expected: set[str], says: str
) -> None:
    failed = failing(matrix(fault))
    assert set(failed) == expected, failed
    for name in expected:
        assert says in failed[name], (name, failed[name])


def test_oom_killed_inference_fails_the_workspace_and_says_why(
    matrix: Callable[[str], Verdicts],
) -> None:
    verdicts = matrix("kaito-inference-oom")
    failed = failing(verdicts)
    assert verdicts["test_inference_config_is_valid"]["outcome"] == "passed"
    assert set(failed) == (KAITO_CHECKS | API_CHECKS) - {"test_inference_config_is_valid"}
    for name, message in failed.items():
        assert "InferenceReady=False, reason ContainerOOMKilled" in message, (name, message)


def test_an_old_server_passes_with_a_warning_naming_the_rename(
    matrix: Callable[[str], Verdicts],
) -> None:
    verdicts = matrix("vllm-legacy-metrics")
    assert failing(verdicts) == {}
    warned = verdicts["test_required_metrics_are_exposed"]["warnings"]
    assert any("vllm:gpu_cache_usage_perc, renamed vllm:kv_cache_usage_perc" in w for w in warned), warned
    strict = failing(matrix("vllm-legacy-metrics-strict"))
    assert set(strict) == {"test_required_metrics_are_exposed"}
    assert "renamed vllm:kv_cache_usage_perc in newer vLLM" in strict["test_required_metrics_are_exposed"]
