"""The network path applications use to reach a model: the NetworkPolicies that apply to its pods, read
statically for each client namespace, and a short-lived probe pod that calls the Service's cluster DNS name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

from pytest_aksai._netpol import Client, ingress_verdict, namespace_labels
from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._rest import Kind, Obj

NETWORKPOLICIES = Kind("networking.k8s.io", "v1", "networkpolicies", kind="NetworkPolicy")
CILIUM_POLICIES = Kind("cilium.io", "v2", "ciliumnetworkpolicies", kind="CiliumNetworkPolicy")
PROBE_MANIFEST = "probe-curl.yaml"


@dataclass(frozen=True)
class Blocked:
    client_namespace: str
    pod: str
    policies: tuple[str, ...]


def _service_target(service: Obj, pod: Obj) -> tuple[int, str | None]:
    """The container port (number, name) the Service's `http` port reaches on the pod."""
    ports = (service.get("spec") or {}).get("ports") or []
    chosen = next((p for p in ports if p.get("name") == "http"), ports[0] if ports else {})
    target = chosen.get("targetPort", chosen.get("port", 80))
    for container in (pod.get("spec") or {}).get("containers") or []:
        for cp in container.get("ports") or []:
            if cp.get("name") == target or cp.get("containerPort") == target:
                return int(cp["containerPort"]), cp.get("name")
    return (int(target), None) if str(target).isdigit() else (0, str(target))


def blocked_clients(cluster: Cluster, namespace: str, service_name: str, clients: list[str]) -> list[Blocked]:
    """For each client namespace, the model pods whose NetworkPolicies admit no pod of it on the Service's
    target port (empty: every client may connect)."""
    service = _rest.get(cluster._api, _rest.SERVICES, service_name, namespace)
    if service is None or not cluster.serves(NETWORKPOLICIES.group, NETWORKPOLICIES.version):
        return []
    selector = (service.get("spec") or {}).get("selector") or {}
    pods = _rest.items(
        cluster._api, _rest.PODS, namespace, label_selector=",".join(f"{k}={v}" for k, v in selector.items())
    )
    policies = _rest.items(cluster._api, NETWORKPOLICIES, namespace)
    found: list[Blocked] = []
    for client_ns in clients:
        ns_obj = _rest.get(cluster._api, _rest.NAMESPACES, client_ns) or {"metadata": {"name": client_ns}}
        client = Client(client_ns, namespace_labels(ns_obj))
        for pod in pods:
            port, port_name = _service_target(service, pod)
            verdict = ingress_verdict(pod, policies, client, port, port_name)
            if not verdict.admitted:
                found.append(Blocked(client_ns, pod["metadata"]["name"], verdict.isolating))
    return found


def cilium_policies(cluster: Cluster, namespace: str) -> list[str]:
    """CiliumNetworkPolicies in the namespace (not evaluated: their rules are Cilium's own)."""
    if not cluster.serves(CILIUM_POLICIES.group, CILIUM_POLICIES.version):
        return []
    try:
        return sorted(p["metadata"]["name"] for p in _rest.items(cluster._api, CILIUM_POLICIES, namespace))
    except ApiException:
        return []


@dataclass(frozen=True)
class ProbeResult:
    namespace: str
    pod: str
    url: str
    exit_code: int | None
    output: str


def probe_manifest(fixtures_dir: Path, url: str, labels: dict[str, str]) -> Obj:
    """The probe pod of `fixtures/probe-curl.yaml`, calling `url`, labelled with the run."""
    manifest: dict[str, Any] = yaml.safe_load((fixtures_dir / PROBE_MANIFEST).read_text(encoding="utf-8"))
    manifest["metadata"].setdefault("labels", {}).update(labels)
    container = manifest["spec"]["containers"][0]
    container["args"] = [a.replace("$(TARGET_URL)", url) for a in container.get("args") or []]
    return manifest


def run_probe(cluster: Cluster, namespace: str, manifest: Obj, timeout: float) -> ProbeResult:
    """Create the probe pod, wait (cluster seconds) until its container ends, read its log; always deletes it."""
    created = _rest.create(cluster._api, _rest.PODS, dict(manifest), namespace)
    name = created["metadata"]["name"]
    url = " ".join(created["spec"]["containers"][0].get("args") or [])
    try:
        deadline = time.monotonic() + timeout / cluster.time_scale
        pod: Obj | None = created
        while time.monotonic() < deadline:
            pod = _rest.get(cluster._api, _rest.PODS, name, namespace)
            if pod is not None and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                break
            for _ in _rest.watch(
                cluster._api,
                _rest.PODS,
                namespace,
                resource_version=str(((pod or created).get("metadata") or {}).get("resourceVersion", "")),
                timeout_seconds=max(1, min(10, int(deadline - time.monotonic()) + 1)),
                field_selector=f"metadata.name={name}",
            ):
                break
        statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or [{}]
        terminated = (statuses[0].get("state") or {}).get("terminated") or {}
        try:
            log = _rest.raw_text(cluster._api, f"/api/v1/namespaces/{namespace}/pods/{name}/log")
        except ApiException:
            log = ""
        code = terminated.get("exitCode")
        return ProbeResult(namespace, name, url, int(code) if code is not None else None, log.strip())
    finally:
        _rest.delete(cluster._api, _rest.PODS, name, namespace)
