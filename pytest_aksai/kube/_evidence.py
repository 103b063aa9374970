"""Evidence for a failed check: the events and pod-log tails of the objects involved (redaction is the caller's)."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._rest import Obj
from pytest_aksai.kube._wait import events_about

LOG_TAIL_LINES = 20
EVENTS_PER_OBJECT = 10


def _events(cluster: Cluster, obj: Obj) -> list[str]:
    meta = obj.get("metadata") or {}
    events = events_about(
        cluster, str(meta.get("name")), meta.get("namespace") or "default", obj.get("kind", "")
    )
    return [
        f"{e.get('lastTimestamp') or e.get('eventTime') or ''} {e.get('type', 'Normal')} {e.get('reason')}: "
        f"{e.get('message')}".strip()
        for e in events[-EVENTS_PER_OBJECT:]
    ]


def _log_tail(cluster: Cluster, pod: Obj) -> list[str]:
    meta = pod["metadata"]
    lines: list[str] = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/log"
        try:
            text = _rest.raw_text(
                cluster._api, path, query={"container": container["name"], "tailLines": LOG_TAIL_LINES}
            )
        except ApiException as exc:
            text = f"(no log: {exc.status} {exc.reason})"
        lines.append(
            f"--- log of pod {meta['name']} container {container['name']} (last {LOG_TAIL_LINES} lines)"
        )
        lines.extend(text.rstrip("\n").splitlines() or ["(empty)"])
    return lines


def evidence(cluster: Cluster, objects: list[Obj], pods: list[Obj]) -> str:
    """Events of each object and pod, then each pod's log tail, as plain text."""
    lines: list[str] = []
    for obj in [*objects, *pods]:
        meta = obj.get("metadata") or {}
        where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
        events = _events(cluster, obj)
        lines.append(f"events of {obj.get('kind', 'object')} {where}{meta.get('name')}:")
        lines.extend(f"  {line}" for line in events or ["(none)"])
    for pod in pods:
        lines.extend(_log_tail(cluster, pod))
    return "\n".join(lines)
