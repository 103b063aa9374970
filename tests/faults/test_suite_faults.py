"""Each conformance check fails on the broken simulated cluster it is meant to catch, and only there.

The bundled suites run inside pytester against the embedded simulated cluster, healthy and then with one
named fault at a time; the run report gives each check's verdict and message.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

SUITES = Path(__file__).resolve().parents[2] / "suites"
FAST_SIM = '[clusters.fast]\nprovider = "sim"\n[clusters.fast.sim]\ntime_scale = 600\n'

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


def _run_suites(
    pytester: pytest.Pytester, *faults: str, strict: bool = False, route: str = "auto"
) -> dict[str, dict[str, Any]]:
    for name in ("test_kaito.py", "test_api_surface.py"):
        shutil.copy(SUITES / name, pytester.path / name)
    pytester.makefile(
        ".toml",
        aksai=FAST_SIM.replace('provider = "sim"\n', f'provider = "sim"\nendpoint_route = "{route}"\n'),
    )
    args = ["--aksai-cluster=fast", "--aksai-report=report", "-p", "no:randomly"]
    for fault in faults:
        args += ["--aksai-sim-fault", fault]
    if strict:
        args.append("--aksai-strict")
    pytester.runpytest_subprocess(*args, timeout=300)
    data = json.loads((pytester.path / "report" / "aksai-report.json").read_text())
    verdicts: dict[str, dict[str, Any]] = {}
    for check in data["checks"]:
        name = check["nodeid"].split("::")[-1].split("[")[0]
        verdicts[name] = check
    return verdicts


def _failing(verdicts: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: c["message"] for name, c in verdicts.items() if c["outcome"] in ("failed", "error")}


@pytest.mark.parametrize("route", ["auto", "service-proxy"])
def test_healthy_lab_passes_every_check(pytester: pytest.Pytester, route: str) -> None:
    verdicts = _run_suites(pytester, route=route)
    assert set(verdicts) == KAITO_CHECKS | API_CHECKS
    assert {n: c["outcome"] for n, c in verdicts.items() if c["outcome"] != "passed"} == {}
    assert verdicts["test_cold_start_by_phase"]["measurements"]["cold_start_model_load_s"] > 0


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
        ("vllm-wrong-served-name", {"test_served_name_matches_the_preset"}, "expected one of ['phi-4-mini-instruct']"),
    ],
)
def test_each_model_server_fault_fails_exactly_its_checks(
    pytester: pytest.Pytester, fault: str, expected: set[str], says: str
) -> None:
    failing = _failing(_run_suites(pytester, fault))
    assert set(failing) == expected, failing
    for name in expected:
        assert says in failing[name], (name, failing[name])


def test_oom_killed_inference_fails_the_workspace_and_says_why(pytester: pytest.Pytester) -> None:
    verdicts = _run_suites(pytester, "kaito-inference-oom")
    failing = _failing(verdicts)
    assert verdicts["test_inference_config_is_valid"]["outcome"] == "passed"
    assert set(failing) == (KAITO_CHECKS | API_CHECKS) - {"test_inference_config_is_valid"}
    for name, message in failing.items():
        assert "InferenceReady=False, reason ContainerOOMKilled" in message, (name, message)


def test_an_old_server_passes_with_a_warning_naming_the_rename(pytester: pytest.Pytester) -> None:
    verdicts = _run_suites(pytester, "vllm-legacy-metrics")
    assert _failing(verdicts) == {}
    warned = verdicts["test_required_metrics_are_exposed"]["warnings"]
    assert any("vllm:gpu_cache_usage_perc, renamed vllm:kv_cache_usage_perc" in w for w in warned), warned
    strict = _failing(_run_suites(pytester, "vllm-legacy-metrics", strict=True))
    assert set(strict) == {"test_required_metrics_are_exposed"}
    assert "renamed vllm:kv_cache_usage_perc in newer vLLM" in strict["test_required_metrics_are_exposed"]
