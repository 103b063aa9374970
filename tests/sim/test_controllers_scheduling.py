"""Scheduler and kubelet through the official client against a running SimCluster: placement rules,
`FailedScheduling`, pod phases and conditions, simulated commands and their logs, the GPU demonstration."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client, config

from pytest_aksai.sim import SimCluster

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture(scope="module")
def api() -> Iterator[client.ApiClient]:
    with SimCluster() as sim:
        yield config.new_client_from_config(str(sim.kubeconfig_path))


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def _condition(obj: Any, type_: str) -> Any:
    return next((c for c in obj.status.conditions or [] if c.type == type_), None)


def _pod(
    name: str,
    *,
    command: list[str] | None = None,
    requests: dict[str, str] | None = None,
    restart: str = "Never",
    **spec: Any,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "mcr.microsoft.com/azurelinux/base/core:3.0"}
    if command:
        container["command"] = command
    if requests:
        container["resources"] = {"requests": requests, "limits": requests}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": restart, "containers": [container], **spec},
    }


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _events_for(core: client.CoreV1Api, name: str, namespace: str = "default") -> list[Any]:
    return core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items


def test_gpu_pod_waits_for_a_gpu_node_then_runs_nvidia_smi(
    core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    """The issue's demonstration: Pending with FailedScheduling until a GPU node appears, then Succeeded with
    the nvidia-smi table of the node's GPU in its log."""
    name = _unique("gpu-smoke")
    pod = _pod(name, command=["nvidia-smi"], requests={"nvidia.com/gpu": "1"}, tolerations=[GPU_TOLERATION])
    core.create_namespaced_pod("default", pod)
    pending = watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == name and _condition(p, "PodScheduled") is not None,
        "the scheduler's verdict",
        namespace="default",
    )
    scheduled = _condition(pending, "PodScheduled")
    assert (pending.status.phase, scheduled.status, scheduled.reason) == ("Pending", "False", "Unschedulable")
    assert scheduled.message == (
        "0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2 nodes are "
        "available: 2 No preemption victims found for incoming pod."
    )
    failed = [e for e in _events_for(core, name) if e.reason == "FailedScheduling"]
    assert failed and failed[0].type == "Warning" and failed[0].message == scheduled.message

    node_name = _unique("aks-gpu")
    core.create_node(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node_name,
                "labels": {
                    "karpenter.azure.com/sku-name": "Standard_NC24ads_A100_v4",
                    "karpenter.azure.com/sku-gpu-name": "A100",
                    "karpenter.azure.com/sku-gpu-count": "1",
                    "node.kubernetes.io/instance-type": "Standard_NC24ads_A100_v4",
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
            "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "24", "memory": "220Gi", "pods": "110", "nvidia.com/gpu": "1"}},
        }
    )
    done = watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == name and p.status.phase == "Succeeded",
        "the GPU pod to succeed",
        namespace="default",
    )
    assert done.spec.node_name == node_name
    terminated = done.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    log = core.read_namespaced_pod_log(name, "default")
    assert "NVIDIA A100 80GB PCIe" in log and "Driver Version:" in log and "CUDA Version:" in log
    reasons = [e.reason for e in _events_for(core, name)]
    for reason in ("FailedScheduling", "Scheduled", "Pulling", "Pulled", "Created", "Started"):
        assert reason in reasons
    node = core.read_node(node_name)
    assert _condition(node, "Ready").status == "True"
    assert not any(t.key == "node.kubernetes.io/not-ready" for t in node.spec.taints or [])


def test_pod_goes_through_the_kubelet_phases_with_cluster_time_timings(
    core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    name = _unique("web")
    created = core.create_namespaced_pod("default", _pod(name, restart="Always"))
    creating = watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == name and bool(p.status.container_statuses),
        "container statuses",
        namespace="default",
    )
    waiting = creating.status.container_statuses[0].state.waiting
    assert waiting is not None and waiting.reason == "ContainerCreating"
    assert creating.status.phase == "Pending"
    ready = watch_until(
        core.list_namespaced_pod,
        lambda p: (
            p.metadata.name == name
            and p.status.phase == "Running"
            and _condition(p, "Ready").status == "True"
        ),
        "the pod to be Ready",
        namespace="default",
    )
    for type_ in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled"):
        assert _condition(ready, type_).status == "True"
    assert ready.status.pod_ip and ready.status.pod_ip.startswith("10.244.")
    started = ready.status.container_statuses[0].state.running.started_at
    # sandbox (2 s) + first pull (6 s) + start (0.5 s) in cluster time, give or take scheduling latency
    assert 8 <= (started - created.metadata.creation_timestamp).total_seconds() <= 60


def test_run_to_completion_pods_end_succeeded_or_failed_with_exit_codes_and_logs(
    core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    ok, bad = _unique("job-ok"), _unique("job-bad")
    core.create_namespaced_pod(
        "default", _pod(ok, command=["sh", "-c", "echo hello from the sim && sleep 5"])
    )
    core.create_namespaced_pod("default", _pod(bad, command=["sh", "-c", "echo failing; exit 3"]))
    succeeded = watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == ok and p.status.phase == "Succeeded",
        "the pod to succeed",
        namespace="default",
    )
    failed = watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == bad and p.status.phase == "Failed",
        "the pod to fail",
        namespace="default",
    )
    ok_state = succeeded.status.container_statuses[0].state.terminated
    assert (ok_state.exit_code, ok_state.reason) == (0, "Completed")
    assert (ok_state.finished_at - ok_state.started_at).total_seconds() >= 4
    bad_state = failed.status.container_statuses[0].state.terminated
    assert (bad_state.exit_code, bad_state.reason) == (3, "Error")
    assert _condition(failed, "Ready").reason == "PodCompleted"
    assert core.read_namespaced_pod_log(ok, "default") == "hello from the sim\n"
    assert core.read_namespaced_pod_log(bad, "default") == "failing\n"


def test_restart_policy_always_restarts_exited_containers_with_back_off(
    core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    name = _unique("crash")
    core.create_namespaced_pod("default", _pod(name, command=["sh", "-c", "exit 1"], restart="Always"))
    crashed = watch_until(
        core.list_namespaced_pod,
        lambda p: (
            p.metadata.name == name
            and bool(p.status.container_statuses)
            and p.status.container_statuses[0].restart_count >= 1
        ),
        "a restart",
        namespace="default",
    )
    status = crashed.status.container_statuses[0]
    assert status.last_state.terminated.exit_code == 1
    assert crashed.status.phase == "Running"
    assert "BackOff" in [e.reason for e in _events_for(core, name)]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"nodeSelector": {"agentpool": "nope"}}, "2 node(s) didn't match Pod's node affinity/selector"),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": "kubernetes.azure.com/mode",
                                            "operator": "In",
                                            "values": ["user"],
                                        }
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            "2 node(s) didn't match Pod's node affinity/selector",
        ),
        ({"requests": {"cpu": "5"}}, "2 Insufficient cpu"),
        ({"requests": {"memory": "64Gi"}}, "2 Insufficient memory"),
    ],
)
def test_unschedulable_pods_say_why(
    core: client.CoreV1Api, spec: dict[str, Any], reason: str, watch_until: Callable[..., Any]
) -> None:
    name = _unique("unsched")
    spec = dict(spec)
    requests = spec.pop("requests", None)
    body = _pod(name, requests=requests, restart="Always", **spec)
    body["spec"]["nodeSelector"] = {**body["spec"].get("nodeSelector", {}), "kubernetes.io/os": "linux"}
    core.create_namespaced_pod("default", body)
    pod = watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == name and _condition(p, "PodScheduled") is not None,
        "a scheduling verdict",
        namespace="default",
    )
    cond = _condition(pod, "PodScheduled")
    assert cond.reason == "Unschedulable"
    total = len(
        [n for n in core.list_node().items if n.metadata.labels.get("kubernetes.azure.com/mode") == "system"]
    )
    assert cond.message.startswith(f"0/{len(core.list_node().items)} nodes are available: ")
    assert total == 2
    assert reason in cond.message
    core.delete_namespaced_pod(name, "default", grace_period_seconds=0)


def test_node_selector_toleration_and_taint_place_the_pod(
    core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    nodes = core.list_node(label_selector="kubernetes.azure.com/mode=system").items
    target = nodes[1].metadata.name
    name = _unique("pinned")
    core.create_namespaced_pod(
        "default", _pod(name, restart="Always", nodeSelector={"kubernetes.io/hostname": target})
    )
    pod = watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == name and p.spec.node_name is not None,
        "the pod to be bound",
        namespace="default",
    )
    assert pod.spec.node_name == target
    scheduled = [e for e in _events_for(core, name) if e.reason == "Scheduled"]
    assert scheduled[0].message == f"Successfully assigned default/{name} to {target}"


def test_node_lease_is_renewed_in_cluster_time(
    api: client.ApiClient, watch_until: Callable[..., Any]
) -> None:
    core = client.CoreV1Api(api)
    coordination = client.CoordinationV1Api(api)
    node = core.list_node(label_selector="kubernetes.azure.com/mode=system").items[0].metadata.name
    first = coordination.read_namespaced_lease(node, "kube-node-lease")
    assert first.spec.holder_identity == node and first.spec.lease_duration_seconds == 40
    renewed = watch_until(
        coordination.list_namespaced_lease,
        lambda lease: lease.metadata.name == node and lease.spec.renew_time > first.spec.renew_time,
        "a lease renewal",
        namespace="kube-node-lease",
    )
    gap = (renewed.spec.renew_time - first.spec.renew_time).total_seconds()
    assert 9 <= gap <= 60  # every 10 cluster seconds (plus event-loop latency under load)
    assert isinstance(renewed.spec.renew_time, datetime)


def test_registered_commands_control_readiness_and_termination_reason(
    core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    from pytest_aksai.sim._core import _commands

    _commands.register_command(
        "slow-server", lambda ctx: _commands.CommandResult("loading\n", None, 0.0, ready_after=95.0)
    )
    _commands.register_command(
        "hungry", lambda ctx: _commands.CommandResult("Killed\n", 137, 20.0, reason="OOMKilled")
    )
    slow, hungry = _unique("slow"), _unique("hungry")
    probe = {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 10, "periodSeconds": 10}
    body = _pod(slow, command=["slow-server"], restart="Always")
    body["spec"]["containers"][0]["readinessProbe"] = probe
    core.create_namespaced_pod("default", body)
    core.create_namespaced_pod("default", _pod(hungry, command=["hungry"]))
    ready = watch_until(
        core.list_namespaced_pod,
        lambda p: (
            p.metadata.name == slow
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ),
        "the slow server to be Ready",
        namespace="default",
    )
    started = ready.status.container_statuses[0].state.running.started_at
    ready_at = _condition(ready, "Ready").last_transition_time
    # probes at 11, 21, ... 101 cluster seconds after start: the first after 95 s passes
    assert 100 <= (ready_at - started).total_seconds() <= 160
    killed = watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == hungry and p.status.phase == "Failed",
        "the OOM kill",
        namespace="default",
    )
    terminated = killed.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")
