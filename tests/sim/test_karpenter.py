"""The simulated Karpenter on AKS: provisioning decisions (pure), and provisioning, protection and
consolidation on a running simulated cluster, with upstream's reasons and messages."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from pytest_aksai.sim import SimCluster
from pytest_aksai.sim._addons.karpenter import _scheduling as scheduling
from pytest_aksai.sim._addons.karpenter._disruption import allowed_disruptions, duration_seconds
from pytest_aksai.sim._addons.karpenter._provisioner import capacity_for, choose_offering
from pytest_aksai.sim._core._resources import parse_map
from pytest_aksai.sizing import do_not_disrupt_grace, go_duration, matching_instance_types
from tests.sim import _watching

LAB = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "upstream"
    / "aks-ai-lab-manifests"
    / "nap"
    / "gpu-nodepool.yaml"
)
SUBNET = "/subscriptions/0000/resourceGroups/rg-lab/providers/Microsoft.Network/virtualNetworks/aks-ai-lab-vnet/subnets/aks-subnet"
GPU = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
pytest_plugins = ["pytester"]


def _pool(
    name: str,
    reqs: list[dict[str, Any]],
    *,
    weight: int = 0,
    limits: dict[str, str] | None = None,
    taints: Any = None,
) -> scheduling.PoolTemplate:
    types = matching_instance_types(reqs)
    options = sorted(
        ((it, parse_map(capacity_for(it.name)[1])) for it in types),
        key=lambda p: (p[0].price_per_hour or 1e6, p[0].name),
    )
    return scheduling.PoolTemplate(
        name,
        weight,
        reqs,
        list(taints if taints is not None else [GPU]),
        {},
        options,
        scheduling.parse_limits(limits) if limits else None,
    )


def _gpu_pod(name: str, gpus: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "t", "uid": name},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}, "requests": {"cpu": "1"}},
                }
            ],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            **spec,
        },
    }


FAMILY_N = [{"key": "karpenter.azure.com/sku-family", "operator": "In", "values": ["N"]}]


def test_the_cheapest_fitting_gpu_sku_is_first_and_pods_share_a_claim_when_they_fit() -> None:
    result = scheduling.schedule([_gpu_pod("a"), _gpu_pod("b")], [_pool("gpu", FAMILY_N)])
    assert result.errors == {}
    [claim] = [c for c in result.claims if len(c.pods) == 2] or result.claims[:1]
    names = [it.name for it, _ in claim.options]
    assert names[0] == "Standard_NC64as_T4_v3" or len(result.claims) == 2
    single = scheduling.schedule([_gpu_pod("a")], [_pool("gpu", FAMILY_N)]).claims[0]
    assert single.options[0][0].name == "Standard_NC4as_T4_v3"  # cheapest 1-GPU SKU of the catalog
    offering = choose_offering({"spec": {"requirements": scheduling.claim_requirements(single)}})
    assert offering is not None and offering[:2] == (
        "Standard_NC4as_T4_v3",
        "on-demand",
    )  # Karpenter's default


def test_nodepools_are_tried_by_weight_and_their_errors_joined() -> None:
    heavy = _pool("heavy", FAMILY_N, weight=100, limits={"nvidia.com/gpu": "0"})
    spot = _pool(
        "spot",
        FAMILY_N,
        weight=50,
        taints=[
            GPU,
            {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"},
        ],
    )
    result = scheduling.schedule([_gpu_pod("a")], [spot, heavy])
    assert result.claims == []
    assert result.errors["t/a"] == (
        "all available instance types exceed limits for nodepool (NodePool=heavy); "
        "did not tolerate taint (taint=kubernetes.azure.com/scalesetpriority=spot:NoSchedule)"
    )
    light = _pool("light", FAMILY_N, weight=10)
    assert scheduling.schedule([_gpu_pod("a")], [spot, heavy, light]).claims[0].pool.name == "light"


def test_custom_labels_must_be_defined_by_the_nodepool_and_resources_must_fit() -> None:
    pod = _gpu_pod("a", nodeSelector={"apps": "phi4"})
    error = scheduling.schedule([pod], [_pool("gpu", FAMILY_N)]).errors["t/a"]
    assert error == 'incompatible requirements, label "apps" does not have known values'
    huge = scheduling.schedule([_gpu_pod("b", gpus=16)], [_pool("gpu", FAMILY_N)]).errors["t/b"]
    assert huge.startswith(
        "no instance type has enough resources, requirements=karpenter.azure.com/sku-family In [N]"
    )
    assert '"nvidia.com/gpu":"16"' in huge
    assert (
        scheduling.schedule([_gpu_pod("c")], []).errors["t/c"]
        == "nodepool requirements filtered out all available instance types"
    )


def test_limits_reserve_the_largest_option_per_claim() -> None:
    pool = _pool(
        "gpu",
        [*FAMILY_N, {"key": "karpenter.azure.com/sku-gpu-count", "operator": "In", "values": ["1"]}],
        limits={"nvidia.com/gpu": "2"},
    )
    result = scheduling.schedule([_gpu_pod(f"p{i}", cpu) for i, cpu in enumerate([1, 1, 1])], [pool])
    assert len(result.claims) + len(result.errors) == 3 and len(result.errors) >= 1
    assert all("exceed limits for nodepool (NodePool=gpu)" in e for e in result.errors.values())
    assert pool.remaining is not None and pool.remaining["nvidia.com/gpu"] <= Decimal(0)


def test_durations_and_budgets_follow_upstream() -> None:
    assert (
        duration_seconds("2m") == 120
        and duration_seconds("1h30m") == 5400
        and duration_seconds("Never") is None
    )
    pool = {"spec": {"disruption": {"budgets": [{"nodes": "10%"}, {"nodes": "0", "reasons": ["Drifted"]}]}}}
    assert (
        allowed_disruptions(pool, 3) == 1
    )  # 10% of 3, rounded up; the Drifted budget does not apply to Empty
    assert allowed_disruptions({"spec": {"disruption": {"budgets": [{"nodes": "0"}]}}}, 5) == 0


# --- on a running cluster ---------------------------------------------------------------------------------


class Kube:
    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.custom = kubernetes.client.CustomObjectsApi(api)

    def claims(self, **kw: Any) -> Any:
        return self.custom.list_cluster_custom_object("karpenter.sh", "v1", "nodeclaims", **kw)

    def events(self, name: str, namespace: str = "default") -> list[tuple[str, str]]:
        items = self.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        return [(e.reason, e.message) for e in items]


@pytest.fixture
def kube(api: kubernetes.client.ApiClient) -> Kube:
    return Kube(api)


@pytest.fixture
def pool(kube: Kube) -> Iterator[str]:
    """A NodePool of this test alone (the pods pin it with a nodeSelector), deleted afterwards."""
    name = f"np-{uuid.uuid4().hex[:6]}"
    body = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.azure.com",
                        "kind": "AKSNodeClass",
                        "name": "gpu-inference-class",
                    },
                    "requirements": [
                        {"key": "karpenter.azure.com/sku-family", "operator": "In", "values": ["N"]},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                    ],
                    "taints": [GPU],
                }
            },
            "disruption": {"consolidateAfter": "30s", "budgets": [{"nodes": "0"}]},
            "limits": {"nvidia.com/gpu": "4"},
        },
    }
    kube.custom.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", body)
    yield name
    for claim in kube.claims(label_selector=f"karpenter.sh/nodepool={name}")["items"]:
        kube.custom.delete_cluster_custom_object(
            "karpenter.sh", "v1", "nodeclaims", claim["metadata"]["name"]
        )
    kube.custom.delete_cluster_custom_object("karpenter.sh", "v1", "nodepools", name)


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def test_a_pending_gpu_pod_gets_a_node_that_a_blocking_budget_keeps_until_lifted(
    kube: Kube, ns: str, pool: str
) -> None:
    pod = {
        "metadata": {"name": "gpu"},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"karpenter.sh/nodepool": pool},
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": ["true"],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    }
    kube.core.create_namespaced_pod(ns, pod)
    selector = f"karpenter.sh/nodepool={pool}"
    claim = _watching.wait_for(
        kube.claims,
        lambda c: _conditions(c).get("Initialized", {}).get("status") == "True",
        "an Initialized NodeClaim",
        timeout=20,
        label_selector=selector,
    )
    labels = claim["metadata"]["labels"]
    assert (
        labels["node.kubernetes.io/instance-type"] == "Standard_NC4as_T4_v3"
        and labels["karpenter.sh/capacity-type"] == "on-demand"
    )
    node = kube.core.read_node(claim["status"]["nodeName"])
    assert node.status.allocatable["nvidia.com/gpu"] == "1"
    assert not any(t.key == "karpenter.sh/unregistered" for t in node.spec.taints or [])
    assert [(r, m) for r, m in kube.events("gpu", ns) if r == "Nominated"] == [
        ("Nominated", f"Pod should schedule on: nodeclaim/{claim['metadata']['name']}")
    ]
    _watching.wait_for(
        kube.core.list_namespaced_pod,
        lambda p: p.status.phase == "Succeeded",
        "the pod done",
        timeout=10,
        namespace=ns,
    )
    kube.core.delete_namespaced_pod("gpu", ns)
    _watching.wait_for(
        kube.claims,
        lambda c: _conditions(c).get("Consolidatable", {}).get("status") == "True",
        "Consolidatable",
        timeout=10,
        label_selector=selector,
    )
    _watching.wait_for(
        kube.core.list_event_for_all_namespaces,
        lambda e: e.reason == "DisruptionBlocked" and e.involved_object.name == pool,
        "a DisruptionBlocked event on the NodePool",
        timeout=10,
    )
    assert kube.claims(label_selector=selector)["items"], "a budget of 0 keeps the empty node"
    kube.custom.patch_cluster_custom_object(
        "karpenter.sh", "v1", "nodepools", pool, {"spec": {"disruption": {"budgets": [{"nodes": "10%"}]}}}
    )
    _watching.wait_gone(kube.claims, "the empty NodeClaim", timeout=15, label_selector=selector)
    assert ("DisruptionTerminating", "Disrupting NodeClaim: Empty") in kube.events(claim["metadata"]["name"])


@pytest.mark.skipif(
    not LAB.is_file() or shutil.which("kubectl") is None, reason="needs kubectl and the lab's manifests"
)
def test_the_seed_labs_nodepools_leave_a_gpu_pod_pending_with_karpenters_events(
    tmp_path: Path, pytester: pytest.Pytester
) -> None:
    """kubectl apply of the lab's nap/gpu-nodepool.yaml (placeholders filled), then a GPU pod: Pending,
    FailedScheduling on the pod, NoCompatibleInstanceTypes on both NodePools, no NodeClaim; `pytest -m nap`
    against that cluster names the key, the value and the letter AKS uses."""
    manifest = tmp_path / "gpu-nodepool.yaml"
    manifest.write_text(
        LAB.read_text().replace(
            "/subscriptions/<SUBSCRIPTION_ID>/resourceGroups/<RG_NAME>/providers/Microsoft.Network/virtualNetworks/aks-ai-lab-vnet/subnets/aks-subnet",
            SUBNET,
        )
    )
    with SimCluster() as sim:
        kubectl = ["kubectl", "--kubeconfig", str(sim.kubeconfig_path)]
        subprocess.run([*kubectl, "apply", "-f", str(manifest)], check=True, capture_output=True, timeout=60)
        api = kubernetes.config.new_client_from_config(str(sim.kubeconfig_path))
        kube = Kube(api)
        pod = yaml.safe_load(
            (Path(__file__).resolve().parents[2] / "fixtures" / "nap" / "gpu-probe.yaml").read_text()
        )
        kube.core.create_namespaced_pod("inference", pod)
        name = pod["metadata"]["name"]
        _watching.wait_for(
            kube.core.list_namespaced_event,
            lambda e: e.reason == "FailedScheduling" and e.message.startswith("Failed to schedule pod,"),
            "Karpenter's FailedScheduling",
            timeout=10,
            namespace="inference",
            field_selector=f"involvedObject.name={name}",
        )
        assert (
            "FailedScheduling",
            "Failed to schedule pod, nodepool requirements filtered out all available instance types",
        ) in kube.events(name, "inference")
        for pool in ("gpu-inference", "gpu-inference-spot"):
            assert (
                "NoCompatibleInstanceTypes",
                "NodePool requirements filtered out all compatible available instance types",
            ) in kube.events(pool)
        assert kube.core.read_namespaced_pod(name, "inference").status.phase == "Pending"
        assert [
            c
            for c in kube.claims()["items"]
            if c["metadata"]["labels"].get("karpenter.sh/nodepool") != "kaito"
        ] == []
        shutil.copy(
            Path(__file__).resolve().parents[2] / "suites" / "test_nap.py", pytester.path / "test_nap.py"
        )
        pytester.makefile(
            ".toml", aksai=f'[clusters.lab]\nprovider = "aks"\nkubeconfig = "{sim.kubeconfig_path}"\n'
        )
        result = pytester.runpytest_subprocess(
            "--aksai-cluster=lab", "-p", "no:randomly", "-rfs", timeout=240
        )
    out = result.stdout.str()
    assert "NodePool gpu-inference cannot provision what it asks for" in out
    assert "karpenter.azure.com/sku-family In [NC] matches no instance type" in out and "use [N]" in out
    assert "check refused on cluster 'lab'" in out  # the lifecycle checks name the knob that allows them
    assert result.ret != 0


def test_a_quota_fault_on_kaitos_nodeclaims_shows_the_providers_reason() -> None:
    """`nap-quota-exceeded=kaito`: KAITO's NodeClaim stays Launched=Unknown with Azure's reason and message."""
    with SimCluster(faults=["nap-quota-exceeded=kaito"]) as sim:
        kube = Kube(kubernetes.config.new_client_from_config(str(sim.kubeconfig_path)))

        def quota(claim: dict[str, Any]) -> bool:
            return _conditions(claim).get("Launched", {}).get("reason") == "SubscriptionQuotaReached"

        claim = _watching.wait_for(
            kube.claims,
            quota,
            "KAITO's NodeClaim to hit the quota",
            timeout=15,
            label_selector="kaito.sh/workspace",
        )
        launched = _conditions(claim)["Launched"]
        assert launched["status"] == "Unknown"
        assert launched["message"] == (
            "subscription level on-demand vCPU quota for Standard_NC4as_T4_v3 has been reached (may try provision "
            "an alternative instance type)"
        )


def test_the_cheapest_offering_wins_spot_when_allowed() -> None:
    both = [
        *FAMILY_N,
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
    ]
    claim = scheduling.schedule([_gpu_pod("a")], [_pool("gpu", both)]).claims[0]
    offering = choose_offering({"spec": {"requirements": scheduling.claim_requirements(claim)}})
    assert offering is not None and offering[:2] == ("Standard_NC4as_T4_v3", "spot")
    priciest = choose_offering(
        {"spec": {"requirements": scheduling.claim_requirements(claim)}}, priciest=True
    )
    assert priciest is not None and priciest[0] == "Standard_ND96isr_H100_v5"


def test_do_not_disrupt_values_are_read_as_upstream() -> None:
    """kubernetes-sigs/karpenter `IsDoNotDisruptActive` (v1.12 on): "true", or a positive Go duration; the rest
    is ignored with Karpenter's error text."""
    assert do_not_disrupt_grace("true") == math.inf
    assert do_not_disrupt_grace("5m") == 300
    assert do_not_disrupt_grace("1h30m") == 5400
    assert do_not_disrupt_grace("1.5h") == 5400
    assert do_not_disrupt_grace("300ms") == pytest.approx(0.3)
    assert go_duration("-5m") == -300 and go_duration("0") == 0
    for value, error in (
        ("false", 'failed to parse "false" as a duration: time: invalid duration "false"'),
        ("5", 'failed to parse "5" as a duration: time: missing unit in duration "5"'),
        ("1d", 'failed to parse "1d" as a duration: time: unknown unit "d" in duration "1d"'),
        ("0s", 'duration "0s" must be positive'),
        ("-5m", 'duration "-5m" must be positive'),
    ):
        with pytest.raises(ValueError, match=re.escape(error)):
            do_not_disrupt_grace(value)


def test_a_pods_do_not_disrupt_duration_blocks_disruption_until_it_elapses(
    kube: Kube, ns: str, pool: str
) -> None:
    """A running pod with `do-not-disrupt: "1m"` blocks its Consolidatable node (DisruptionBlocked naming the
    pod, DoNotDisruptUntil) until it has run a minute (DoNotDisruptGracePeriodElapsed); "false" is ignored
    with InvalidDoNotDisruptAnnotation."""
    for name, value in (("pinned", "1m"), ("wrong", "false")):
        kube.core.create_namespaced_pod(
            ns,
            {
                "metadata": {"name": name, "annotations": {"karpenter.sh/do-not-disrupt": value}},
                "spec": {
                    "nodeSelector": {"karpenter.sh/nodepool": pool},
                    "containers": [
                        {
                            "name": "c",
                            "image": "busybox",
                            "command": ["sleep", "3600"],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ],
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                },
            },
        )

    def event(reason: str, about: str | None = None, says: str = "") -> Any:
        return _watching.wait_for(
            kube.core.list_event_for_all_namespaces,
            lambda e: e.reason == reason and about in (None, e.involved_object.name) and says in e.message,
            f"a {reason} event about {about or says}",
            timeout=20,
        )

    blocked = event("DisruptionBlocked", says=f"(Pod={ns}/pinned)")
    assert blocked.message == f'Pod has "karpenter.sh/do-not-disrupt" annotation (Pod={ns}/pinned)'
    assert blocked.involved_object.kind in ("Node", "NodeClaim")
    until = event("DoNotDisruptUntil", "pinned")
    assert until.message.startswith("The karpenter.sh/do-not-disrupt grace period will elapse at ")
    invalid = event("InvalidDoNotDisruptAnnotation", "wrong")
    assert invalid.type == "Warning" and invalid.message == (
        'Invalid karpenter.sh/do-not-disrupt annotation: failed to parse "false" as a duration: time: invalid '
        'duration "false", ignoring annotation'
    )
    elapsed = event("DoNotDisruptGracePeriodElapsed", "pinned")
    assert (
        elapsed.message == "The karpenter.sh/do-not-disrupt grace period has elapsed, pod is now disruptable"
    )
    assert not [
        e
        for e in kube.core.list_event_for_all_namespaces().items
        if e.reason == "DisruptionBlocked" and f"(Pod={ns}/wrong)" in e.message
    ], "an invalid value protects nothing"


def test_a_do_not_disrupt_pod_stalls_the_drain_until_the_termination_grace_period(
    kube: Kube, ns: str, pool: str
) -> None:
    """Deleting a NodeClaim whose node runs a `do-not-disrupt: "true"` pod: Karpenter does not evict it
    (`FailedDraining`), until the NodePool's `terminationGracePeriod` (here 2m, the pod's own grace 30 s) runs
    out: then the pod is deleted anyway (`Disrupted`) and the NodeClaim goes."""
    kube.custom.patch_cluster_custom_object(
        "karpenter.sh",
        "v1",
        "nodepools",
        pool,
        {"spec": {"template": {"spec": {"terminationGracePeriod": "2m"}}}},
    )
    kube.core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "pinned", "annotations": {"karpenter.sh/do-not-disrupt": "true"}},
            "spec": {
                "nodeSelector": {"karpenter.sh/nodepool": pool},
                "containers": [
                    {
                        "name": "c",
                        "image": "busybox",
                        "command": ["sleep", "3600"],
                        "resources": {"limits": {"nvidia.com/gpu": "1"}},
                    }
                ],
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            },
        },
    )
    selector = f"karpenter.sh/nodepool={pool}"
    claim = _watching.wait_for(
        kube.claims,
        lambda c: _conditions(c).get("Initialized", {}).get("status") == "True",
        "an Initialized NodeClaim",
        timeout=20,
        label_selector=selector,
    )
    assert claim["spec"]["terminationGracePeriod"] == "2m"
    _watching.wait_for(
        kube.core.list_namespaced_pod,
        lambda p: p.status.phase == "Running",
        "the pinned pod running",
        timeout=20,
        namespace=ns,
    )
    kube.custom.delete_cluster_custom_object("karpenter.sh", "v1", "nodeclaims", claim["metadata"]["name"])
    stalled = _watching.wait_for(
        kube.core.list_event_for_all_namespaces,
        lambda e: e.reason == "FailedDraining" and e.involved_object.name == claim["status"]["nodeName"],
        "FailedDraining on the node",
        timeout=10,
    )
    assert stalled.message == "Failed to drain node, 1 pods are waiting to be evicted"
    assert kube.core.read_namespaced_pod("pinned", ns).metadata.deletion_timestamp is None
    disrupted = _watching.wait_for(
        kube.core.list_event_for_all_namespaces,
        lambda e: e.reason == "Disrupted" and e.involved_object.name == "pinned",
        "the pinned pod deleted at the termination grace period",
        timeout=20,
    )
    assert "This bypasses the PDB of the pod and the do-not-disrupt annotation." in disrupted.message
    _watching.wait_gone(kube.claims, "the NodeClaim", timeout=20, label_selector=selector)
