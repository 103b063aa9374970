"""The objects a check is about, as evidence for the run report: each object's YAML (scrubbed), its events,
the objects it brings along (a workload's pods, a NodePool's NodeClaims) and those pods' log tails.

Secrets and ConfigMaps are never read here (the simulated tenant keeps its vault's values in one); environment
variables whose name says secret lose their value; the caller passes every text through `redact` as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._evidence import evidence
from pytest_aksai.kube._identity import SERVICEACCOUNTS
from pytest_aksai.kube._keda import HPAS
from pytest_aksai.kube._nap import AKSNODECLASSES, LABEL_NODEPOOL
from pytest_aksai.kube._rest import Kind, Obj
from pytest_aksai.kube._wait import events_about

KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        _rest.WORKSPACES,
        _rest.STATEFULSETS,
        _rest.DEPLOYMENTS,
        _rest.SERVICES,
        _rest.SCALEDOBJECTS,
        _rest.HTTPSCALEDOBJECTS,
        HPAS,
        _rest.NODEPOOLS,
        _rest.NODECLAIMS,
        _rest.NODES,
        AKSNODECLASSES,
        SERVICEACCOUNTS,
        _rest.PODS,
    )
}
"""The kinds whose objects a check's evidence may show (never Secret or ConfigMap)."""
PODS_PER_SUBJECT = 3
NODECLAIMS_PER_POOL = 4
MAX_CHARS = 24_000
"""One object's evidence file at most (its pods' log tails included): small enough to attach to a ticket."""
SECRET_NAME = re.compile(r"(?i)(token|secret|password|passwd|key|conn(ection)?[_-]?str|credential|sas)")
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


@dataclass(frozen=True)
class Subject:
    """An object a check is about: `kind` as the API names it (`Workspace`, `ScaledObject`, `NodePool`, …)."""

    kind: str
    name: str
    namespace: str | None = None

    @property
    def stem(self) -> str:
        """A file name for the object's evidence."""
        parts = [self.kind, self.namespace or "", self.name]
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(p for p in parts if p)).strip("-")[:150]

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace + '/' if self.namespace else ''}{self.name}"


def scrubbed(obj: Any) -> Any:
    """The object without its managedFields and last-applied annotation, and with the value of every
    environment variable whose name says secret (`HF_TOKEN`, `SB_CONNECTION_STRING`) replaced."""
    if isinstance(obj, list):
        return [scrubbed(x) for x in obj]
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "managedFields":
            continue
        if key == "annotations" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in DROPPED_ANNOTATIONS}
        out[key] = scrubbed(value)
    if isinstance(out.get("name"), str) and "value" in out and SECRET_NAME.search(out["name"]):
        out["value"] = "[redacted]"
    return out


def _pods_of(cluster: Cluster, subject: Subject, obj: Obj) -> list[Obj]:
    namespace = subject.namespace
    if subject.kind == "Workspace":
        selector: str | None = f"kaito.sh/workspace={subject.name}"
    elif subject.kind in ("Deployment", "StatefulSet"):
        labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None
    elif subject.kind == "ServiceAccount":
        pods = _rest.items(cluster._api, _rest.PODS, namespace)
        return [p for p in pods if (p.get("spec") or {}).get("serviceAccountName") == subject.name][
            :PODS_PER_SUBJECT
        ]
    else:
        return []
    if selector is None:
        return []
    return _rest.items(cluster._api, _rest.PODS, namespace, label_selector=selector)[:PODS_PER_SUBJECT]


def _related(cluster: Cluster, subject: Subject) -> list[Obj]:
    """Objects shown with the subject: a NodePool's NodeClaims."""
    if subject.kind != "NodePool":
        return []
    claims = _rest.typed_items(cluster._api, _rest.NODECLAIMS, None)
    mine = [
        c
        for c in claims
        if ((c.get("metadata") or {}).get("labels") or {}).get(LABEL_NODEPOOL) == subject.name
    ]
    return mine[:NODECLAIMS_PER_POOL]


def _yaml(obj: Obj) -> str:
    return yaml.safe_dump(scrubbed(dict(obj)), sort_keys=False, width=110, allow_unicode=True)


def _pod_line(pod: Obj) -> str:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    node = (pod.get("spec") or {}).get("nodeName") or "-"
    return f"pod {meta.get('namespace')}/{meta.get('name')}: {status.get('phase')} on node {node}, {restarts} restart(s)"


def subject_evidence(cluster: Cluster, subject: Subject, why: str) -> str:
    """The subject's evidence as text: its YAML, related objects, events, its pods and their log tails.
    An object that cannot be read is said so; no error is raised (evidence never fails a check)."""
    header = f"# {subject} as read at {datetime.now(UTC).isoformat(timespec='seconds')} ({why})"
    kind = KINDS.get(subject.kind)
    if kind is None:
        return f"{header}\n(kind {subject.kind} is not read for evidence)\n"
    if not cluster.serves(kind.group, kind.version):
        return f"{header}\n(the cluster serves no {kind.group or 'core'}/{kind.version} API)\n"
    try:
        obj = _rest.get(cluster._api, kind, subject.name, subject.namespace if kind.namespaced else None)
        if obj is None:
            return f"{header}\n(not found: the object does not exist)\n"
        obj = {"apiVersion": kind.group + "/" + kind.version if kind.group else kind.version,
               "kind": subject.kind, **obj}  # fmt: skip
        related = _related(cluster, subject)
        pods = _pods_of(cluster, subject, obj)
        parts = [header, _yaml(obj)]
        for other in related:
            parts.append(
                f"--- {other.get('kind')} {(other.get('metadata') or {}).get('name')}\n{_yaml(other)}"
            )
        parts += [_pod_line(p) for p in pods]
        if subject.kind == "ServiceAccount" and pods:
            # What the identity webhook injected (env, projected token volume) is on the pod, not the account.
            parts.append(f"--- Pod {pods[0]['metadata']['name']}\n{_yaml({'kind': 'Pod', **pods[0]})}")
        parts.append(evidence(cluster, [obj, *related], pods))
    except (ApiException, OSError, ValueError) as exc:
        return f"{header}\n(could not be read: {exc})\n"
    text = "\n".join(parts) + "\n"
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 80] + f"\n… (cut at {MAX_CHARS:,} characters)\n"
    return text


def _stamp(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def pod_start_phases(
    cluster: Cluster, namespace: str, workspace: str, created: str
) -> list[tuple[str, float, float]]:
    """A KAITO Workspace's first pod's start, from its events and conditions, in cluster seconds since the
    Workspace's `created` timestamp: `image pull` (Pulling → Pulled) and `engine start` (container Started →
    pod Ready). Empty when the events are gone (the API server keeps them an hour) or cannot be read."""
    start = _stamp(created)
    if start is None:
        return []
    try:
        pods = _rest.items(
            cluster._api, _rest.PODS, namespace, label_selector=f"kaito.sh/workspace={workspace}"
        )
        if not pods:
            return []
        pod = sorted(pods, key=lambda p: str(p["metadata"]["name"]))[0]
        events = events_about(cluster, pod["metadata"]["name"], namespace, "Pod")
    except (ApiException, OSError, ValueError):
        return []

    def when(reason: str, last: bool) -> datetime | None:
        found = [e for e in events if e.get("reason") == reason]
        if not found:
            return None
        event = found[-1] if last else found[0]
        return _stamp(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp"))

    ready = next(
        (c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None
    )
    ready_at = _stamp(ready.get("lastTransitionTime")) if ready and ready.get("status") == "True" else None
    phases = []
    for label, begin, end in (
        ("image pull (Pulling → Pulled)", when("Pulling", False), when("Pulled", True)),
        ("engine start (container Started → pod Ready)", when("Started", True), ready_at),
    ):
        if begin is not None and end is not None and start <= begin <= end:
            phases.append((label, (begin - start).total_seconds(), (end - start).total_seconds()))
    return phases
