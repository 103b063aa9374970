"""Each `keda` check fails on the broken simulated cluster it is meant to catch, and only there.

The `keda` suite runs in pytest processes of its own against the `keda-gpu` scenario (the default lab plus two
T4 nodes for the vLLM-standalone Deployment, until NAP provisions them), one scaler per run (the profile's
`scaled_objects`), healthy and with one named fault at a time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults._matrix import SUITES, Case, Verdicts, failing

HTTP_SCALER = 'scaled_objects = ["inference/vllm-phi4-mini"]'
KAITO_SCALER = 'scaled_objects = ["inference/workspace-phi4-mini"]'
SB_SCALER = 'scaled_objects = ["inference/inference-sb-scaler"]'
PROM_SCALER = 'scaled_objects = ["inference/vllm-phi4-mini-prom"]'
PROM_SCENARIO = str(Path(__file__).parent / "scenarios" / "keda-prometheus.yaml")

STATIC_CHECKS = {
    "test_target_is_what_runs",
    "test_scale_to_zero_can_activate",
    "test_cooldown_outlasts_a_generation",
    "test_target_fits_max_num_seqs",
    "test_route_publishes_only_ready_addresses",
    "test_scale_to_zero_frees_the_gpu",
}
LIFECYCLE_CHECKS = {
    "test_idles_at_zero",
    "test_activates_on_demand",
    "test_first_request_after_scale_from_zero_succeeds",
    "test_scales_out_under_sustained_demand",
    "test_no_scale_in_before_cooldown",
    "test_scales_to_zero_after_cooldown",
    "test_gpu_node_goes_after_scale_to_zero",
}
KEDA_CHECKS = STATIC_CHECKS | {"test_scaler_is_ready"} | LIFECYCLE_CHECKS


def _case(scaler: str, *faults: str, strict: bool = False, scenario: str = "keda-gpu") -> Case:
    # Half the default time scale (not the matrix's 600): the lifecycle's budgets are cluster seconds; at 600
    # a 45 s activation budget is 75 ms of wall time, less than a request through a port-forward takes.
    return Case(
        faults,
        strict=strict,
        suites=("test_keda.py",),
        scenario=scenario,
        profile=scaler,
        args=("-m", "keda"),
        time_scale=30,
    )


CASES: dict[str, Case] = {
    "healthy-http": _case(HTTP_SCALER, strict=True),
    "healthy-kaito": _case(KAITO_SCALER, strict=True),
    "keda-min-replicas-one": _case(HTTP_SCALER, "keda-min-replicas-one"),
    "keda-wrong-target-kind": _case(KAITO_SCALER, "keda-wrong-target-kind"),
    "keda-metrics-unavailable": _case(KAITO_SCALER, "keda-metrics-unavailable"),
    "keda-stuck-active": _case(HTTP_SCALER, "keda-stuck-active"),
    "keda-early-scale-in": _case(HTTP_SCALER, "keda-early-scale-in"),
    "keda-interceptor-timeout": _case(HTTP_SCALER, "keda-interceptor-timeout"),
    "keda-not-ready-forwarding": _case(HTTP_SCALER, "keda-not-ready-forwarding"),
    "healthy-sb": _case(SB_SCALER, strict=True),
    "keda-identity-not-federated": _case(SB_SCALER, "keda-identity-not-federated"),
    # The default lab: NAP provisions the vLLM Deployment's GPU node, so its removal after zero is judged.
    "healthy-http-nap": _case(HTTP_SCALER, strict=True, scenario="default"),
    "nap-no-consolidation": _case(HTTP_SCALER, "nap-no-consolidation", scenario="default"),
    # A prometheus trigger on the model's own series, min 1 → 2 → 1 with load at its Service.
    "healthy-prom": _case(PROM_SCALER, strict=True, scenario=PROM_SCENARIO),
    "keda-metrics-unavailable-prom": _case(PROM_SCALER, "keda-metrics-unavailable", scenario=PROM_SCENARIO),
}
CASE_TESTS = {
    "healthy-http": "test_healthy_http",
    "healthy-kaito": "test_healthy_kaito",
    "healthy-sb": "test_healthy_servicebus",
    "healthy-http-nap": "test_nap_healthy_http",
    "healthy-prom": "test_healthy_prometheus",
    "keda-metrics-unavailable-prom": "test_prometheus_metrics_unavailable",
}


def _outcomes(verdicts: Verdicts) -> dict[str, str]:
    return {name: check["outcome"] for name, check in verdicts.items()}


def test_healthy_http_scaler_passes_every_check(matrix: Callable[[str], Verdicts]) -> None:
    verdicts = matrix("healthy-http")
    assert set(verdicts) == KEDA_CHECKS
    outcomes = _outcomes(verdicts)
    assert {n for n, o in outcomes.items() if o not in ("passed", "skipped")} == set(), outcomes
    # n/a for a vLLM Deployment with no SLO in the profile; everything else runs and passes.
    assert {n for n, o in outcomes.items() if o == "skipped"} == {
        "test_cooldown_outlasts_a_generation",
        "test_scale_to_zero_frees_the_gpu",
        "test_gpu_node_goes_after_scale_to_zero",  # keda-gpu: pre-provisioned nodes, not NAP's
    }
    measured = {
        name: set(check["measurements"]) for name, check in verdicts.items() if name in LIFECYCLE_CHECKS
    }
    assert "keda_zero_to_one_s" in measured["test_activates_on_demand"]
    assert "keda_first_request_s" in measured["test_first_request_after_scale_from_zero_succeeds"]
    assert "keda_n_to_zero_s" in measured["test_scales_to_zero_after_cooldown"]


def test_healthy_kaito_scaler_passes_its_checks(matrix: Callable[[str], Verdicts]) -> None:
    outcomes = _outcomes(matrix("healthy-kaito"))
    passed = {n for n, o in outcomes.items() if o == "passed"}
    assert {"test_target_is_what_runs", "test_scaler_is_ready", "test_target_fits_max_num_seqs"} <= passed
    assert {n for n, o in outcomes.items() if o in ("failed", "error")} == set(), outcomes
    # min 1: no scale-to-zero lifecycle to run.
    assert all(outcomes[name] == "skipped" for name in LIFECYCLE_CHECKS), outcomes


def test_healthy_servicebus_scaler_goes_zero_to_n_to_zero(matrix: Callable[[str], Verdicts]) -> None:
    verdicts = matrix("healthy-sb")
    outcomes = _outcomes(verdicts)
    assert {n for n, o in outcomes.items() if o not in ("passed", "skipped")} == set(), outcomes
    passed = {n for n, o in outcomes.items() if o == "passed"}
    assert LIFECYCLE_CHECKS - passed == {
        "test_first_request_after_scale_from_zero_succeeds",  # a queue has no request to answer
        "test_gpu_node_goes_after_scale_to_zero",  # the worker runs on CPU nodes
    }, outcomes
    assert "keda_one_to_n_s" in verdicts["test_scales_out_under_sustained_demand"]["measurements"]


def test_nap_healthy_http_scaler_takes_its_gpu_node_away(matrix: Callable[[str], Verdicts]) -> None:
    verdicts = matrix("healthy-http-nap")
    outcomes = _outcomes(verdicts)
    assert {n for n, o in outcomes.items() if o not in ("passed", "skipped")} == set(), outcomes
    assert outcomes["test_gpu_node_goes_after_scale_to_zero"] == "passed", outcomes
    assert "keda_gpu_node_gone_s" in verdicts["test_gpu_node_goes_after_scale_to_zero"]["measurements"]


def test_healthy_prometheus_scaler_goes_one_to_n_to_one(matrix: Callable[[str], Verdicts]) -> None:
    verdicts = matrix("healthy-prom")
    outcomes = _outcomes(verdicts)
    assert {n for n, o in outcomes.items() if o not in ("passed", "skipped")} == set(), outcomes
    passed = {n for n, o in outcomes.items() if o == "passed"}
    assert LIFECYCLE_CHECKS - passed == {
        "test_first_request_after_scale_from_zero_succeeds",  # min 1: nothing starts from zero
        "test_gpu_node_goes_after_scale_to_zero",  # min 1: the GPU node stays
    }, outcomes
    assert "keda_one_to_n_s" in verdicts["test_scales_out_under_sustained_demand"]["measurements"]
    assert "keda_n_to_zero_s" in verdicts["test_scales_to_zero_after_cooldown"]["measurements"]


def test_prometheus_metrics_unavailable_fails_readiness_first(matrix: Callable[[str], Verdicts]) -> None:
    failed = failing(matrix("keda-metrics-unavailable-prom"))
    assert failed and "TriggerError" in failed.pop("test_scaler_is_ready"), failed
    assert all("root cause:" in message for message in failed.values()), failed


@pytest.mark.parametrize(
    ("fault", "expected", "says"),
    [
        (
            "keda-min-replicas-one",
            {"test_idles_at_zero": "KEDA holds minReplicaCount 1"},
            "explained by test_idles_at_zero",
        ),
        (
            "keda-wrong-target-kind",
            {
                "test_target_is_what_runs": "KAITO runs Workspace workspace-phi4-mini as a StatefulSet",
                "test_scaler_is_ready": 'deployments.apps "workspace-phi4-mini" not found',
            },
            "",
        ),
        (
            "keda-metrics-unavailable",
            {"test_scaler_is_ready": "TriggerError"},
            "",
        ),
        (
            "keda-stuck-active",
            {"test_scales_to_zero_after_cooldown": "after the demand stopped (cooldown 120 + polling 15"},
            "",
        ),
        (
            "keda-early-scale-in",
            {"test_no_scale_in_before_cooldown": "before the cooldown (120 s, less one poll)"},
            "",
        ),
        (
            "keda-interceptor-timeout",
            {"test_first_request_after_scale_from_zero_succeeds": "got 504"},
            "",
        ),
        (
            "keda-identity-not-federated",
            {"test_scaler_is_ready": "AADSTS"},
            "explained by test_keda.py::test_scaler_is_ready",
        ),
        (
            "nap-no-consolidation",
            {"test_gpu_node_goes_after_scale_to_zero": "after the target reached zero"},
            "",
        ),
        (
            "keda-not-ready-forwarding",
            {
                "test_route_publishes_only_ready_addresses": "sets publishNotReadyAddresses",
                "test_first_request_after_scale_from_zero_succeeds": "got 504",
            },
            "",
        ),
    ],
)
def test_each_keda_fault_fails_exactly_its_checks(
    matrix: Callable[[str], Verdicts], fault: str, expected: dict[str, str], says: str
) -> None:
    failed = failing(matrix(fault))
    explaining = set(expected)
    dependents = {name for name, message in failed.items() if "root cause:" in message}
    assert set(failed) - dependents == explaining, failed
    for name, text in expected.items():
        assert text in failed[name], (name, failed[name])
    for name in dependents:
        assert says and says in failed[name], (name, failed[name])


SEED = Path(__file__).resolve().parents[3] / "shared" / "upstream" / "aks-ai-lab-manifests"


def test_the_seed_labs_http_scaler_fails_naming_the_kind_mismatch(tmp_path: Path) -> None:
    """The seed lab's `keda/1-http-scaledobject.yaml` with its Workspace, in static mode: the target-kind check
    names the Deployment/StatefulSet mismatch, and the route check KAITO's Service with not-ready addresses."""
    if not SEED.is_dir():
        pytest.skip(f"the seed lab's manifests are not at {SEED}")
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    shutil.copy(SEED / "keda" / "1-http-scaledobject.yaml", deploy)
    shutil.copy(SEED / "kaito" / "workspace-phi4-mini.yaml", deploy)
    shutil.copy(SUITES / "test_keda.py", tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--aksai-manifests=deploy", "-rf"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    failed = {
        line.split("::")[1].split("[")[0] for line in run.stdout.splitlines() if line.startswith("FAILED ")
    }
    assert failed == {"test_target_is_what_runs", "test_route_publishes_only_ready_addresses"}, run.stdout[
        -3000:
    ]
    assert (
        "names Deployment/workspace-phi4-mini (no kind: KEDA reads Deployment), but KAITO runs" in run.stdout
    )
    assert "Set scaleTargetRef.apiVersion: apps/v1 and kind: StatefulSet" in run.stdout
