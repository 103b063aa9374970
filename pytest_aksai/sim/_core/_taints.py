"""The taint eviction controller (kube-controller-manager's `taint-eviction-controller`): a NoExecute taint on a
node evicts the pods bound there that do not tolerate it — at once when no toleration matches, after the
smallest `tolerationSeconds` when the matching tolerations bound it — with upstream's `TaintManagerEviction`
event. The node lifecycle's own `node.kubernetes.io/unreachable` and `not-ready` taints are handled with the
node's heartbeats in `_nodes.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pytest_aksai.sim._core._framework import Controller, Obj, Watch
from pytest_aksai.sim._core._predicates import tolerates

NODE_LIFECYCLE_TAINTS = frozenset({"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"})


def _node_of_pod(_self: Any, _event_type: str, pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [str(node)] if node else []


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


class TaintEvictionController(Controller):
    name = "taint-eviction"
    watches = (Watch("v1", "nodes"), Watch("v1", "pods", _node_of_pod))

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._first_seen: dict[tuple[str, str, str], datetime] = {}

    async def reconcile(self, key: str) -> float | None:
        node = self.get("v1", "nodes", key)
        if node is None:
            return None
        taints = [
            t
            for t in (node.get("spec") or {}).get("taints") or []
            if t.get("effect") == "NoExecute" and t.get("key") not in NODE_LIFECYCLE_TAINTS
        ]
        if not taints:
            return None
        now = self.clock.now()
        pods_rt = self.rt("v1", "pods")
        next_check: float | None = None
        for pod in self.store.list(pods_rt, field_selector=f"spec.nodeName={key}"):
            meta = pod["metadata"]
            if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in (
                "Succeeded",
                "Failed",
            ):
                continue
            tolerations = (pod.get("spec") or {}).get("tolerations") or []
            allowed: float | None = None  # None: tolerated for ever
            evict_now = False
            for taint in taints:
                matching = [t for t in tolerations if tolerates([t], taint)]
                if not matching:
                    evict_now = True
                    break
                bounded = [
                    float(t["tolerationSeconds"]) for t in matching if t.get("tolerationSeconds") is not None
                ]
                if bounded and len(bounded) == len(matching):
                    since_key = (key, str(taint.get("key")), str(taint.get("value") or ""))
                    added = _parse(taint["timeAdded"]) if taint.get("timeAdded") else None
                    start = added or self._first_seen.setdefault(since_key, now)
                    left = min(bounded) - (now - start).total_seconds()
                    allowed = left if allowed is None else min(allowed, left)
            if evict_now or (allowed is not None and allowed <= 0):
                self.event(
                    pod,
                    "Normal",
                    "TaintManagerEviction",
                    f"Marking for deletion Pod {meta['namespace']}/{meta['name']}",
                    "taint-eviction-controller",
                )
                self.store.delete(pods_rt, meta["name"], meta["namespace"])
            elif allowed is not None:
                next_check = allowed + 0.5 if next_check is None else min(next_check, allowed + 0.5)
        return next_check
