"""The core faults the controllers implement: `node-not-ready` and `image-pull-backoff`, toggled at run time
through the ConfigMap `kube-system/aksai-sim-faults` and selected at start."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config

from pytest_aksai.sim import SimCluster

FAULTS = ("kube-system", "aksai-sim-faults")


@pytest.fixture(scope="module")
def api() -> Iterator[client.ApiClient]:
    with SimCluster() as sim:
        yield config.new_client_from_config(str(sim.kubeconfig_path))


@pytest.fixture
def core(api: client.ApiClient) -> Iterator[client.CoreV1Api]:
    core = client.CoreV1Api(api)
    yield core
    core.replace_namespaced_config_map(FAULTS[1], FAULTS[0], {"metadata": {"name": FAULTS[1]}, "data": {}})


def set_faults(core: client.CoreV1Api, data: dict[str, str]) -> None:
    core.replace_namespaced_config_map(FAULTS[1], FAULTS[0], {"metadata": {"name": FAULTS[1]}, "data": data})


def _ready(node: Any) -> Any:
    return next(c for c in node.status.conditions if c.type == "Ready")


def _pod(name: str, image: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": image}], **spec},
    }


def test_node_not_ready_stops_heartbeats_taints_the_node_and_recovers(
    api: client.ApiClient, core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    leases = client.CoordinationV1Api(api)
    victim, healthy = sorted(
        n.metadata.name for n in core.list_node(label_selector="kubernetes.azure.com/mode=system").items
    )
    pod_name = f"on-victim-{uuid.uuid4().hex[:5]}"
    core.create_namespaced_pod(
        "default",
        _pod(
            pod_name,
            "nginx:1.27",
            nodeSelector={"kubernetes.io/hostname": victim},
            tolerations=[
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
            ],
        ),
    )
    watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == pod_name and p.status.phase == "Running",
        "the pod on the victim node to run",
        namespace="default",
    )

    set_faults(core, {"node-not-ready": victim})
    node = watch_until(
        core.list_node,
        lambda n: (
            n.metadata.name == victim and _ready(n).status == "Unknown" and len(n.spec.taints or []) >= 2
        ),
        "the node to turn NotReady and get tainted",
    )
    ready = _ready(node)
    assert (ready.reason, ready.message) == ("NodeStatusUnknown", "Kubelet stopped posting node status.")
    taints = {(t.key, t.effect) for t in node.spec.taints}
    assert taints >= {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }
    stale = leases.read_namespaced_lease(victim, "kube-node-lease").spec.renew_time
    # the healthy node keeps renewing while the victim's lease stays where it stopped
    watch_until(
        leases.list_namespaced_lease,
        lambda lease: lease.metadata.name == healthy and lease.spec.renew_time > stale,
        "the healthy node's lease to move on",
        namespace="kube-node-lease",
    )
    assert leases.read_namespaced_lease(victim, "kube-node-lease").spec.renew_time == stale
    assert _ready(core.read_node(healthy)).status == "True"
    pod = watch_until(
        core.list_namespaced_pod,
        lambda p: (
            p.metadata.name == pod_name
            and any(c.type == "Ready" and c.status == "False" for c in p.status.conditions)
        ),
        "the pod to be marked not Ready",
        namespace="default",
    )
    assert pod.metadata.deletion_timestamp is None  # it tolerates the NoExecute taint forever

    pinned = f"pinned-{uuid.uuid4().hex[:5]}"
    core.create_namespaced_pod(
        "default", _pod(pinned, "nginx:1.27", nodeSelector={"kubernetes.io/hostname": victim})
    )
    unscheduled = watch_until(
        core.list_namespaced_pod,
        lambda p: (
            p.metadata.name == pinned
            and any(
                c.type == "PodScheduled" and c.reason == "Unschedulable" for c in p.status.conditions or []
            )
        ),
        "the pinned pod to be refused",
        namespace="default",
    )
    message = next(c.message for c in unscheduled.status.conditions if c.type == "PodScheduled")
    assert "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }" in message

    set_faults(core, {})
    node = watch_until(
        core.list_node,
        lambda n: n.metadata.name == victim and _ready(n).status == "True",
        "the node to recover",
    )
    assert not any(t.key.startswith("node.kubernetes.io/") for t in node.spec.taints or [])
    watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == pinned and p.spec.node_name == victim,
        "the pinned pod to be scheduled after recovery",
        namespace="default",
    )
    watch_until(
        core.list_namespaced_pod,
        lambda p: (
            p.metadata.name == pod_name
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)
        ),
        "the old pod to be Ready again",
        namespace="default",
    )


def test_node_not_ready_evicts_pods_once_their_toleration_runs_out(
    core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    victim = sorted(
        n.metadata.name for n in core.list_node(label_selector="kubernetes.azure.com/mode=system").items
    )[1]
    name = f"evictee-{uuid.uuid4().hex[:5]}"
    core.create_namespaced_pod(
        "default",
        _pod(
            name,
            "nginx:1.27",
            nodeSelector={"kubernetes.io/hostname": victim},
            tolerations=[
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 30,
                }
            ],
        ),
    )
    watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == name and p.status.phase == "Running",
        "the pod to run",
        namespace="default",
    )
    set_faults(core, {"node-not-ready": ""})  # every node
    evicted = watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == name and p.metadata.deletion_timestamp is not None,
        "the eviction",
        namespace="default",
    )
    assert evicted.metadata.deletion_timestamp is not None
    events = core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items
    assert "TaintManagerEviction" in [e.reason for e in events]
    for node in core.list_node().items:
        watch_until(
            core.list_node,
            lambda n, nm=node.metadata.name: n.metadata.name == nm and _ready(n).status == "Unknown",
            f"{node.metadata.name} to turn NotReady",
        )


def test_image_pull_backoff_keeps_matching_pods_from_starting_until_cleared(
    core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    broken, fine = f"broken-{uuid.uuid4().hex[:5]}", f"fine-{uuid.uuid4().hex[:5]}"
    set_faults(core, {"image-pull-backoff": "contoso.azurecr.io/llm"})
    core.create_namespaced_pod("default", _pod(broken, "contoso.azurecr.io/llm/server:1.0"))
    core.create_namespaced_pod("default", _pod(fine, "nginx:1.27"))
    backing_off = watch_until(
        core.list_namespaced_pod,
        lambda p: (
            p.metadata.name == broken
            and bool(p.status.container_statuses)
            and p.status.container_statuses[0].state.waiting is not None
            and p.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"
        ),
        "ImagePullBackOff",
        namespace="default",
    )
    assert backing_off.status.phase == "Pending"
    assert (
        backing_off.status.container_statuses[0].state.waiting.message
        == 'Back-off pulling image "contoso.azurecr.io/llm/server:1.0"'
    )
    messages = [
        e.message
        for e in core.list_namespaced_event("default", field_selector=f"involvedObject.name={broken}").items
    ]
    assert "Error: ErrImagePull" in messages and "Error: ImagePullBackOff" in messages
    assert any(m.startswith('Failed to pull image "contoso.azurecr.io/llm/server:1.0"') for m in messages)
    watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == fine and p.status.phase == "Running",
        "the pod of another image to run",
        namespace="default",
    )

    set_faults(core, {})
    watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == broken and p.status.phase == "Running",
        "the pod to start once the fault is cleared",
        namespace="default",
    )


def test_faults_selected_at_start(watch_until: Callable[..., Any]) -> None:
    with SimCluster(faults=["image-pull-backoff=mcr.microsoft.com/oss/kubernetes/coredns"]) as sim:
        core = client.CoreV1Api(config.new_client_from_config(str(sim.kubeconfig_path)))
        data = core.read_namespaced_config_map(FAULTS[1], FAULTS[0]).data
        assert data == {"image-pull-backoff": "mcr.microsoft.com/oss/kubernetes/coredns"}
        pod = watch_until(
            core.list_namespaced_pod,
            lambda p: (
                p.metadata.labels.get("k8s-app") == "kube-dns"
                and bool(p.status.container_statuses)
                and p.status.container_statuses[0].state.waiting is not None
                and p.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"
            ),
            "CoreDNS to back off",
            namespace="kube-system",
        )
        assert pod.status.phase == "Pending"
        watch_until(
            core.list_namespaced_pod,
            lambda p: p.metadata.labels.get("app") == "kaito-workspace" and p.status.phase == "Running",
            "other add-ons to run",
            namespace="kube-system",
        )


def test_image_pull_backoff_stalls_a_deployment_past_its_progress_deadline(
    api: client.ApiClient, core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    apps = client.AppsV1Api(api)
    name = f"stuck-{uuid.uuid4().hex[:5]}"
    set_faults(core, {"image-pull-backoff": "contoso.azurecr.io/stuck"})
    apps.create_namespaced_deployment(
        "default",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "progressDeadlineSeconds": 30,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "contoso.azurecr.io/stuck:1"}]},
                },
            },
        },
    )

    def condition(d: Any, type_: str) -> Any:
        return next((c for c in d.status.conditions or [] if c.type == type_), None)

    stalled = watch_until(
        apps.list_namespaced_deployment,
        lambda d: (
            d.metadata.name == name
            and condition(d, "Progressing") is not None
            and condition(d, "Progressing").status == "False"
        ),
        "the rollout to exceed its progress deadline",
        namespace="default",
    )
    progressing = condition(stalled, "Progressing")
    assert progressing.reason == "ProgressDeadlineExceeded"
    assert progressing.message.endswith("has timed out progressing.")
    available = condition(stalled, "Available")
    assert (available.status, available.reason) == ("False", "MinimumReplicasUnavailable")
    assert stalled.status.unavailable_replicas == 1
