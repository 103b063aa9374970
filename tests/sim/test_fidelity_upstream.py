"""Fidelity against upstream: the real CRDs and a real lab's manifests (`../shared/upstream/` beside the repo).

With the upstream CRDs loaded, every manifest of the lab must be accepted or rejected as a real API server
with those CRDs accepts or rejects it; the sim's own CRDs must agree with upstream on every one of them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from pytest_aksai.sim import SimCluster

REPO_ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = REPO_ROOT.parent / "shared" / "upstream"
CRDS = UPSTREAM / "crds"
MANIFESTS = UPSTREAM / "aks-ai-lab-manifests"

pytestmark = pytest.mark.skipif(
    not CRDS.is_dir() or not MANIFESTS.is_dir(),
    reason=f"upstream reference data not found at {UPSTREAM} (a checkout of the "
    "project's shared/ folder beside the repo)",
)

# karpenter.sh as AKS serves it: the provider's NodePool/NodeClaim CRDs, not kubernetes-sigs/karpenter's.
_CRD_FILES = (
    [p for p in sorted(CRDS.glob("*/*.yaml")) if p.parent.name != "karpenter"] if CRDS.is_dir() else []
)

CREATED, NO_MATCH, INVALID = "created", "no kind match (404)", "invalid (422)"
NOT_INSTALLED_ON_THE_SIM: set[str] = set()
"""API groups of add-ons the sim does not implement yet (none left of the lab's)."""
# What a real API server with the upstream CRDs does with each manifest (namespaces first, then file order).
# NO_MATCH: the group/version is not served (Gateway API, Istio, Cilium, Envoy Gateway and the ALB controller
# are not installed; InferencePool/InferenceModel moved from inference.networking.x-k8s.io/v1alpha2 to
# inference.networking.k8s.io/v1). INVALID: the AKSNodeClass's vnetSubnetID keeps the `<RG_NAME>` placeholder,
# which the resourceGroups pattern of the upstream schema rejects.
EXPECTED: dict[tuple[str, str, str], str] = {
    ("ingress/1-app-routing.yaml", "Ingress", "inference-ingress"): CREATED,
    ("ingress/2-app-gateway-containers.yaml", "ApplicationLoadBalancer", "inference-alb"): NO_MATCH,
    ("ingress/2-app-gateway-containers.yaml", "Gateway", "inference-gateway"): NO_MATCH,
    ("ingress/2-app-gateway-containers.yaml", "HTTPRoute", "inference-route"): NO_MATCH,
    ("ingress/3-istio-gateway.yaml", "Gateway", "inference-gateway"): NO_MATCH,
    ("ingress/3-istio-gateway.yaml", "VirtualService", "inference-vs"): NO_MATCH,
    ("ingress/3-istio-gateway.yaml", "DestinationRule", "inference-dr"): NO_MATCH,
    ("ingress/3-istio-gateway.yaml", "PeerAuthentication", "inference-mtls"): NO_MATCH,
    ("ingress/4-inference-extension.yaml", "InferencePool", "phi4-mini-pool"): NO_MATCH,
    ("ingress/4-inference-extension.yaml", "InferenceModel", "phi-4-mini-instruct"): NO_MATCH,
    ("ingress/4-inference-extension.yaml", "InferenceModel", "mistral-7b-instruct"): NO_MATCH,
    ("ingress/4-inference-extension.yaml", "HTTPRoute", "inference-route"): NO_MATCH,
    ("ingress/4-inference-extension.yaml", "ScaledObject", "phi4-pool-scaler"): CREATED,
    ("kaito/namespace.yaml", "Namespace", "inference"): CREATED,
    ("kaito/workspace-llama3-8b.yaml", "Workspace", "workspace-llama3-8b"): CREATED,
    ("kaito/workspace-llama3-8b.yaml", "ConfigMap", "llama3-8b-vllm-config"): CREATED,
    ("kaito/workspace-mistral-7b.yaml", "Workspace", "workspace-mistral-7b"): CREATED,
    ("kaito/workspace-mistral-7b.yaml", "ConfigMap", "mistral-vllm-config"): CREATED,
    ("kaito/workspace-phi3-mini.yaml", "Workspace", "workspace-phi3-mini-128k"): CREATED,
    ("kaito/workspace-phi3-mini.yaml", "ConfigMap", "phi3-vllm-config"): CREATED,
    ("kaito/workspace-phi4-mini.yaml", "Workspace", "workspace-phi4-mini"): CREATED,
    ("kaito/workspace-phi4-mini.yaml", "ConfigMap", "phi4-vllm-config"): CREATED,
    ("keda/1-http-scaledobject.yaml", "HTTPScaledObject", "inference-http-scaler"): CREATED,
    ("keda/2-servicebus-scaledobject.yaml", "ScaledObject", "inference-sb-scaler"): CREATED,
    ("keda/2-servicebus-scaledobject.yaml", "Deployment", "inference-worker"): CREATED,
    ("monitoring/dcgm-exporter.yaml", "DaemonSet", "dcgm-exporter"): CREATED,
    ("monitoring/dcgm-exporter.yaml", "Namespace", "monitoring"): CREATED,
    ("monitoring/dcgm-exporter.yaml", "Service", "dcgm-exporter"): CREATED,
    ("nap/gpu-nodepool.yaml", "NodePool", "gpu-inference"): CREATED,
    ("nap/gpu-nodepool.yaml", "NodePool", "gpu-inference-spot"): CREATED,
    ("nap/gpu-nodepool.yaml", "AKSNodeClass", "gpu-inference-class"): INVALID,
    ("networking/01-gateway-class.yaml", "GatewayClass", "envoy-gateway"): NO_MATCH,
    ("networking/02-gateway.yaml", "Gateway", "inference-gateway"): NO_MATCH,
    ("networking/03-cilium-network-policy.yaml", "CiliumNetworkPolicy", "vllm-ingress"): NO_MATCH,
    ("networking/03-cilium-network-policy.yaml", "CiliumNetworkPolicy", "vllm-egress"): NO_MATCH,
    (
        "networking/04-backend-traffic-policy.yaml",
        "BackendTrafficPolicy",
        "inference-circuit-breaker",
    ): NO_MATCH,
    (
        "networking/04-backend-traffic-policy.yaml",
        "ClientTrafficPolicy",
        "inference-client-traffic",
    ): NO_MATCH,
    ("networking/05-inference-pool.yaml", "InferencePool", "<MODEL_NAME>-pool"): NO_MATCH,
    ("networking/05-inference-pool.yaml", "InferenceModel", "<MODEL_NAME>"): NO_MATCH,
    ("networking/05-inference-pool.yaml", "HTTPRoute", "<MODEL_NAME>-route"): NO_MATCH,
    ("vllm/mock-inference.yaml", "Deployment", "mock-inference"): CREATED,
    ("vllm/mock-inference.yaml", "Service", "mock-inference"): CREATED,
    ("vllm/mock-inference.yaml", "HTTPRoute", "mock-inference-route"): NO_MATCH,
    ("vllm/ollama-cpu.yaml", "Deployment", "ollama-cpu"): CREATED,
    ("vllm/ollama-cpu.yaml", "Service", "ollama-cpu"): CREATED,
    ("vllm/ollama-cpu.yaml", "HTTPRoute", "ollama-cpu-route"): NO_MATCH,
    ("workload-identity/keda-trigger-auth.yaml", "TriggerAuthentication", "azure-sb-auth"): CREATED,
    ("workload-identity/keda-trigger-auth.yaml", "TriggerAuthentication", "azure-prom-auth"): CREATED,
    ("workload-identity/secret-provider-class.yaml", "SecretProviderClass", "lab-secrets"): CREATED,
    ("workload-identity/serviceaccount.yaml", "ServiceAccount", "inference-sa"): CREATED,
}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(MANIFESTS.glob("*/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((str(path.relative_to(MANIFESTS)), doc))
    # Namespaces first, as `kubectl apply -f <dir>` users order them (and as a real rollout must).
    return sorted(docs, key=lambda item: item[1].get("kind") != "Namespace")


def _apply(dyn: kubernetes.dynamic.DynamicClient, doc: dict[str, Any]) -> str:
    try:
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    except ResourceNotFoundError:
        return NO_MATCH
    namespace = (doc["metadata"].get("namespace") or "default") if resource.namespaced else None
    try:
        dyn.server_side_apply(
            resource, body=doc, namespace=namespace, field_manager="fidelity", force_conflicts=True
        )
    except ApiException as exc:
        return {404: NO_MATCH, 422: INVALID}.get(exc.status, f"HTTP {exc.status}: {exc.body}")
    return CREATED


def _install_upstream_crds(api: kubernetes.client.ApiClient) -> None:
    ext = kubernetes.client.ApiextensionsV1Api(api)
    installed = {c.metadata.name for c in ext.list_custom_resource_definition().items}
    for path in _CRD_FILES:
        crd = yaml.safe_load(path.read_text())
        name = crd["metadata"]["name"]
        if name in installed:
            current = ext.read_custom_resource_definition(name)
            crd["metadata"]["resourceVersion"] = current.metadata.resource_version
            ext.replace_custom_resource_definition(name, crd)
        else:
            ext.create_custom_resource_definition(crd)


@pytest.fixture(scope="module", params=["upstream-crds", "sim-crds"])
def cluster(request: pytest.FixtureRequest) -> Iterator[tuple[str, kubernetes.client.ApiClient]]:
    with SimCluster() as sim:
        api = kubernetes.config.new_client_from_config(str(sim.kubeconfig_path))
        if request.param == "upstream-crds":
            _install_upstream_crds(api)
        yield request.param, api


def test_lab_manifests_are_accepted_and_rejected_as_upstream(cluster):
    source, api = cluster
    dyn = kubernetes.dynamic.DynamicClient(api)
    documents = {(path, doc["kind"], doc["metadata"]["name"]): doc for path, doc in _documents()}
    outcomes = {key: _apply(dyn, doc) for key, doc in documents.items()}
    assert set(outcomes) == set(EXPECTED), "the lab's manifests changed; review EXPECTED"
    expected = dict(EXPECTED)
    if source == "sim-crds":
        # The sim installs only the add-ons it implements: their groups are not served (404 as upstream
        # answers for a group whose CRDs are absent).
        for key, doc in documents.items():
            if doc["apiVersion"].partition("/")[0] in NOT_INSTALLED_ON_THE_SIM:
                expected[key] = NO_MATCH
    wrong = {key: (got, expected[key]) for key, got in outcomes.items() if got != expected[key]}
    assert not wrong, f"with {source}: (got, expected) {wrong}"


def test_unserved_api_versions_are_rejected(cluster):
    source, api = cluster
    dyn = kubernetes.dynamic.DynamicClient(api)
    nodepool = next(doc for path, doc in _documents() if doc["kind"] == "NodePool")
    retired = copy.deepcopy(nodepool)
    retired["apiVersion"] = "karpenter.sh/v1beta1"  # served by Karpenter < 1.0 only
    assert _apply(dyn, retired) == NO_MATCH, source
    workspace = next(doc for path, doc in _documents() if doc["kind"] == "Workspace")
    old = copy.deepcopy(workspace)
    old["apiVersion"] = "kaito.sh/v1alpha1"  # still served, not stored
    old["metadata"]["name"] = "served-v1alpha1"
    assert _apply(dyn, old) == CREATED, source
    future = copy.deepcopy(workspace)
    future["apiVersion"] = "kaito.sh/v1"
    assert _apply(dyn, future) == NO_MATCH, source


def test_placeholder_subnet_is_rejected_with_the_schema_pattern(cluster):
    source, api = cluster
    dyn = kubernetes.dynamic.DynamicClient(api)
    node_class = next(doc for path, doc in _documents() if doc["kind"] == "AKSNodeClass")
    resource = dyn.resources.get(api_version=node_class["apiVersion"], kind="AKSNodeClass")
    with pytest.raises(ApiException) as err:
        dyn.create(resource, body=node_class)
    assert err.value.status == 422
    assert "spec.vnetSubnetID in body should match" in err.value.body, source
    fixed = copy.deepcopy(node_class)
    fixed["spec"]["vnetSubnetID"] = (
        "/subscriptions/0000/resourceGroups/rg-lab/providers/Microsoft.Network/"
        "virtualNetworks/aks-ai-lab-vnet/subnets/aks-subnet"
    )
    fixed["metadata"]["name"] = "fidelity-" + fixed["metadata"]["name"]  # the default lab has the lab's own
    created = dyn.create(resource, body=fixed)
    assert created.spec.imageFamily == "Ubuntu2204"
    assert created.spec.osDiskSizeGB == 256
