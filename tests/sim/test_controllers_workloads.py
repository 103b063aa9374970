"""Workload controllers through the official client: Deployment → ReplicaSet → Pods, rolling updates, the
scale subresource, garbage collection, StatefulSets, Endpoints and EndpointSlices."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config

from pytest_aksai.sim import SimCluster

NS = "inference"


@pytest.fixture(scope="module")
def api() -> Iterator[client.ApiClient]:
    with SimCluster() as sim:
        yield config.new_client_from_config(str(sim.kubeconfig_path))


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


def _deployment(name: str, replicas: int, image: str = "nginx:1.27") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                        }
                    ]
                },
            },
        },
    }


def _cond(obj: Any, type_: str) -> Any:
    return next((c for c in obj.status.conditions or [] if c.type == type_), None)


def _ready_deployment(
    watch_until: Callable[..., Any],
    apps: client.AppsV1Api,
    name: str,
    replicas: int,
    generation: int | None = None,
) -> Any:
    return watch_until(
        apps.list_namespaced_deployment,
        lambda d: (
            d.metadata.name == name
            and (d.status.ready_replicas or 0) == replicas
            and (d.status.updated_replicas or 0) == replicas
            and (d.status.replicas or 0) == replicas
            and (generation is None or d.status.observed_generation == generation)
        ),
        f"deployment {name} with {replicas} ready replicas",
        namespace=NS,
    )


def test_deployment_of_three_reaches_three_ready_pods_and_deletion_removes_everything(
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    watch_until: Callable[..., Any],
    watch_gone: Callable[..., Any],
) -> None:
    name = f"web-{uuid.uuid4().hex[:5]}"
    apps.create_namespaced_deployment(NS, _deployment(name, 3))
    deployment = _ready_deployment(watch_until, apps, name, 3)
    assert deployment.status.available_replicas == 3
    assert deployment.status.observed_generation == deployment.metadata.generation
    available, progressing = _cond(deployment, "Available"), _cond(deployment, "Progressing")
    assert (available.status, available.reason) == ("True", "MinimumReplicasAvailable")
    assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetAvailable")
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "1"

    [rs] = apps.list_namespaced_replica_set(NS, label_selector=f"app={name}").items
    pod_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"{name}-{pod_hash}"
    assert rs.metadata.owner_references[0].kind == "Deployment" and rs.metadata.owner_references[0].controller
    assert (rs.status.replicas, rs.status.ready_replicas, rs.status.available_replicas) == (3, 3, 3)
    pods = core.list_namespaced_pod(NS, label_selector=f"app={name}").items
    assert len(pods) == 3
    assert all(p.metadata.name.startswith(f"{rs.metadata.name}-") for p in pods)
    assert all(p.metadata.labels["pod-template-hash"] == pod_hash for p in pods)
    assert {p.spec.node_name for p in pods} <= {n.metadata.name for n in core.list_node().items}
    events = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items
    assert f"Scaled up replica set {rs.metadata.name} to 3 from 0" in [e.message for e in events]
    rs_events = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={rs.metadata.name}").items
    assert sum(e.reason == "SuccessfulCreate" for e in rs_events) == 3

    apps.delete_namespaced_deployment(name, NS)
    watch_gone(apps.list_namespaced_replica_set, "the ReplicaSet", namespace=NS, label_selector=f"app={name}")
    watch_gone(core.list_namespaced_pod, "the pods", namespace=NS, label_selector=f"app={name}")


def test_scale_subresource_and_rolling_update(
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    watch_until: Callable[..., Any],
    watch_gone: Callable[..., Any],
) -> None:
    name = f"roll-{uuid.uuid4().hex[:5]}"
    apps.create_namespaced_deployment(NS, _deployment(name, 2))
    _ready_deployment(watch_until, apps, name, 2)
    apps.patch_namespaced_deployment_scale(name, NS, {"spec": {"replicas": 4}})
    scaled = _ready_deployment(watch_until, apps, name, 4)
    assert apps.read_namespaced_deployment_scale(name, NS).status.replicas == 4
    first_rs = apps.list_namespaced_replica_set(NS, label_selector=f"app={name}").items[0].metadata.name

    apps.patch_namespaced_deployment(
        name, NS, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}}
    )
    rolled = _ready_deployment(watch_until, apps, name, 4, generation=scaled.metadata.generation + 1)
    assert rolled.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    sets = {
        rs.metadata.name: rs
        for rs in apps.list_namespaced_replica_set(NS, label_selector=f"app={name}").items
    }
    assert sets[first_rs].spec.replicas == 0
    [new_rs] = [rs for n, rs in sets.items() if n != first_rs]
    assert new_rs.spec.replicas == 4
    assert new_rs.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    watch_gone(
        core.list_namespaced_pod,
        "the old pods",
        namespace=NS,
        label_selector=f"app={name},pod-template-hash={sets[first_rs].metadata.labels['pod-template-hash']}",
    )
    images = {
        p.spec.containers[0].image for p in core.list_namespaced_pod(NS, label_selector=f"app={name}").items
    }
    assert images == {"nginx:1.28"}
    events = [
        e.message for e in core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items
    ]
    assert any(m.startswith(f"Scaled down replica set {first_rs} to ") for m in events)
    apps.delete_namespaced_deployment(name, NS)


def test_statefulset_creates_ordinal_pods_in_order_with_stable_names(
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    watch_until: Callable[..., Any],
    watch_gone: Callable[..., Any],
) -> None:
    core.create_namespaced_service(
        NS,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "x"},
            "spec": {"clusterIP": "None", "selector": {"app": "x"}, "ports": [{"name": "http", "port": 80}]},
        },
    )
    # _preload_content=False: the API server's create response lacks `status.replicas` (reported to its owner),
    # which the client's model requires.
    apps.create_namespaced_stateful_set(
        NS,
        _preload_content=False,
        body={
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "x"},
            "spec": {
                "replicas": 2,
                "serviceName": "x",
                "selector": {"matchLabels": {"app": "x"}},
                "template": {
                    "metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{"name": "db", "image": "postgres:16"}]},
                },
            },
        },
    ).release_conn()
    # (listing the StatefulSet before its controller first wrote a status would trip the client's model)
    watch_until(
        core.list_namespaced_pod,
        lambda p: p.metadata.name == "x-1" and p.status.phase == "Running",
        "x-1 to run",
        namespace=NS,
    )
    sts = watch_until(
        apps.list_namespaced_stateful_set,
        lambda s: s.metadata.name == "x" and s.status.ready_replicas == 2,
        "2 ready replicas",
        namespace=NS,
    )
    assert sts.status.replicas == 2 and sts.status.current_revision == sts.status.update_revision
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(NS, label_selector="app=x").items}
    assert sorted(pods) == ["x-0", "x-1"]
    for ordinal, pod_name in enumerate(["x-0", "x-1"]):
        pod = pods[pod_name]
        assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == pod_name
        assert pod.metadata.labels["apps.kubernetes.io/pod-index"] == str(ordinal)
        assert (pod.spec.hostname, pod.spec.subdomain) == (pod_name, "x")
    ready_0 = _cond(pods["x-0"], "Ready").last_transition_time
    assert pods["x-1"].metadata.creation_timestamp >= ready_0  # OrderedReady: x-1 only after x-0 is Ready
    events = [e.message for e in core.list_namespaced_event(NS, field_selector="involvedObject.name=x").items]
    assert "create Pod x-0 in StatefulSet x successful" in events

    endpoints = watch_until(
        core.list_namespaced_endpoints,
        lambda e: e.metadata.name == "x" and bool(e.subsets) and len(e.subsets[0].addresses or []) == 2,
        "endpoints of both pods",
        namespace=NS,
    )
    assert sorted(a.hostname for a in endpoints.subsets[0].addresses) == ["x-0", "x-1"]

    apps.patch_namespaced_stateful_set_scale("x", NS, {"spec": {"replicas": 1}})
    watch_gone(core.list_namespaced_pod, "x-1", namespace=NS, field_selector="metadata.name=x-1")
    assert [p.metadata.name for p in core.list_namespaced_pod(NS, label_selector="app=x").items] == ["x-0"]


def test_endpoints_and_endpointslices_follow_ready_pods(
    api: client.ApiClient,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    watch_until: Callable[..., Any],
    watch_gone: Callable[..., Any],
) -> None:
    discovery = client.DiscoveryV1Api(api)
    name = f"svc-{uuid.uuid4().hex[:5]}"
    core.create_namespaced_service(
        NS,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]},
        },
    )
    apps.create_namespaced_deployment(NS, _deployment(name, 2))
    endpoints = watch_until(
        core.list_namespaced_endpoints,
        lambda e: e.metadata.name == name and bool(e.subsets) and len(e.subsets[0].addresses or []) == 2,
        "two ready addresses",
        namespace=NS,
    )
    subset = endpoints.subsets[0]
    assert [(p.name, p.port, p.protocol) for p in subset.ports] == [("web", 8080, "TCP")]
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(NS, label_selector=f"app={name}").items}
    assert {a.target_ref.name for a in subset.addresses} == set(pods)
    assert {a.ip for a in subset.addresses} == {p.status.pod_ip for p in pods.values()}

    [eps] = discovery.list_namespaced_endpoint_slice(
        NS, label_selector=f"kubernetes.io/service-name={name}"
    ).items
    assert eps.metadata.name.startswith(f"{name}-")
    assert eps.metadata.labels["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert eps.address_type == "IPv4"
    assert eps.metadata.owner_references[0].kind == "Service"
    assert sorted(e.addresses[0] for e in eps.endpoints) == sorted(p.status.pod_ip for p in pods.values())
    assert all(e.conditions.ready and e.zone and e.zone.startswith("eastus2-") for e in eps.endpoints)
    assert [(p.name, p.port) for p in eps.ports] == [("web", 8080)]

    apps.patch_namespaced_deployment_scale(name, NS, {"spec": {"replicas": 1}})
    watch_until(
        core.list_namespaced_endpoints,
        lambda e: e.metadata.name == name and bool(e.subsets) and len(e.subsets[0].addresses or []) == 1,
        "one address after scaling down",
        namespace=NS,
    )
    core.delete_namespaced_service(name, NS)
    watch_gone(
        core.list_namespaced_endpoints, "the Endpoints", namespace=NS, field_selector=f"metadata.name={name}"
    )
    watch_gone(
        discovery.list_namespaced_endpoint_slice,
        "the EndpointSlice",
        namespace=NS,
        label_selector=f"kubernetes.io/service-name={name}",
    )
    apps.delete_namespaced_deployment(name, NS)


def _job(name: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", script]}
                    ],
                }
            },
            **spec,
        },
    }


def test_job_runs_pods_to_completion_and_reports_failure_after_the_backoff_limit(
    api: client.ApiClient, core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    batch = client.BatchV1Api(api)
    ok, bad = f"job-{uuid.uuid4().hex[:5]}", f"job-{uuid.uuid4().hex[:5]}"
    batch.create_namespaced_job(
        NS, _job(ok, "echo done", completions=3, parallelism=2), _preload_content=False
    )
    batch.create_namespaced_job(NS, _job(bad, "exit 2", backoffLimit=1), _preload_content=False)
    done = watch_until(
        batch.list_namespaced_job,
        lambda j: (
            j.metadata.name == ok
            and any(c.type == "Complete" and c.status == "True" for c in j.status.conditions or [])
        ),
        "the job to complete",
        namespace=NS,
    )
    assert done.status.succeeded == 3 and not done.status.active
    assert done.status.completion_time >= done.status.start_time
    pods = core.list_namespaced_pod(NS, label_selector=f"batch.kubernetes.io/job-name={ok}").items
    assert len(pods) == 3 and all(p.status.phase == "Succeeded" for p in pods)
    assert core.read_namespaced_pod_log(pods[0].metadata.name, NS) == "done\n"
    failed = watch_until(
        batch.list_namespaced_job,
        lambda j: (
            j.metadata.name == bad
            and any(c.type == "Failed" and c.status == "True" for c in j.status.conditions or [])
        ),
        "the job to fail",
        namespace=NS,
    )
    condition = next(c for c in failed.status.conditions if c.type == "Failed")
    assert (condition.reason, condition.message) == (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert failed.status.failed == 2  # the first try and one retry


def test_daemonset_runs_one_pod_per_eligible_node(
    api: client.ApiClient, core: client.CoreV1Api, watch_until: Callable[..., Any]
) -> None:
    apps = client.AppsV1Api(api)
    name = f"ds-{uuid.uuid4().hex[:5]}"
    apps.create_namespaced_daemon_set(
        NS,
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "containers": [
                            {"name": "agent", "image": "mcr.microsoft.com/oss/kubernetes/agent:1"}
                        ],
                    },
                },
            },
        },
        _preload_content=False,
    )
    eligible = {
        n.metadata.name
        for n in core.list_node().items
        if n.metadata.labels.get("kubernetes.io/os") == "linux"
        and not any(t.effect in ("NoSchedule", "NoExecute") for t in n.spec.taints or [])
    }
    for node in sorted(eligible):  # (the DaemonSet is read only once its controller has written a status)
        watch_until(
            core.list_namespaced_pod,
            lambda p, n=node: (
                p.spec.node_name == n
                and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            ),
            f"a ready pod on {node}",
            namespace=NS,
            label_selector=f"app={name}",
        )
    ds = watch_until(
        apps.list_namespaced_daemon_set,
        lambda d: d.metadata.name == name and d.status.number_ready == len(eligible),
        "the DaemonSet status to count them",
        namespace=NS,
    )
    assert ds.status.desired_number_scheduled == ds.status.current_number_scheduled == len(eligible) >= 2
    pods = core.list_namespaced_pod(NS, label_selector=f"app={name}").items
    assert sorted(p.spec.node_name for p in pods) == sorted(eligible)
