"""PodDisruptionBudgets on the sim: the disruption controller's status, the pods/eviction subresource's 429
when a budget is exhausted (official client), and `kubectl drain` honouring it on a node of the test's own."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from pytest_aksai.sim import SimCluster

KUBECTL = shutil.which("kubectl")
TAINT = {"key": "aksai.dev/drain-test", "value": "true", "effect": "NoSchedule"}


@pytest.fixture
def own_node(api) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A node only this test's pods tolerate, so draining it disturbs nothing else."""
    core = kubernetes.client.CoreV1Api(api)
    name = f"aks-drain-{uuid.uuid4().hex[:6]}-vmss000000"
    core.create_node(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "aksai.dev/drain-test": name}},
            "spec": {"taints": [TAINT]},
            "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"}},
        }
    )
    yield name
    core.delete_node(name)


def _web(name: str, node: str, replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"aksai.dev/drain-test": node},
                    "tolerations": [{**TAINT, "operator": "Equal"}],
                    "containers": [{"name": "web", "image": "nginx:1.27"}],
                },
            },
        },
    }


def _pdb(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": name}}, **spec}}


def _ready_pods(core: kubernetes.client.CoreV1Api, ns: str, app: str) -> list[Any]:
    return [
        p
        for p in core.list_namespaced_pod(ns, label_selector=f"app={app}").items
        if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]


def test_pdb_status_and_eviction_429(api, ns, own_node, watch_until):
    apps, core = kubernetes.client.AppsV1Api(api), kubernetes.client.CoreV1Api(api)
    policy = kubernetes.client.PolicyV1Api(api)
    apps.create_namespaced_deployment(ns, _web("web", own_node, 3))
    policy.create_namespaced_pod_disruption_budget(ns, _pdb("web", minAvailable=2))
    settled = watch_until(
        policy.list_namespaced_pod_disruption_budget,
        lambda b: (b.status.current_healthy or 0) == 3,
        "the PDB to count three healthy pods",
        namespace=ns,
    )
    assert (settled.status.desired_healthy, settled.status.expected_pods) == (2, 3)
    assert settled.status.disruptions_allowed == 1
    [allowed] = settled.status.conditions
    assert (allowed.type, allowed.status, allowed.reason) == ("DisruptionAllowed", "True", "SufficientPods")
    first, second, *_ = _ready_pods(core, ns, "web")
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": first.metadata.name}}
    core.create_namespaced_pod_eviction(first.metadata.name, ns, eviction)
    # The granted eviction is recorded at once; a second one right after finds the budget spent.
    with pytest.raises(kubernetes.client.ApiException) as refused:
        core.create_namespaced_pod_eviction(
            second.metadata.name, ns, {**eviction, "metadata": {"name": second.metadata.name}}
        )
    assert refused.value.status == 429
    body = json.loads(refused.value.body)
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    [cause] = body["details"]["causes"]
    assert cause["reason"] == "DisruptionBudget"
    assert cause["message"].startswith("The disruption budget web needs 2 healthy pods and has ")
    # maxUnavailable as a percentage scales with the Deployment's replicas.
    policy.patch_namespaced_pod_disruption_budget(
        "web",
        ns,
        [
            {"op": "remove", "path": "/spec/minAvailable"},
            {"op": "add", "path": "/spec/maxUnavailable", "value": "34%"},
        ],
    )
    rescaled = watch_until(
        policy.list_namespaced_pod_disruption_budget,
        lambda b: b.status.observed_generation == 2 and (b.status.current_healthy or 0) == 3,
        "the PDB to recount after the spec change",
        timeout=20,
        namespace=ns,
    )
    assert (rescaled.status.expected_pods, rescaled.status.desired_healthy) == (3, 1)
    assert rescaled.status.disruptions_allowed == 2


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_drain_honours_the_budget(sim: SimCluster, api, ns, own_node, watch_until):
    apps, core = kubernetes.client.AppsV1Api(api), kubernetes.client.CoreV1Api(api)
    policy = kubernetes.client.PolicyV1Api(api)
    apps.create_namespaced_deployment(ns, _web("api", own_node, 2))
    policy.create_namespaced_pod_disruption_budget(ns, _pdb("api", maxUnavailable=0))
    watch_until(
        policy.list_namespaced_pod_disruption_budget,
        lambda b: (b.status.current_healthy or 0) == 2,
        "the PDB to count two healthy pods",
        namespace=ns,
    )
    assert KUBECTL is not None
    drain = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "drain",
            own_node,
            "--ignore-daemonsets",
            "--timeout=3s",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert drain.returncode != 0
    assert f"node/{own_node} cordoned" in drain.stdout
    assert "Cannot evict pod as it would violate the pod's disruption budget." in drain.stderr, drain.stderr
    assert "(will retry after 5s)" in drain.stderr
    assert len(_ready_pods(core, ns, "api")) == 2  # nothing was evicted
    assert core.read_node(own_node).spec.unschedulable is True
    # With room in the budget the same drain evicts and finishes.
    policy.patch_namespaced_pod_disruption_budget("api", ns, {"spec": {"maxUnavailable": 2}})
    watch_until(
        policy.list_namespaced_pod_disruption_budget,
        lambda b: (b.status.disruptions_allowed or 0) == 2,
        "the PDB to allow two disruptions",
        namespace=ns,
    )
    drained = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "drain",
            own_node,
            "--ignore-daemonsets",
            "--timeout=30s",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert drained.returncode == 0, drained.stderr
    assert f"node/{own_node} drained" in drained.stdout
