"""Node Auto-Provisioning (Karpenter on AKS): can the NodePools provision the right GPU nodes, do the nodes come
when a GPU pod waits and go when it is gone, and what do idle GPUs cost?

The NodePool checks run once per NodePool under test (the profile's `nodepools`, or every NodePool), also in
static mode on YAML (`--aksai-manifests`). The lifecycle checks share one GPU probe per run and are `costly`
and `disruptive`. See docs/reference/suites/nap.md for what each check proves and how to fix a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_aksai import CheckReport, Cluster, IdleNode, NodePool, ProbeRun, Settings, gpu_sku, idle_gpu_nodes

pytestmark = pytest.mark.nap

Objects = list[dict[str, Any]]


def _fail_on(problems: list[str], pool: NodePool, what: str) -> None:
    assert not problems, f"NodePool {pool.name} {what}: " + "; ".join(problems)


def _gpu_pool(pool: NodePool) -> None:
    if not pool.is_gpu:
        pytest.skip(
            f"NodePool {pool.name} provisions no GPU nodes (no nvidia.com/gpu limit, taint or GPU SKU)"
        )


@pytest.mark.explains("aksai_nodepool")
def test_requirements_match_a_sku(aksai_nodepool: NodePool) -> None:
    """The requirements use only labels NAP knows and match at least one SKU of the catalog."""
    _fail_on(aksai_nodepool.requirement_problems(), aksai_nodepool, "cannot provision what it asks for")


def test_gpu_taint_is_tolerated(aksai_nodepool: NodePool, aksai_nap_objects: Objects) -> None:
    """A GPU NodePool is tainted, and the GPU workloads meant for it tolerate the taint."""
    _gpu_pool(aksai_nodepool)
    _fail_on(aksai_nodepool.taint_problems(aksai_nap_objects), aksai_nodepool, "taints")


def test_limits_cover_the_demand(aksai_nodepool: NodePool, aksai_nap_objects: Objects) -> None:
    """Limits exist, cap nvidia.com/gpu, and cover the largest demand of the workloads that can use the pool."""
    _gpu_pool(aksai_nodepool)
    _fail_on(aksai_nodepool.limit_problems(aksai_nap_objects), aksai_nodepool, "limits")


def test_consolidation_is_within_the_idle_budget(aksai_settings: Settings, aksai_nodepool: NodePool) -> None:
    """consolidateAfter is set and within the profile's idle budget (`consolidate_after_max`)."""
    _gpu_pool(aksai_nodepool)
    problems = aksai_nodepool.consolidation_problems(aksai_settings.profile.consolidate_after_max)
    _fail_on(problems, aksai_nodepool, "keeps idle GPU nodes")


def test_spot_pool_serves_no_synchronous_inference(
    aksai_nodepool: NodePool, aksai_nap_objects: Objects
) -> None:
    """A NodePool that may launch spot VMs cannot host a GPU workload that serves requests behind a Service."""
    if "spot" not in aksai_nodepool.capacity_types:
        pytest.skip(f"NodePool {aksai_nodepool.name} launches no spot capacity")
    _fail_on(
        aksai_nodepool.spot_problems(aksai_nap_objects), aksai_nodepool, "puts synchronous inference on spot"
    )


def test_nodeclass_is_ready(
    aksai_settings: Settings, aksai_nodepool: NodePool, aksai_nap_objects: Objects
) -> None:
    """The AKSNodeClass exists with a real subnet; on a cluster, NodePool Ready and NodeClassReady are True."""
    live = aksai_settings.manifests is None
    _fail_on(aksai_nodepool.nodeclass_problems(aksai_nap_objects, live=live), aksai_nodepool, "is not ready")


@pytest.mark.explains("aksai_gpu_probe")
@pytest.mark.costly
@pytest.mark.disruptive
def test_gpu_node_comes_for_a_pending_gpu_pod(
    aksai_measure: Callable[[str, float], None], aksai_report: CheckReport, aksai_gpu_probe: ProbeRun
) -> None:
    """A pod asking for a GPU gets a NodeClaim within seconds, Launched, Registered and Initialized, and runs."""
    run = aksai_gpu_probe
    for phase, seconds in run.phases.items():
        aksai_measure(f"nap_{phase}", seconds)
    expected = ["nodeclaim_created_s", "launched_s", "registered_s", "initialized_s", "probe_succeeded_s"]
    missing = [p for p in expected if p not in run.phases]
    assert not missing, f"phases not measured: {missing}"
    order = [run.phases[p] for p in expected]
    assert order == sorted(order), f"phases out of order: {dict(zip(expected, order, strict=True))}"
    timeline = aksai_report.timeline("nap-gpu-probe", f"GPU probe on {run.instance_type}", "cluster")
    starts = [0.0, *order[:-1]]
    for label, start, end in zip(
        ["NodeClaim created", "launch", "boot + join", "GPU advertised", "probe ran"],
        starts,
        order,
        strict=True,
    ):
        timeline.phase(label, start, end)
    sku = gpu_sku(run.instance_type) if run.instance_type != "?" else None
    if sku is not None and sku.price_per_hour is not None:
        node_hours = (run.phases.get("node_gone_after_probe_s", 0.0) + order[-1] - order[1]) / 3600
        aksai_measure("nap_probe_gpu_minutes", round(node_hours * 60 * sku.gpu_count, 2))
        aksai_measure("nap_probe_cost_usd", round(node_hours * sku.price_per_hour, 4))
        aksai_report.cost.add_gpu_use(
            sku.name, node_hours * 60, node_hours * sku.price_per_hour, "nap GPU probe"
        )


@pytest.mark.costly
@pytest.mark.disruptive
def test_probe_ran_on_the_promised_gpu(aksai_gpu_probe: ProbeRun) -> None:
    """The node advertises as many GPUs as its SKU has, and nvidia-smi on it names the GPU its labels promise."""
    run = aksai_gpu_probe
    labels = run.node_labels
    promised = labels.get("karpenter.azure.com/sku-gpu-count")
    assert promised is not None, f"node {run.node} has no karpenter.azure.com/sku-gpu-count label"
    assert run.gpu_allocatable == int(promised), (
        f"node {run.node} ({run.instance_type}) advertises nvidia.com/gpu: {run.gpu_allocatable}, its SKU has "
        f"{promised} GPU(s): check the NVIDIA device plugin on the node"
    )
    gpu_name = labels.get("karpenter.azure.com/sku-gpu-name")
    if not gpu_name:
        pytest.skip(f"node {run.node} has no sku-gpu-name label (some GPU SKUs do not populate it)")
    assert gpu_name in run.log, (
        f"nvidia-smi on node {run.node} ({run.instance_type}, sku-gpu-name {gpu_name}) does not name a {gpu_name}; "
        f"it printed: {run.log[:300]!r}"
    )


@pytest.mark.costly
@pytest.mark.disruptive
def test_node_is_the_cheapest_fit(aksai_cluster: Cluster, aksai_gpu_probe: ProbeRun) -> None:
    """The node's labels satisfy its NodePool, and its SKU is the cheapest the NodePool allows that fits."""
    from pytest_aksai import kinds

    run = aksai_gpu_probe
    obj = aksai_cluster.get(kinds.NODEPOOLS, run.nodepool or "")
    assert obj is not None, f"node {run.node} names NodePool {run.nodepool!r}, which does not exist"
    pool = NodePool.model_validate(obj)
    violated = pool.admits(run.node_labels)
    assert not violated, f"node {run.node} breaks NodePool {pool.name}'s requirements: {'; '.join(violated)}"
    cheaper = run.cheaper_fits(pool)
    chosen = gpu_sku(run.instance_type).price_per_hour
    assert not cheaper, (
        f"NAP launched {run.instance_type} (${chosen}/h) for a 1-GPU pod while NodePool {pool.name} allows "
        f"cheaper SKUs that fit: {', '.join(f'{n} (${p}/h)' for n, p in cheaper)}. Check the NodePool weights and "
        "requirements, and whether those SKUs lack quota or capacity in the region"
    )


@pytest.mark.costly
@pytest.mark.disruptive
def test_empty_node_is_consolidated(
    aksai_measure: Callable[[str, float], None], aksai_gpu_probe: ProbeRun
) -> None:
    """Once the probe is gone, its node turns Consolidatable and is removed within consolidateAfter + slack."""
    for phase in ("consolidatable_after_probe_s", "node_gone_after_probe_s"):
        if phase in aksai_gpu_probe.phases:
            aksai_measure(f"nap_{phase}", aksai_gpu_probe.phases[phase])
    if aksai_gpu_probe.deprovision_error is not None:
        raise aksai_gpu_probe.deprovision_error


def test_idle_cost_floor(
    aksai_settings: Settings,
    aksai_cluster: Cluster,
    aksai_measure: Callable[[str, float], None],
    aksai_report: CheckReport,
) -> None:
    """With no inference traffic, which GPU nodes still run, why, and what they cost per day (catalog prices)."""
    if aksai_settings.manifests is not None:
        pytest.skip("static mode reads YAML; the idle cost is measured on a running cluster")
    budget = aksai_settings.profile.idle_cost_per_day_max
    nodes: list[IdleNode] = idle_gpu_nodes(aksai_cluster)
    known = [n.cost_per_day for n in nodes if n.cost_per_day is not None]
    total = sum(known)
    aksai_measure("nap_idle_gpu_nodes", len(nodes))
    aksai_measure("nap_idle_cost_per_day_usd", round(total, 2))
    aksai_report.cost.idle_floor_usd_per_day = round(total, 2)
    aksai_report.cost.idle_nodes = [
        {"node": n.node, "sku": n.instance_type, "usd_per_day": n.cost_per_day, "why": n.pinned_by}
        for n in nodes
    ]
    if budget is None:
        pytest.skip(
            f"{len(nodes)} GPU node(s) cost ${total:.2f}/day with no traffic; set idle_cost_per_day_max in the "
            "profile to judge it"
        )
    lines = [
        f"{n.node} ({n.instance_type}, {n.capacity_type}): "
        + (f"${n.cost_per_day:.2f}/day" if n.cost_per_day is not None else "price unknown")
        + f", kept by {n.pinned_by}"
        for n in nodes
    ]
    assert total <= budget, (
        f"idle GPU nodes cost ${total:.2f}/day, over the budget of ${budget:.2f}/day (profile key "
        f"idle_cost_per_day_max): " + "; ".join(lines) + ". Remove the pins (karpenter.sh/do-not-disrupt, "
        "consolidateAfter: Never) on what need not stay up, or scale the Workspaces to zero when idle"
    )
