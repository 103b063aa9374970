"""A NoExecute taint evicts the pods that do not tolerate it, as kube-controller-manager's taint eviction
controller does: at once without a matching toleration, after `tolerationSeconds` with one, never with an
unbounded one."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config

from pytest_aksai.sim import SimCluster


@pytest.fixture(scope="module")
def core() -> Iterator[client.CoreV1Api]:
    with SimCluster(time_scale=120) as sim:
        yield client.CoreV1Api(config.new_client_from_config(str(sim.kubeconfig_path)))


def _pod(name: str, node: str, tolerations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": tolerations,
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}],
        },
    }


def test_a_noexecute_taint_evicts_the_pods_that_do_not_tolerate_it(
    core: client.CoreV1Api, watch_until: Callable[..., Any], watch_gone: Callable[..., None]
) -> None:
    node = core.list_node().items[0].metadata.name
    ns = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns}})
    taint = {"key": "maintenance", "value": "now", "effect": "NoExecute"}
    core.create_namespaced_pod(ns, _pod("plain", node, []))
    watch_until(
        core.list_namespaced_pod, lambda p: p.status.phase == "Running", "plain running", namespace=ns
    )
    core.create_namespaced_pod(ns, _pod("forever", node, [{"key": "maintenance", "operator": "Exists"}]))
    core.create_namespaced_pod(
        ns, _pod("briefly", node, [{"key": "maintenance", "operator": "Exists", "tolerationSeconds": 30}])
    )
    taints = list(core.read_node(node).spec.taints or [])
    try:
        core.patch_node(node, {"spec": {"taints": [*[t.to_dict() for t in taints], taint]}})
        watch_gone(
            core.list_namespaced_pod, "pod plain evicted", namespace=ns, field_selector="metadata.name=plain"
        )
        events = core.list_namespaced_event(ns, field_selector="involvedObject.name=plain").items
        assert any(
            e.reason == "TaintManagerEviction" and e.message == f"Marking for deletion Pod {ns}/plain"
            for e in events
        )
        watch_gone(
            core.list_namespaced_pod,
            "pod briefly evicted",
            namespace=ns,
            field_selector="metadata.name=briefly",
        )
        assert [p.metadata.name for p in core.list_namespaced_pod(ns).items] == ["forever"]
    finally:
        core.patch_node(node, {"spec": {"taints": [t.to_dict() for t in taints] or None}})
