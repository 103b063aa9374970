"""The ReplicaSet controller: keeps `spec.replicas` active pods from the template, reports their status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pytest_aksai.sim._apiserver._errors import ApiError
from pytest_aksai.sim._core._framework import Controller, Obj, Watch, split_key, watch_owned
from pytest_aksai.sim._core._podutil import (
    is_active,
    is_controlled_by,
    is_ready,
    omit_zero,
    owner_reference,
    ready_since,
    selector_string,
)

COMPONENT = "replicaset-controller"


def pod_from_template(
    owner: Obj,
    template: Obj,
    *,
    name: str | None = None,
    generate_name: str | None = None,
    extra_labels: dict[str, str] | None = None,
) -> Obj:
    meta_t = template.get("metadata") or {}
    meta: Obj = {
        "namespace": owner["metadata"]["namespace"],
        "labels": {**(meta_t.get("labels") or {}), **(extra_labels or {})},
        "ownerReferences": [owner_reference(owner)],
    }
    if meta_t.get("annotations"):
        meta["annotations"] = dict(meta_t["annotations"])
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": dict(template.get("spec") or {})}


def available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    since = ready_since(pod)
    if since is None:
        return False
    if min_ready_seconds <= 0:
        return True
    ready_at = datetime.strptime(since[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=now.tzinfo)
    return (now - ready_at).total_seconds() >= min_ready_seconds


def _deletion_rank(pod: Obj) -> tuple[Any, ...]:
    """Which pods go first when scaling down (upstream's ActivePods ordering, simplified)."""
    status = pod.get("status") or {}
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", ""), 0)
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    return (
        bool((pod.get("spec") or {}).get("nodeName")),
        phase_rank,
        is_ready(pod),
        -restarts,
        _negate(pod["metadata"].get("creationTimestamp", "")),
    )


def _negate(stamp: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in stamp)


class ReplicaSetController(Controller):
    name = "replicaset"
    watches = (Watch("apps/v1", "replicasets"), watch_owned("v1", "pods", "ReplicaSet"))

    def owned_pods(self, owner: Obj) -> list[Obj]:
        selector = selector_string((owner.get("spec") or {}).get("selector"))
        pods = self.list("v1", "pods", owner["metadata"]["namespace"], label_selector=selector or None)
        return [p for p in pods if is_controlled_by(p, owner)]

    async def reconcile(self, key: str) -> float | None:
        rs = self.get("apps/v1", "replicasets", key)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return None
        spec = rs.get("spec") or {}
        pods = self.owned_pods(rs)
        active = [p for p in pods if is_active(p)]
        wanted = int(spec.get("replicas", 1))
        pods_rt = self.rt("v1", "pods")
        namespace, name = split_key(key)
        if len(active) < wanted:
            for _ in range(wanted - len(active)):
                pod = pod_from_template(rs, spec.get("template") or {}, generate_name=f"{name}-")
                try:
                    created = self.store.create(pods_rt, pod, namespace=namespace)
                except ApiError as exc:
                    self.event(rs, "Warning", "FailedCreate", f"Error creating: {exc.message}", COMPONENT)
                    raise
                active.append(created)
                self.event(
                    rs, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}", COMPONENT
                )
        elif len(active) > wanted:
            doomed = sorted(active, key=_deletion_rank)[: len(active) - wanted]
            for pod in doomed:
                self.store.delete(pods_rt, pod["metadata"]["name"], namespace)
                self.event(
                    rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", COMPONENT
                )
            gone = {p["metadata"]["uid"] for p in doomed}
            active = [p for p in active if p["metadata"]["uid"] not in gone]
        return self._update_status(rs, active)

    def _update_status(self, rs: Obj, active: list[Obj]) -> float | None:
        spec = rs.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = [p for p in active if is_ready(p)]
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(
                1
                for p in active
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items())
            ),
            "readyReplicas": len(ready),
            "availableReplicas": sum(1 for p in ready if available(p, min_ready, now)),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        old = rs.get("status") or {}
        merged = {
            **{k: v for k, v in old.items() if k == "conditions"},
            **omit_zero(status, keep=("replicas",)),
        }
        if merged != old:
            rs["status"] = merged
            self.store.update_status(self.rt("apps/v1", "replicasets"), rs)
        if min_ready and status["availableReplicas"] < status["readyReplicas"]:
            return float(min_ready)
        return None
