"""Each conformance check fails on the broken simulated cluster it is meant to catch, and only there.

The bundled suites run in pytest processes of their own against the embedded simulated cluster, healthy and
then with one named fault at a time (several runs at once); the run report gives each check's verdict and
message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Case:
    faults: tuple[str, ...] = ()
    strict: bool = False
    route: str = "auto"


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
CONCURRENT_RUNS = 4
"""The suites mostly wait on the simulated model server's (real-time) token latency, so runs overlap well."""


def _run_suites(folder: Path, case: Case) -> dict[str, dict[str, Any]]:
    """Run the kaito and api suites in a pytest process of their own against a new simulated lab."""
    for name in ("test_kaito.py", "test_api_surface.py"):
        shutil.copy(SUITES / name, folder / name)
    profile = FAST_SIM.replace('provider = "sim"\n', f'provider = "sim"\nendpoint_route = "{case.route}"\n')
    (folder / "aksai.toml").write_text(profile)
    args = [
        sys.executable,
        "-m",
        "pytest",
        "--aksai-cluster=fast",
        "--aksai-report=report",
        "-p",
        "no:randomly",
    ]
    for fault in case.faults:
        args += ["--aksai-sim-fault", fault]
    if case.strict:
        args.append("--aksai-strict")
    run = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=300, check=False)
    report = folder / "report" / "aksai-report.json"
    assert report.is_file(), f"the inner run wrote no report (exit {run.returncode}):\n{run.stdout[-3000:]}"
    data = json.loads(report.read_text())
    verdicts: dict[str, dict[str, Any]] = {}
    for check in data["checks"]:
        name = check["nodeid"].split("::")[-1].split("[")[0]
        verdicts[name] = check
    return verdicts


def _cases_of(item: pytest.Item) -> list[str]:
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    named = [str(params[key]) for key in ("case", "fault") if key in params]
    return named or [name for name in CASES if item.name.startswith(CASE_TESTS.get(name, "-"))]


CASE_TESTS = {
    "kaito-inference-oom": "test_oom_killed_inference",
    "vllm-legacy-metrics": "test_an_old_server",
    "vllm-legacy-metrics-strict": "test_an_old_server",
}


@pytest.fixture(scope="module")
def matrix(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[dict[str, dict[str, Any]]]]]:
    """The verdicts of the cases the selected tests need, run a few at a time in the background."""
    module = request.node
    wanted = {case for item in request.session.items if item.module is module.obj for case in _cases_of(item)}
    with ThreadPoolExecutor(CONCURRENT_RUNS) as pool:
        yield {
            name: pool.submit(_run_suites, tmp_path_factory.mktemp(name), case)
            for name, case in CASES.items()
            if name in wanted
        }


def _verdicts(matrix: dict[str, Future[dict[str, dict[str, Any]]]], case: str) -> dict[str, dict[str, Any]]:
    return matrix[case].result(timeout=600)


def _failing(verdicts: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: c["message"] for name, c in verdicts.items() if c["outcome"] in ("failed", "error")}


@pytest.mark.parametrize("case", ["healthy", "healthy-service-proxy"])
def test_healthy_lab_passes_every_check(
    matrix: dict[str, Future[dict[str, dict[str, Any]]]], case: str
) -> None:
    verdicts = _verdicts(matrix, case)
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
        (
            "vllm-wrong-served-name",
            {"test_served_name_matches_the_preset"},
            "expected one of ['phi-4-mini-instruct']",
        ),
    ],
)
def test_each_model_server_fault_fails_exactly_its_checks(
    matrix: dict[str, Future[dict[str, dict[str, Any]]]], fault: str, expected: set[str], says: str
) -> None:
    failing = _failing(_verdicts(matrix, fault))
    assert set(failing) == expected, failing
    for name in expected:
        assert says in failing[name], (name, failing[name])


def test_oom_killed_inference_fails_the_workspace_and_says_why(
    matrix: dict[str, Future[dict[str, dict[str, Any]]]],
) -> None:
    verdicts = _verdicts(matrix, "kaito-inference-oom")
    failing = _failing(verdicts)
    assert verdicts["test_inference_config_is_valid"]["outcome"] == "passed"
    assert set(failing) == (KAITO_CHECKS | API_CHECKS) - {"test_inference_config_is_valid"}
    for name, message in failing.items():
        assert "InferenceReady=False, reason ContainerOOMKilled" in message, (name, message)


def test_an_old_server_passes_with_a_warning_naming_the_rename(
    matrix: dict[str, Future[dict[str, dict[str, Any]]]],
) -> None:
    verdicts = _verdicts(matrix, "vllm-legacy-metrics")
    assert _failing(verdicts) == {}
    warned = verdicts["test_required_metrics_are_exposed"]["warnings"]
    assert any("vllm:gpu_cache_usage_perc, renamed vllm:kv_cache_usage_perc" in w for w in warned), warned
    strict = _failing(_verdicts(matrix, "vllm-legacy-metrics-strict"))
    assert set(strict) == {"test_required_metrics_are_exposed"}
    assert "renamed vllm:kv_cache_usage_perc in newer vLLM" in strict["test_required_metrics_are_exposed"]
