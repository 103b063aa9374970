"""Kubernetes NetworkPolicy semantics for ingress to a pod: which policies isolate it, and whether one admits a
client. Pure functions over objects as the API server sends them (dicts), so the static check (`kube`) and
the simulated cluster's service routing (`sim`) decide alike.

Rules (networking.k8s.io/v1): a pod is isolated for ingress once a policy of its namespace selects it
(`spec.podSelector`) with `Ingress` in `policyTypes` (implied when `policyTypes` is absent); it then admits a
connection only if some such policy has an ingress rule whose `from` admits the client (absent or empty:
everyone; a peer with `namespaceSelector` and/or `podSelector`; `podSelector` alone means the policy's own
namespace) and whose `ports` admit the port (absent or empty: every port; a number, a named container port,
`endPort` ranges; protocol TCP by default). An `ipBlock` peer is not evaluated: it is counted as admitting,
so that a reading that cannot tell never reports a block.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]


def selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (`matchLabels`, `matchExpressions`) against labels; an empty selector matches all."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op = str(expr.get("key")), str(expr.get("operator"))
        values = [str(v) for v in expr.get("values") or []]
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _labels(obj: Obj) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items()}


def namespace_labels(namespace: Obj) -> dict[str, str]:
    """A Namespace's labels, with `kubernetes.io/metadata.name` as the API server sets it."""
    labels = _labels(namespace)
    labels.setdefault("kubernetes.io/metadata.name", str((namespace.get("metadata") or {}).get("name")))
    return labels


def isolates_ingress(policy: Obj, pod: Obj) -> bool:
    spec = policy.get("spec") or {}
    if (policy.get("metadata") or {}).get("namespace") != (pod.get("metadata") or {}).get("namespace"):
        return False
    types = spec.get("policyTypes") or ["Ingress"]
    return "Ingress" in types and selector_matches(spec.get("podSelector") or {}, _labels(pod))


@dataclass(frozen=True)
class Client:
    """Who connects: its namespace (with labels) and, when known, its pod's labels (None: some pod there)."""

    namespace: str
    namespace_labels: Mapping[str, str]
    pod_labels: Mapping[str, str] | None = None


def _peer_admits(peer: Obj, policy_namespace: str, client: Client) -> bool:
    if "ipBlock" in peer:
        return True
    ns_selector = peer.get("namespaceSelector")
    pod_selector = peer.get("podSelector")
    if ns_selector is None and pod_selector is None:
        return False
    if ns_selector is not None:
        if not selector_matches(ns_selector, client.namespace_labels):
            return False
    elif client.namespace != policy_namespace:
        return False
    if pod_selector is None or not (pod_selector.get("matchLabels") or pod_selector.get("matchExpressions")):
        return True
    # A pod selector admits only labelled pods; without the client's labels, some pod may carry them.
    return client.pod_labels is None or selector_matches(pod_selector, client.pod_labels)


def _port_admits(rule_ports: Iterable[Obj], port: int, port_name: str | None) -> bool:
    ports = list(rule_ports)
    if not ports:
        return True
    for entry in ports:
        if str(entry.get("protocol") or "TCP") != "TCP":
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str) and not wanted.isdigit():
            if port_name is not None and wanted == port_name:
                return True
            continue
        low = int(wanted)
        high = int(entry.get("endPort") or low)
        if low <= port <= high:
            return True
    return False


def rule_admits(policy: Obj, client: Client, port: int, port_name: str | None) -> bool:
    namespace = str((policy.get("metadata") or {}).get("namespace"))
    for rule in (policy.get("spec") or {}).get("ingress") or []:
        peers = rule.get("from") or []
        if (not peers or any(_peer_admits(p, namespace, client) for p in peers)) and _port_admits(
            rule.get("ports") or [], port, port_name
        ):
            return True
    return False


@dataclass(frozen=True)
class IngressVerdict:
    admitted: bool
    isolating: tuple[str, ...]
    """The policies that select the pod for ingress (none: the pod is not isolated)."""


def ingress_verdict(
    pod: Obj, policies: Iterable[Obj], client: Client, port: int, port_name: str | None = None
) -> IngressVerdict:
    """Whether `client` may open a TCP connection to `port` of `pod` under the namespace's NetworkPolicies."""
    selecting = [p for p in policies if isolates_ingress(p, pod)]
    names = tuple(sorted(str((p.get("metadata") or {}).get("name")) for p in selecting))
    if not selecting:
        return IngressVerdict(True, ())
    return IngressVerdict(any(rule_admits(p, client, port, port_name) for p in selecting), names)
