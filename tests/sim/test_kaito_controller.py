"""The simulated KAITO workspace controller through the official client: the default scenario's phi-4-mini
workspace, a workspace created through the API, config validation, reuse of a matching node, the
`kaito-inference-oom` fault and deletion."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import pytest
from kubernetes import client

from pytest_aksai.sim import SimCluster
from tests.sim import _watching

GROUP, VERSION = "kaito.sh", "v1beta1"
PHI4 = ("inference", "workspace-phi4-mini")
T4_SKU = "Standard_NC4as_T4_v3"
WAIT = 60.0
"""Wall seconds; provisioning plus image pull plus model load is about 6 cluster minutes (6 s at 60×)."""
wait_for = functools.partial(_watching.wait_for, timeout=WAIT)
wait_gone = functools.partial(_watching.wait_gone, timeout=WAIT)


def conditions(ws: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (ws.get("status") or {}).get("conditions") or []}


def state_is(state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda ws: (ws.get("status") or {}).get("state") == state


def named(name: str, inner: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def check(obj: Any) -> bool:
        obj_name = obj["metadata"]["name"] if isinstance(obj, dict) else obj.metadata.name
        return bool(obj_name == name and inner(obj))

    return check


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.core: Any = client.CoreV1Api(api)
        self.apps: Any = client.AppsV1Api(api)
        self.custom: Any = client.CustomObjectsApi(api)

    def workspaces(self, namespace: str) -> Callable[..., Any]:
        def list_fn(**kw: Any) -> Any:
            return self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "workspaces", **kw)

        return list_fn

    def nodeclaims(self, **kw: Any) -> Any:
        return self.custom.list_cluster_custom_object("karpenter.sh", "v1", "nodeclaims", **kw)

    def wait_workspace(
        self, namespace: str, name: str, predicate: Callable[[Any], bool], what: str, timeout: float = WAIT
    ) -> dict[str, Any]:
        result: dict[str, Any] = wait_for(
            self.workspaces(namespace),
            named(name, predicate),
            f"workspace {namespace}/{name} {what}",
            timeout=timeout,
        )
        return result


@pytest.fixture(scope="module")
def kube(api: client.ApiClient) -> Kube:
    return Kube(api)


def _workspace(
    name: str, namespace: str, preset: str, selector: dict[str, str], config: str | None
) -> dict[str, Any]:
    ws: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workspace",
        "metadata": {"name": name, "namespace": namespace},
        "resource": {"instanceType": T4_SKU, "labelSelector": {"matchLabels": selector}},
        "inference": {"preset": {"name": preset}},
    }
    if config:
        ws["inference"]["config"] = config
    return ws


def _config(name: str, namespace: str, text: str, key: str = "inference_config.yaml") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {key: text},
    }


# ---- the default scenario ------------------------------------------------------------------------------
def test_default_phi4_workspace_becomes_ready_with_upstream_conditions(kube: Kube) -> None:
    namespace, name = PHI4
    ws = kube.wait_workspace(namespace, name, state_is("Ready"), "to reach state Ready")
    conds = conditions(ws)
    expected = {
        "NodeClaimReady": "NodeClaimsReady",
        "NodesReady": "NodesReady",
        "ResourceReady": "workspaceResourceStatusSuccess",
        "InferenceReady": "WorkspaceInferenceStatusSuccess",
        "WorkspaceSucceeded": "workspaceSucceeded",
    }
    assert {t: (conds[t]["status"], conds[t]["reason"]) for t in expected} == {
        t: ("True", reason) for t, reason in expected.items()
    }
    assert "workspace.finalizer.kaito.sh" in ws["metadata"]["finalizers"]

    claims = kube.nodeclaims(
        label_selector=f"kaito.sh/workspace={name},kaito.sh/workspacenamespace={namespace}"
    )
    assert len(claims["items"]) == 1
    claim = claims["items"][0]
    assert claim["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] == "true"
    assert claim["metadata"]["labels"]["apps"] == "phi4-mini-inference"
    assert {c["type"]: c["status"] for c in claim["status"]["conditions"]} == {
        "Launched": "True",
        "Registered": "True",
        "Initialized": "True",
        "Ready": "True",
    }
    assert claim["status"]["providerID"].startswith("azure:///subscriptions/")

    node = kube.core.read_node(claim["status"]["nodeName"])
    labels = node.metadata.labels
    assert labels["node.kubernetes.io/instance-type"] == T4_SKU
    assert labels["karpenter.azure.com/sku-gpu-name"] == "T4"
    assert labels["karpenter.sh/initialized"] == "true"
    assert labels["apps"] == "phi4-mini-inference"
    assert node.status.allocatable["nvidia.com/gpu"] == "1"
    assert any(t.key == "sku" and t.value == "gpu" and t.effect == "NoSchedule" for t in node.spec.taints)
    assert ws["status"]["workerNodes"] == [node.metadata.name]

    ss = kube.apps.read_namespaced_stateful_set(name, namespace)
    assert ss.status.ready_replicas == 1 and ss.spec.replicas == 1
    container = ss.spec.template.spec.containers[0]
    assert container.name == name
    assert container.resources.requests["nvidia.com/gpu"] == "1"
    assert (
        container.readiness_probe.http_get.path == "/health"
        and container.readiness_probe.http_get.port == 5000
    )
    assert "--served-model-name=phi-4-mini-instruct" in container.command[-1]
    assert ss.spec.template.metadata.labels["kaito.sh/workspace"] == name
    assert any(t.key == "sku" and t.value == "gpu" for t in ss.spec.template.spec.tolerations)
    terms = ss.spec.template.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    assert terms.node_selector_terms[0].match_expressions[0].key == "apps"

    svc = kube.core.read_namespaced_service(name, namespace)
    http = next(p for p in svc.spec.ports if p.name == "http")
    assert (http.port, str(http.target_port)) == (80, "5000")
    assert svc.spec.selector == {
        "kaito.sh/workspace": name,
        "statefulset.kubernetes.io/pod-name": f"{name}-0",
    }
    headless = kube.core.read_namespaced_service(f"{name}-headless", namespace)
    assert headless.spec.cluster_ip == "None"
    owners = {(o.kind, o.name) for o in svc.metadata.owner_references}
    assert owners == {("Workspace", name)}


def test_phi4_answers_through_the_service_proxy(kube: Kube) -> None:
    namespace, name = PHI4
    kube.wait_workspace(namespace, name, state_is("Ready"), "to reach state Ready")
    wait_for(
        kube.core.list_namespaced_pod,
        lambda p: (
            p.metadata.name == f"{name}-0" and "sim.aksai.dev/http-port" in (p.metadata.annotations or {})
        ),
        "the model server of pod workspace-phi4-mini-0 to be up",
        namespace=namespace,
    )
    response = kube.core.connect_get_namespaced_service_proxy_with_path(
        f"{name}:80", namespace, "v1/models", _preload_content=False
    )
    assert response.status == 200
    models = json.loads(response.data)
    assert [m["id"] for m in models["data"]] == ["phi-4-mini-instruct"]
    assert models["data"][0]["max_model_len"] == 4096


# ---- a workspace created through the API ---------------------------------------------------------------
def test_new_workspace_goes_all_the_way_and_deletion_cleans_up(kube: Kube, ns: str) -> None:
    kube.core.create_namespaced_config_map(ns, _config("cfg", ns, "vllm:\n  max-model-len: 2048\n"))
    selector = {"apps": f"phi35-{ns}"}
    kube.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, "workspaces", _workspace("ws-phi35", ns, "phi-3.5-mini-instruct", selector, "cfg")
    )
    ws = kube.wait_workspace(ns, "ws-phi35", state_is("Ready"), "to reach state Ready")
    assert conditions(ws)["InferenceReady"]["reason"] == "WorkspaceInferenceStatusSuccess"
    claim_selector = f"kaito.sh/workspace=ws-phi35,kaito.sh/workspacenamespace={ns}"
    claims = kube.nodeclaims(label_selector=claim_selector)["items"]
    assert len(claims) == 1
    node_name = claims[0]["status"]["nodeName"]

    kube.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "workspaces", "ws-phi35")
    wait_gone(kube.workspaces(ns), "workspace ws-phi35")
    wait_gone(kube.nodeclaims, "the workspace's NodeClaim", label_selector=claim_selector)
    wait_gone(kube.apps.list_namespaced_stateful_set, "StatefulSet ws-phi35", namespace=ns)
    wait_gone(kube.core.list_namespaced_service, "Services ws-phi35 and ws-phi35-headless", namespace=ns)
    wait_gone(kube.core.list_node, f"node {node_name}", field_selector=f"metadata.name={node_name}")


def test_ready_matching_node_is_reused_instead_of_a_nodeclaim(kube: Kube, ns: str) -> None:
    node_name = f"byo-{uuid.uuid4().hex[:6]}"
    labels = {
        "apps": f"byo-{ns}",
        "node.kubernetes.io/instance-type": T4_SKU,
        "kubernetes.io/os": "linux",
        "nvidia.com/gpu.present": "true",
    }
    kube.core.create_node(
        {
            "metadata": {"name": node_name, "labels": labels},
            "status": {
                "capacity": {"cpu": "4", "memory": "28Gi", "pods": "110", "nvidia.com/gpu": "1"},
                "allocatable": {"cpu": "3860m", "memory": "25Gi", "pods": "110", "nvidia.com/gpu": "1"},
            },
        }
    )
    try:
        wait_for(
            kube.core.list_node,
            lambda n: any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or []),
            f"node {node_name} to be Ready",
            field_selector=f"metadata.name={node_name}",
        )
        kube.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            "workspaces",
            _workspace("ws-byo", ns, "phi-4-mini-instruct", {"apps": f"byo-{ns}"}, None),
        )
        ws = kube.wait_workspace(ns, "ws-byo", state_is("Ready"), "to reach state Ready on the existing node")
        assert ws["status"]["workerNodes"] == [node_name]
        assert conditions(ws)["NodeClaimReady"]["status"] == "True"
        assert (
            kube.nodeclaims(label_selector=f"kaito.sh/workspace=ws-byo,kaito.sh/workspacenamespace={ns}")[
                "items"
            ]
            == []
        )
        pod = kube.core.read_namespaced_pod("ws-byo-0", ns)
        assert pod.spec.node_name == node_name
    finally:
        kube.core.delete_node(node_name)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            _config("bad", "", "vllm:\n  max-model-len: 200000\n"),
            "max-model-len 200000 exceeds model's maximum supported context window 131072 (ModelTokenLimit)",
        ),
        (
            _config("bad", "", "vllm:\n  max-num-seqs: 64\n", key="config.yaml"),
            "missing field(s): inference_config.yaml in ConfigMap",
        ),
        (None, "ConfigMap 'bad' specified in 'config' not found"),
    ],
    ids=["max-model-len-over-limit", "missing-key", "missing-configmap"],
)
def test_invalid_inference_config_fails_with_kaitos_message(
    kube: Kube, ns: str, config: dict[str, Any] | None, message: str
) -> None:
    if config is not None:
        config["metadata"]["namespace"] = ns
        kube.core.create_namespaced_config_map(ns, config)
    kube.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        "workspaces",
        _workspace("ws-bad", ns, "phi-4-mini-instruct", {"apps": "bad"}, "bad"),
    )
    ws = kube.wait_workspace(ns, "ws-bad", state_is("Failed"), "to fail")
    cond = conditions(ws)["InferenceReady"]
    assert (cond["status"], cond["reason"]) == ("False", "InvalidInferenceConfig")
    assert message in cond["message"]
    assert kube.apps.list_namespaced_stateful_set(ns).items == []
    assert (
        kube.nodeclaims(label_selector=f"kaito.sh/workspace=ws-bad,kaito.sh/workspacenamespace={ns}")["items"]
        == []
    )


def test_pod_that_fits_no_node_gives_unschedulable(kube: Kube, ns: str) -> None:
    node_name = f"nogpu-{uuid.uuid4().hex[:6]}"
    labels = {"apps": f"nogpu-{ns}", "node.kubernetes.io/instance-type": T4_SKU, "kubernetes.io/os": "linux"}
    kube.core.create_node(
        {
            "metadata": {"name": node_name, "labels": labels},
            "status": {
                "capacity": {"cpu": "4", "memory": "28Gi", "pods": "110"},
                "allocatable": {"cpu": "3860m", "memory": "25Gi", "pods": "110"},
            },
        }
    )
    try:
        kube.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            "workspaces",
            _workspace("ws-nogpu", ns, "phi-4-mini-instruct", {"apps": f"nogpu-{ns}"}, None),
        )
        ws = kube.wait_workspace(
            ns,
            "ws-nogpu",
            lambda w: conditions(w).get("InferenceReady", {}).get("reason") == "Unschedulable",
            "to report InferenceReady reason Unschedulable",
        )
        assert "nvidia.com/gpu" in conditions(ws)["InferenceReady"]["message"]
        assert ws["status"]["state"] == "Pending"
    finally:
        kube.core.delete_node(node_name)


def test_image_pull_failure_gives_image_pull_error(kube: Kube, ns: str) -> None:
    faults = kube.core.read_namespaced_config_map("aksai-sim-faults", "kube-system")
    before = dict(faults.data or {})
    kube.core.patch_namespaced_config_map(
        "aksai-sim-faults", "kube-system", {"data": {"image-pull-backoff": "aks/kaito/kaito-base"}}
    )
    try:
        kube.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            "workspaces",
            _workspace("ws-pull", ns, "phi-4-mini-instruct", {"apps": f"pull-{ns}"}, None),
        )
        ws = kube.wait_workspace(
            ns,
            "ws-pull",
            lambda w: conditions(w).get("InferenceReady", {}).get("reason") == "ImagePullError",
            "to report InferenceReady reason ImagePullError",
        )
        assert "kaito-base" in conditions(ws)["InferenceReady"]["message"]
    finally:
        kube.core.replace_namespaced_config_map(
            "aksai-sim-faults",
            "kube-system",
            {"metadata": {"name": "aksai-sim-faults", "namespace": "kube-system"}, "data": before},
        )


# ---- faults --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def oom_kube() -> Iterator[Kube]:
    with SimCluster(faults=["kaito-inference-oom"]) as sim:
        yield Kube(kubernetes.config.new_client_from_config(str(sim.kubeconfig_path)))


def test_inference_oom_fault_gives_container_oom_killed(oom_kube: Kube) -> None:
    namespace, name = PHI4
    ws = oom_kube.wait_workspace(
        namespace,
        name,
        lambda w: conditions(w).get("InferenceReady", {}).get("reason") == "ContainerOOMKilled",
        "to report InferenceReady=False reason ContainerOOMKilled",
    )
    cond = conditions(ws)["InferenceReady"]
    assert cond["status"] == "False"
    assert "OOMKilled" in cond["message"] and f"{name}-0" in cond["message"]
    # Pending when the pod never turned Ready, NotReady when it was Ready before the kill (upstream's rule).
    assert ws["status"]["state"] in ("Pending", "NotReady")
    assert conditions(ws)["WorkspaceSucceeded"]["status"] == "False"
    assert conditions(ws)["ResourceReady"]["status"] == "True"
    pod = oom_kube.core.read_namespaced_pod(f"{name}-0", namespace)
    status = pod.status.container_statuses[0]
    assert status.last_state.terminated.exit_code == 137
    assert status.restart_count >= 1 and not status.ready
