"""The simulated metrics-server: `metrics.k8s.io/v1beta1` behind its APIService, read through the official
client's CustomObjectsApi and through `kubectl top`, with usage that follows what the pods run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import kubernetes
import pytest

from pytest_aksai.sim import SimCluster
from pytest_aksai.sim._core import _resources

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
GROUP, VERSION = "metrics.k8s.io", "v1beta1"


def _poll(fetch: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """metrics.k8s.io serves no watch (metrics-server v0.7 has get and list only): poll with a deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fetch()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def _kubectl(sim: SimCluster, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(sim.kubeconfig_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _burner(name: str, *, cores: str, limit: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "stress",
                            "image": "polinux/stress",
                            "command": ["stress", "--cpu", cores],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"cpu": limit},
                            },
                        }
                    ]
                },
            },
        },
    }


def test_the_apiservice_is_available_and_discovery_lists_the_group(api, raw):
    reg = kubernetes.client.ApiregistrationV1Api(api)
    service = reg.read_api_service("v1beta1.metrics.k8s.io")
    assert service.spec.service.name == "metrics-server" and service.spec.service.namespace == "kube-system"
    assert (service.spec.group, service.spec.version) == (GROUP, VERSION)
    available = _poll(
        lambda: next(
            (
                c
                for c in reg.read_api_service("v1beta1.metrics.k8s.io").status.conditions or []
                if c.status == "True"
            ),
            None,
        ),
        "the APIService to be Available",
    )
    assert (available.type, available.reason, available.message) == (
        "Available",
        "Passed",
        "all checks passed",
    )
    resources = {r["name"]: r for r in raw.request("GET", f"/apis/{GROUP}/{VERSION}").json()["resources"]}
    assert resources["nodes"]["kind"] == "NodeMetrics" and not resources["nodes"]["namespaced"]
    assert resources["pods"]["kind"] == "PodMetrics" and resources["pods"]["namespaced"]
    assert sorted(resources["pods"]["verbs"]) == ["get", "list"]
    # metrics-server serves no watch and no writes.
    assert raw.request("GET", f"/apis/{GROUP}/{VERSION}/nodes?watch=true").status_code == 405
    assert raw.request("POST", f"/apis/{GROUP}/{VERSION}/namespaces/default/pods", json={}).status_code == 405


def test_node_and_pod_metrics_through_the_official_client(api):
    custom = kubernetes.client.CustomObjectsApi(api)
    core = kubernetes.client.CoreV1Api(api)

    def ready() -> set[str]:
        return {
            n.metadata.name
            for n in core.list_node().items
            if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
        }

    def node_metrics() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = custom.list_cluster_custom_object(GROUP, VERSION, "nodes")["items"]
        # A node that just turned Ready (NAP's GPU node) has metrics from its second sample on.
        return items if items and {n["metadata"]["name"] for n in items} == ready() else None

    nodes = _poll(node_metrics, "NodeMetrics for every Ready node")
    for item in nodes:
        assert item["kind"] == "NodeMetrics"
        assert re.fullmatch(r"\d+(\.\d+)?s", item["window"]), item["window"]
        datetime.strptime(item["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        allocatable = _resources.parse(core.read_node(item["metadata"]["name"]).status.allocatable["cpu"])
        assert 0 < _resources.parse(item["usage"]["cpu"]) < allocatable
        assert _resources.parse(item["usage"]["memory"]) > 256 * 2**20
    one = custom.get_cluster_custom_object(GROUP, VERSION, "nodes", nodes[0]["metadata"]["name"])
    assert one["metadata"]["name"] == nodes[0]["metadata"]["name"]

    pods = _poll(
        lambda: custom.list_namespaced_custom_object(
            GROUP, VERSION, "kube-system", "pods", label_selector="k8s-app=metrics-server"
        )["items"],
        "PodMetrics of metrics-server",
    )
    assert len(pods) == 2 and all(p["metadata"]["namespace"] == "kube-system" for p in pods)
    assert all(p["containers"][0]["name"] == "metrics-server" for p in pods)
    name = pods[0]["metadata"]["name"]
    by_field = custom.list_namespaced_custom_object(
        GROUP, VERSION, "kube-system", "pods", field_selector=f"metadata.name={name}"
    )["items"]
    assert [p["metadata"]["name"] for p in by_field] == [name]
    everywhere = custom.list_cluster_custom_object(GROUP, VERSION, "pods")["items"]
    assert len({p["metadata"]["namespace"] for p in everywhere}) > 1
    keys = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in everywhere]
    assert keys == sorted(keys)
    with pytest.raises(kubernetes.client.ApiException) as missing:
        custom.get_namespaced_custom_object(GROUP, VERSION, "kube-system", "pods", "no-such-pod")
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["message"] == 'pod "no-such-pod" not found'


def test_usage_follows_the_workload_and_kubectl_top_shows_it(sim, api, ns, watch_until):
    apps = kubernetes.client.AppsV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    core = kubernetes.client.CoreV1Api(api)
    apps.create_namespaced_deployment(ns, _burner("burner", cores="2", limit="500m"))
    watch_until(
        core.list_namespaced_pod,
        lambda p: any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []),
        "the burner pod to be Ready",
        namespace=ns,
    )
    metrics = _poll(
        lambda: custom.list_namespaced_custom_object(GROUP, VERSION, ns, "pods")["items"],
        "the burner's PodMetrics",
    )
    usage = metrics[0]["containers"][0]["usage"]
    # `stress --cpu 2` is throttled to the 500m limit by the CFS quota.
    assert _resources.parse(usage["cpu"]) == _resources.parse("500m")
    assert usage["cpu"].endswith(("n", "u", "m"))
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: the official client's half passed")
    started = time.monotonic()
    top_nodes = _kubectl(sim, "top", "nodes")
    elapsed = time.monotonic() - started
    assert top_nodes.returncode == 0, top_nodes.stderr
    header, *rows = top_nodes.stdout.splitlines()
    assert header.split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert rows and all(re.fullmatch(r"\S+\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%", r.strip()) for r in rows), rows
    assert elapsed < 10
    top_pods = _kubectl(sim, "top", "pods", "-n", ns, "--containers")
    assert top_pods.returncode == 0, top_pods.stderr
    assert top_pods.stdout.splitlines()[0].split() == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert re.search(r"burner-\S+\s+stress\s+500m\s+\d+Mi", top_pods.stdout), top_pods.stdout
    by_label = _kubectl(sim, "top", "pods", "-A", "-l", "k8s-app=metrics-server")
    assert by_label.returncode == 0 and by_label.stdout.count("metrics-server-") == 2, by_label.stdout
    missing = _kubectl(sim, "top", "node", "no-such-node")
    assert missing.returncode != 0 and 'node "no-such-node" not found' in missing.stderr


@needs_kubectl
def test_without_ready_metrics_server_the_api_is_unavailable(sim, api, watch_until):
    """Run last in this module: it takes metrics-server down and brings it back."""
    apps = kubernetes.client.AppsV1Api(api)
    reg = kubernetes.client.ApiregistrationV1Api(api)
    apps.patch_namespaced_deployment_scale("metrics-server", "kube-system", {"spec": {"replicas": 0}})
    try:
        down = watch_until(
            reg.list_api_service,
            lambda s: (
                s.metadata.name == "v1beta1.metrics.k8s.io"
                and any(c.type == "Available" and c.status == "False" for c in s.status.conditions or [])
            ),
            "the APIService to turn unavailable",
        )
        condition = down.status.conditions[0]
        assert condition.reason == "MissingEndpoints"
        assert (
            condition.message
            == 'endpoints for service/metrics-server in "kube-system" have no addresses with port name "https"'
        )
        top = _kubectl(sim, "top", "nodes")
        assert top.returncode != 0
        assert "the server is currently unable to handle the request (get nodes.metrics.k8s.io)" in top.stderr
    finally:
        apps.patch_namespaced_deployment_scale("metrics-server", "kube-system", {"spec": {"replicas": 2}})
    watch_until(
        reg.list_api_service,
        lambda s: (
            s.metadata.name == "v1beta1.metrics.k8s.io"
            and any(c.type == "Available" and c.status == "True" for c in s.status.conditions or [])
        ),
        "the APIService to be Available again",
    )


def test_a_model_server_is_busy_under_load(api, raw, watch_until):
    """The vLLM pod of the default lab's Workspace: a few percent of a core idle, most of two under load."""
    core = kubernetes.client.CoreV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    watch_until(
        core.list_namespaced_pod,
        lambda p: (
            p.metadata.name == "workspace-phi4-mini-0"
            and "sim.aksai.dev/http-port" in (p.metadata.annotations or {})
        ),
        "the Workspace's model server to serve",
        timeout=120,  # NAP's GPU node and the model's load come first (about 10 cluster minutes)
        namespace="inference",
    )

    def cpu() -> float:
        try:
            item = custom.get_namespaced_custom_object(
                GROUP, VERSION, "inference", "pods", "workspace-phi4-mini-0"
            )
        except kubernetes.client.ApiException:
            return -1.0
        return float(sum(_resources.parse(c["usage"]["cpu"]) for c in item["containers"]))

    idle = _poll(lambda: cpu() if cpu() >= 0 else None, "the model pod's metrics")
    assert idle < 0.2
    stop = threading.Event()
    path = "/api/v1/namespaces/inference/services/workspace-phi4-mini:80/proxy/v1/chat/completions"
    body = {
        "model": "phi-4-mini-instruct",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 256,
    }

    def load() -> None:
        while not stop.is_set():
            raw.request("POST", path, json=body)

    workers = [threading.Thread(target=load, daemon=True) for _ in range(6)]
    for worker in workers:
        worker.start()
    try:
        busy = _poll(
            lambda: (value := cpu()) > 0.5 and value, "the model pod's CPU to rise under load", timeout=20
        )
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert busy > 0.5
