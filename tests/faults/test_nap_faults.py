"""The `nap` suite's fault × check matrix: each NAP fault fails exactly the checks meant to catch it.

The lifecycle checks share one GPU probe: when the probe never gets its node, the check that explains the
probe carries Karpenter's reason and the fix, and the other lifecycle checks fail with one line naming it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.faults._matrix import Case, Verdicts, failing

NAP_SUITE = ("test_nap.py",)
BUDGET = "idle_cost_per_day_max = 15.0"
SPOT_POOL = 'nodepools = ["gpu-inference-spot"]'
NODEPOOL_CHECKS = {
    "test_requirements_match_a_sku",
    "test_gpu_taint_is_tolerated",
    "test_limits_cover_the_demand",
    "test_consolidation_is_within_the_idle_budget",
    "test_spot_pool_serves_no_synchronous_inference",
    "test_nodeclass_is_ready",
}
PROBE_EXPLAINER = "test_gpu_node_comes_for_a_pending_gpu_pod"
PROBE_DEPENDENTS = {
    "test_probe_ran_on_the_promised_gpu",
    "test_node_is_the_cheapest_fit",
    "test_empty_node_is_consolidated",
}
LIFECYCLE_CHECKS = {PROBE_EXPLAINER, *PROBE_DEPENDENTS}
NAP_CHECKS = NODEPOOL_CHECKS | LIFECYCLE_CHECKS | {"test_idle_cost_floor"}


NAP_TIME_SCALE = 120
"""Karpenter's windows the checks race against (the 5 min launch timeout a quota error must beat, 2m + 25 s of
consolidation, the 45 s from a spot eviction to the node's deletion) last well under a wall second at 600x:
on a loaded machine the probe's waits would look too late. At 120x the whole lifecycle is still ~4 s wall."""


def _nap(*faults: str, profile: str = BUDGET) -> Case:
    return Case(faults, suites=NAP_SUITE, profile=profile, time_scale=NAP_TIME_SCALE)


CASES: dict[str, Case] = {
    "nap-healthy": _nap(),
    "nap-healthy-strict": Case(suites=NAP_SUITE, profile=BUDGET, strict=True, time_scale=NAP_TIME_SCALE),
    "nap-sku-family-mismatch": _nap("nap-sku-family-mismatch"),
    "nap-limits-exhausted": _nap("nap-limits-exhausted"),
    "nap-quota-exceeded": _nap("nap-quota-exceeded"),
    "nap-gpu-not-advertised": _nap("nap-gpu-not-advertised"),
    "nap-no-consolidation": _nap("nap-no-consolidation"),
    "nap-pricier-sku": _nap("nap-pricier-sku"),
    "nap-idle-budget": _nap(profile="idle_cost_per_day_max = 5.0"),
    # The probe on the spot pool (the profile names it), healthy and then evicted mid-run.
    "nap-spot-probe": _nap(profile=f"{BUDGET}\n{SPOT_POOL}"),
    "nap-spot-eviction": _nap("nap-spot-eviction", profile=f"{BUDGET}\n{SPOT_POOL}"),
}
CASE_TESTS = {
    "nap-sku-family-mismatch": "test_a_nodepool_no_sku_matches",
    "nap-pricier-sku": "test_a_pricier_sku",
    "nap-no-consolidation": "test_no_consolidation",
    "nap-idle-budget": "test_idle_gpus_over_budget",
    "nap-spot-probe": "test_the_probe_on_the_spot_pool",
    "nap-spot-eviction": "test_a_spot_eviction",
}


@pytest.mark.parametrize("case", ["nap-healthy", "nap-healthy-strict"])
def test_healthy_lab_passes_every_nap_check(matrix: Callable[[str], Verdicts], case: str) -> None:
    verdicts = matrix(case)
    assert set(verdicts) == NAP_CHECKS
    assert failing(verdicts) == {}
    measured = verdicts[PROBE_EXPLAINER]["measurements"]
    phases = [
        "nap_nodeclaim_created_s",
        "nap_launched_s",
        "nap_registered_s",
        "nap_initialized_s",
        "nap_probe_succeeded_s",
    ]
    values = [measured[p]["value"] for p in phases]
    assert values == sorted(values), values
    gone = verdicts["test_empty_node_is_consolidated"]["measurements"]["nap_node_gone_after_probe_s"]["value"]
    assert 120 <= gone <= 120 + 335, gone  # consolidateAfter 2m + the documented slack
    assert verdicts["test_idle_cost_floor"]["measurements"]["nap_idle_cost_per_day_usd"]["value"] > 0


def _lifecycle_fails_with(verdicts: Verdicts, says: list[str]) -> None:
    failed = failing(verdicts)
    assert set(failed) >= LIFECYCLE_CHECKS, failed
    for text in says:
        assert text in failed[PROBE_EXPLAINER], failed[PROBE_EXPLAINER]
    for name in PROBE_DEPENDENTS:
        assert "root cause: " in failed[name], (name, failed[name])
        assert PROBE_EXPLAINER in failed[name], (name, failed[name])


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (
            "nap-limits-exhausted",
            [
                "all available instance types exceed limits for nodepool (NodePool=gpu-inference)",
                "Raise the NodePool's spec.limits",
            ],
        ),
        (
            "nap-quota-exceeded",
            [
                "reason SubscriptionQuotaReached",
                "vCPU quota for Standard_NC4as_T4_v3 has been reached",
                "https://aka.ms/quotas",
            ],
        ),
        (
            "nap-gpu-not-advertised",
            ["never advertised nvidia.com/gpu", "ResourceNotRegistered", "device plugin"],
        ),
    ],
)
def test_each_provisioning_fault_fails_the_lifecycle_checks_only(
    matrix: Callable[[str], Verdicts], fault: str, says: list[str]
) -> None:
    verdicts = matrix(fault)
    assert set(failing(verdicts)) == LIFECYCLE_CHECKS, failing(verdicts)
    _lifecycle_fails_with(verdicts, says)


def test_a_nodepool_no_sku_matches_fails_its_requirements_and_the_probe(
    matrix: Callable[[str], Verdicts],
) -> None:
    verdicts = matrix("nap-sku-family-mismatch")
    assert set(failing(verdicts)) == LIFECYCLE_CHECKS | {"test_requirements_match_a_sku"}
    message = failing(verdicts)["test_requirements_match_a_sku"]
    assert "karpenter.azure.com/sku-family In [NC]" in message and "use [N]" in message, message
    _lifecycle_fails_with(
        verdicts, ["Failed to schedule pod, nodepool requirements filtered out all available instance types"]
    )


def test_no_consolidation_fails_only_the_deprovision_check(matrix: Callable[[str], Verdicts]) -> None:
    verdicts = matrix("nap-no-consolidation")
    assert set(failing(verdicts)) == {"test_empty_node_is_consolidated"}
    message = failing(verdicts)["test_empty_node_is_consolidated"]
    assert "did not become deleted (Disrupting NodeClaim: Empty)" in message, message


def test_a_pricier_sku_fails_the_cheapest_fit_check(matrix: Callable[[str], Verdicts]) -> None:
    failed = failing(matrix("nap-pricier-sku"))
    assert set(failed) == {"test_node_is_the_cheapest_fit"}
    message = failed["test_node_is_the_cheapest_fit"]
    assert (
        "NAP launched Standard_NC24ads_A100_v4" in message and "Standard_NC4as_T4_v3 ($0.526/h)" in message
    ), message


def test_idle_gpus_over_budget_name_each_node_its_cost_and_its_pin(matrix: Callable[[str], Verdicts]) -> None:
    failed = failing(matrix("nap-idle-budget"))
    assert set(failed) == {"test_idle_cost_floor"}
    message = failed["test_idle_cost_floor"]
    for text in (
        "over the budget of $5.00/day",
        "$12.62/day",
        'karpenter.sh/do-not-disrupt: "true"',
        "KAITO Workspace inference/workspace-phi4-mini",
    ):
        assert text in message, message


def test_the_probe_on_the_spot_pool_passes_every_check_when_nothing_evicts_it(
    matrix: Callable[[str], Verdicts],
) -> None:
    verdicts = matrix("nap-spot-probe")
    assert failing(verdicts) == {}
    assert verdicts[PROBE_EXPLAINER]["outcome"] == "passed"


def test_a_spot_eviction_mid_probe_fails_the_lifecycle_checks_naming_node_sku_and_fix(
    matrix: Callable[[str], Verdicts],
) -> None:
    verdicts = matrix("nap-spot-eviction")
    assert set(failing(verdicts)) == LIFECYCLE_CHECKS, failing(verdicts)
    _lifecycle_fails_with(
        verdicts,
        [
            "was evicted mid-run: Azure reclaimed the spot VM",
            "Standard_NC4as_T4_v3, capacity type spot, NodePool gpu-inference-spot",
            "because it does not exist in the cloud provider",
            "run the GPU probe and synchronous inference on an on-demand NodePool",
        ],
    )
    # Cleanup left nothing: the idle floor, judged after the probe's teardown, found no GPU node of the probe.
    assert "aks-gpu-inference-spot" not in verdicts["test_idle_cost_floor"]["message"]
