"""KEDA scale to zero and back: is each scaler configured to work, and does it go 0 → 1 → N → 0 as configured?

Each check runs once per scaler under test (the profile's `scaled_objects`, or every ScaledObject and
HTTPScaledObject found). The static checks also run on YAML (`--aksai-manifests`); the lifecycle checks
change the scaler's target and are `disruptive`. See docs/reference/suites/keda.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aksai import (
    CheckReport,
    Cluster,
    Finding,
    Judgment,
    Lifecycle,
    Scaler,
    Settings,
    WaitResult,
    hpa_of,
    judge_scaler,
    read_scaled_object,
)

pytestmark = pytest.mark.keda

Objects = list[tuple[str, dict[str, Any]]]


def _longest_generation_s(settings: Settings) -> float | None:
    e2e = settings.profile.slos.e2e_p99_ms
    return e2e / 1000 if e2e else None


def _judge(judgment: Judgment) -> None:
    if judgment.ok is None:
        pytest.skip(judgment.message)
    assert judgment.ok, judgment.message


def _judgments(scaler: Scaler, objects: Objects, settings: Settings) -> Any:
    return judge_scaler(scaler, objects, longest_generation_s=_longest_generation_s(settings))


# ---- static: also on YAML ------------------------------------------------------------------------------
def test_target_is_what_runs(
    aksai_scaler: Scaler, aksai_keda_objects: Objects, aksai_settings: Settings
) -> None:
    """scaleTargetRef names a workload that exists under the kind KEDA will look for (no kind = Deployment),
    and that kind is what really runs (KAITO runs a Workspace as a StatefulSet)."""
    _judge(_judgments(aksai_scaler, aksai_keda_objects, aksai_settings).target)


def test_scale_to_zero_can_activate(
    aksai_scaler: Scaler, aksai_keda_objects: Objects, aksai_settings: Settings
) -> None:
    """With minReplicaCount 0, a trigger's signal exists while no pod runs (not the pods' own vllm:* series)."""
    _judge(_judgments(aksai_scaler, aksai_keda_objects, aksai_settings).activation)


def test_cooldown_outlasts_a_generation(
    aksai_scaler: Scaler, aksai_keda_objects: Objects, aksai_settings: Settings
) -> None:
    """The cooldown is longer than the longest generation the profile's SLOs allow."""
    _judge(_judgments(aksai_scaler, aksai_keda_objects, aksai_settings).cooldown)


def test_target_fits_max_num_seqs(
    aksai_scaler: Scaler, aksai_keda_objects: Objects, aksai_settings: Settings
) -> None:
    """The per-replica target is at most what one replica admits (vLLM's max-num-seqs)."""
    _judge(_judgments(aksai_scaler, aksai_keda_objects, aksai_settings).threshold)


def test_route_publishes_only_ready_addresses(
    aksai_scaler: Scaler, aksai_keda_objects: Objects, aksai_settings: Settings
) -> None:
    """An HTTPScaledObject's Service does not set publishNotReadyAddresses (KAITO's own Service does)."""
    _judge(_judgments(aksai_scaler, aksai_keda_objects, aksai_settings).route_service)


def test_scale_to_zero_frees_the_gpu(
    aksai_scaler: Scaler, aksai_keda_objects: Objects, aksai_settings: Settings
) -> None:
    """Scaling a KAITO Workspace's StatefulSet to zero frees no GPU (KAITO pins the node): flagged with the
    dollars per day that keep running."""
    _judge(_judgments(aksai_scaler, aksai_keda_objects, aksai_settings).workspace_gpu)


# ---- live ----------------------------------------------------------------------------------------------
@pytest.mark.explains("aksai_scaler", "aksai_scaler_ready")
def test_scaler_is_ready(
    aksai_cluster: Cluster, aksai_scaler: Scaler, aksai_scaler_ready: WaitResult, aksai_measure: Any
) -> None:
    """Ready=True (ScaledObjectReady) within two polls, the HPA keda-hpa-<name> with minReplicas =
    max(minReplicaCount, 1), and the scaler's external metrics registered."""
    aksai_measure("keda_ready_s", aksai_scaler_ready.elapsed)
    so = read_scaled_object(aksai_cluster, aksai_scaler.namespace, aksai_scaler.name)
    assert so is not None, f"ScaledObject {aksai_scaler.ref} is gone"
    hpa = hpa_of(aksai_cluster, so)
    if hpa is None:
        raise Finding(
            f"{aksai_scaler}: KEDA reports Ready but made no HPA",
            expected=f"HorizontalPodAutoscaler {so.status.hpa_name or 'keda-hpa-' + so.metadata.name}",
            where=f"kubectl get hpa -n {aksai_scaler.namespace}",
            fix="Check the keda-operator's log for errors creating the HPA",
        )
    assert hpa.min_replicas == max(so.spec.min_replica_count, 1), (
        f"{aksai_scaler}: HPA minReplicas {hpa.min_replicas}, expected max(minReplicaCount, 1) = "
        f"{max(so.spec.min_replica_count, 1)}"
    )


_PHASES = (
    "idle-at-zero",
    "activation",
    "pod-ready",
    "scale-out",
    "no-early-scale-in",
    "scale-to-zero",
    "gpu-node-gone",
)
_EXPLAINED_BY = {
    "idle-at-zero": "test_idles_at_zero",
    "activation": "test_activates_on_demand",
    "pod-ready": "test_activates_on_demand",
    "scale-out": "test_scales_out_under_sustained_demand",
    "scale-to-zero": "test_scales_to_zero_after_cooldown",
}


def _root_cause(lifecycle: Lifecycle, before: str) -> None:
    """One line naming the check that explains it, when a phase before `before` broke the lifecycle."""
    for phase in lifecycle.phases:
        if _PHASES.index(phase.name) < _PHASES.index(before) and not phase.ok and phase.name in _EXPLAINED_BY:
            pytest.fail(
                f"root cause: {lifecycle.scaler} failed its {phase.name} phase (explained by "
                f"{_EXPLAINED_BY[phase.name]})",
                pytrace=False,
            )


def _phase(lifecycle: Lifecycle, name: str, report: CheckReport, measurement: str) -> None:
    report.timeline(lifecycle.report_key)  # the run report draws the lifecycle in this check's section
    _root_cause(lifecycle, name)
    phase = lifecycle.phase(name)
    if phase is None:
        pytest.fail(f"{lifecycle.scaler}: the lifecycle stopped before the {name} phase", pytrace=False)
    if phase.seconds is not None:
        report.measure(measurement, phase.seconds, clock="cluster")
    assert phase.ok, (
        f"{lifecycle.scaler}: {phase.message}\ntimeline (cluster seconds):\n{lifecycle.timeline()}"
    )


@pytest.mark.disruptive
def test_idles_at_zero(aksai_keda_lifecycle: Lifecycle, aksai_report: CheckReport) -> None:
    """With no demand the target reaches 0 replicas and stays there for two polls (no spurious activation)."""
    _phase(aksai_keda_lifecycle, "idle-at-zero", aksai_report, "keda_idle_to_zero_s")


@pytest.mark.disruptive
def test_activates_on_demand(aksai_keda_lifecycle: Lifecycle, aksai_report: CheckReport) -> None:
    """Demand through the trigger's own channel takes the target 0 → 1 within pollingInterval + slack, and a
    replica becomes Ready (judged on ready replicas, not on the replica count)."""
    _phase(aksai_keda_lifecycle, "activation", aksai_report, "keda_zero_to_one_s")
    _phase(aksai_keda_lifecycle, "pod-ready", aksai_report, "keda_first_ready_s")


@pytest.mark.disruptive
def test_first_request_after_scale_from_zero_succeeds(
    aksai_keda_lifecycle: Lifecycle, aksai_report: CheckReport
) -> None:
    """The request that woke the target is answered 200 (status, latency and the cold-start header recorded)."""
    lifecycle = aksai_keda_lifecycle
    if not lifecycle.scaler.is_http:
        pytest.skip(
            f"{lifecycle.scaler}: no request waits for a cold start (a queue's messages wait for a worker; "
            "a prometheus trigger on the model's own series keeps minReplicaCount ≥ 1)"
        )
    _root_cause(lifecycle, "scale-out")
    first = lifecycle.first_request
    assert first is not None, f"{lifecycle.scaler}: the first request never completed"
    aksai_report.timeline(lifecycle.report_key)
    aksai_report.measure("keda_first_request_s", first.seconds, clock="cluster")
    assert first.status == 200, (
        f"{lifecycle.scaler}: the first request after scale-from-zero got {first.status or 'no answer'} after "
        f"{first.seconds:.0f} s (X-KEDA-HTTP-Cold-Start: {first.cold_start}): {first.body.strip()!r}. A 504 "
        "`Gateway Timeout` means the interceptor stopped waiting: raise its readiness timeout "
        "(KEDA_HTTP_READINESS_TIMEOUT, or the ≤ v0.13 KEDA_CONDITION_WAIT_TIMEOUT) above the cold start, and "
        "route to a Service without publishNotReadyAddresses"
    )


@pytest.mark.disruptive
def test_scales_out_under_sustained_demand(
    aksai_keda_lifecycle: Lifecycle, aksai_report: CheckReport
) -> None:
    """Sustained demand takes the target to ceil(demand / target) replicas (capped at max), as the HPA formula
    predicts."""
    _phase(aksai_keda_lifecycle, "scale-out", aksai_report, "keda_one_to_n_s")


@pytest.mark.disruptive
def test_no_scale_in_before_cooldown(aksai_keda_lifecycle: Lifecycle, aksai_report: CheckReport) -> None:
    """After the demand stops, the target keeps its replicas for the cooldown (less one poll)."""
    _phase(aksai_keda_lifecycle, "no-early-scale-in", aksai_report, "keda_demand_stop_to_zero_s")


@pytest.mark.disruptive
def test_scales_to_zero_after_cooldown(aksai_keda_lifecycle: Lifecycle, aksai_report: CheckReport) -> None:
    """The target reaches 0 within cooldownPeriod + pollingInterval + slack after the demand stops."""
    _phase(aksai_keda_lifecycle, "scale-to-zero", aksai_report, "keda_n_to_zero_s")


@pytest.mark.disruptive
def test_gpu_node_goes_after_scale_to_zero(
    aksai_keda_lifecycle: Lifecycle, aksai_report: CheckReport
) -> None:
    """Where NAP (Karpenter) provisioned the GPU nodes the target ran on, they and their NodeClaims are gone
    within the NodePool's consolidateAfter + Karpenter's slack after the target reached zero: the saving that
    scale to zero promises."""
    lifecycle = aksai_keda_lifecycle
    _root_cause(lifecycle, "scale-to-zero")
    if not lifecycle.nap_nodes:
        pytest.skip(
            f"{lifecycle.scaler}: no NAP-provisioned GPU node ran the target (nothing for Karpenter to remove)"
        )
    _phase(lifecycle, "gpu-node-gone", aksai_report, "keda_gpu_node_gone_s")
