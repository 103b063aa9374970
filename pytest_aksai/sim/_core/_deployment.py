"""The Deployment controller: one ReplicaSet per pod template (named `<deployment>-<pod-template-hash>`),
rolling updates within maxSurge/maxUnavailable (or Recreate), revision annotations, status and the
Available/Progressing conditions with upstream reasons and messages."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pytest_aksai.sim._core._framework import Controller, Obj, Watch, split_key, watch_owned
from pytest_aksai.sim._core._podutil import (
    is_active,
    is_controlled_by,
    omit_zero,
    owner_reference,
    set_condition,
    template_hash,
)

COMPONENT = "deployment-controller"
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"


def _resolve(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def surge_and_unavailable(deployment: Obj) -> tuple[int, int]:
    spec = deployment.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = _resolve(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _strip_hash(template: Obj) -> Obj:
    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != HASH_LABEL}
    meta["labels"] = labels
    stripped: Obj = _without_nulls({**template, "metadata": meta})
    return stripped


def _without_nulls(value: Any) -> Any:
    """Null and absent are one value to the Go types (`rollout undo` sends `creationTimestamp: null`)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _same_template(a: Obj, b: Obj) -> bool:
    return _strip_hash(a) == _strip_hash(b)


def _spec_replicas(rs: Obj) -> int:
    return int((rs.get("spec") or {}).get("replicas", 0))


def _status(rs: Obj, field: str) -> int:
    return int((rs.get("status") or {}).get(field, 0))


class DeploymentController(Controller):
    name = "deployment"
    watches = (Watch("apps/v1", "deployments"), watch_owned("apps/v1", "replicasets", "Deployment"))

    async def reconcile(self, key: str) -> float | None:
        deployment = self.get("apps/v1", "deployments", key)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return None
        namespace, _ = split_key(key)
        all_rs = [
            rs for rs in self.list("apps/v1", "replicasets", namespace) if is_controlled_by(rs, deployment)
        ]
        spec = deployment.get("spec") or {}
        template = spec.get("template") or {}
        new_rs = next(
            (rs for rs in all_rs if _same_template((rs.get("spec") or {}).get("template") or {}, template)),
            None,
        )
        old_rs = [rs for rs in all_rs if rs is not new_rs]
        if not spec.get("paused"):
            if new_rs is None:
                new_rs = self._create_new_rs(deployment, old_rs)
            else:
                self._sync_revision(deployment, new_rs, old_rs)
            if (spec.get("strategy") or {}).get("type") == "Recreate":
                self._recreate(deployment, new_rs, old_rs)
            else:
                self._rolling(deployment, new_rs, old_rs)
            self._cleanup(deployment, old_rs)
        return self._update_status(deployment, new_rs, old_rs)

    # ---- replica sets --------------------------------------------------------------------------------
    def _create_new_rs(self, deployment: Obj, old_rs: list[Obj]) -> Obj:
        spec = deployment["spec"]
        collisions = int((deployment.get("status") or {}).get("collisionCount", 0))
        pod_hash = template_hash(spec.get("template") or {}, collisions)
        name = f"{deployment['metadata']['name']}-{pod_hash}"
        template = _strip_hash(spec.get("template") or {})
        template["metadata"]["labels"][HASH_LABEL] = pod_hash
        selector = dict(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
        revision = (
            max((int((rs["metadata"].get("annotations") or {}).get(REVISION, 0)) for rs in old_rs), default=0)
            + 1
        )
        surge, _ = surge_and_unavailable(deployment)
        replicas = int(spec.get("replicas", 1))
        rs: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": deployment["metadata"]["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    REVISION: str(revision),
                    DESIRED: str(replicas),
                    MAX_REPLICAS: str(replicas + surge),
                },
                "ownerReferences": [owner_reference(deployment)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
            "status": {"replicas": 0},
        }
        created = self.store.create(self.rt("apps/v1", "replicasets"), rs)
        self._annotate_revision(deployment, revision)
        status = deployment.setdefault("status", {})
        self._condition(
            status.setdefault("conditions", []),
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            f'Created new replica set "{name}"',
        )
        return created

    def _sync_revision(self, deployment: Obj, new_rs: Obj, old_rs: list[Obj]) -> None:
        annotations = new_rs["metadata"].get("annotations") or {}
        current = int(annotations.get(REVISION, 0))
        highest_old = max(
            (int((rs["metadata"].get("annotations") or {}).get(REVISION, 0)) for rs in old_rs), default=0
        )
        if current <= highest_old:  # a rollback to an older template makes it the newest revision
            current = highest_old + 1
            new_rs["metadata"].setdefault("annotations", {})[REVISION] = str(current)
            new_rs.update(self.store.update(self.rt("apps/v1", "replicasets"), new_rs))
        self._annotate_revision(deployment, current)

    def _annotate_revision(self, deployment: Obj, revision: int) -> None:
        annotations = deployment["metadata"].setdefault("annotations", {})
        if annotations.get(REVISION) != str(revision):
            annotations[REVISION] = str(revision)
            updated = self.store.update(self.rt("apps/v1", "deployments"), deployment)
            deployment["metadata"] = updated["metadata"]

    def _scale(self, deployment: Obj, rs: Obj, replicas: int) -> None:
        old = _spec_replicas(rs)
        if old == replicas:
            return
        rs["spec"]["replicas"] = replicas
        annotations = rs["metadata"].setdefault("annotations", {})
        surge, _ = surge_and_unavailable(deployment)
        desired = int(deployment["spec"].get("replicas", 1))
        annotations[DESIRED] = str(desired)
        annotations[MAX_REPLICAS] = str(desired + surge)
        rs.update(self.store.update(self.rt("apps/v1", "replicasets"), rs))
        direction = "up" if replicas > old else "down"
        self.event(
            deployment,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} to {replicas} from {old}",
            COMPONENT,
        )

    def _recreate(self, deployment: Obj, new_rs: Obj, old_rs: list[Obj]) -> None:
        for rs in old_rs:
            self._scale(deployment, rs, 0)
        if any(_status(rs, "replicas") for rs in old_rs) or self._old_pods_running(deployment, old_rs):
            return
        self._scale(deployment, new_rs, int(deployment["spec"].get("replicas", 1)))

    def _old_pods_running(self, deployment: Obj, old_rs: list[Obj]) -> bool:
        namespace = deployment["metadata"]["namespace"]
        uids = {rs["metadata"]["uid"] for rs in old_rs}
        return any(
            is_active(p)
            for p in self.list("v1", "pods", namespace)
            if any(ref.get("uid") in uids for ref in p["metadata"].get("ownerReferences") or [])
        )

    def _rolling(self, deployment: Obj, new_rs: Obj, old_rs: list[Obj]) -> None:
        replicas = int(deployment["spec"].get("replicas", 1))
        surge, max_unavailable = surge_and_unavailable(deployment)
        # Scale up the new ReplicaSet as far as maxSurge allows.
        total = _spec_replicas(new_rs) + sum(_spec_replicas(rs) for rs in old_rs)
        if not old_rs or _spec_replicas(new_rs) > replicas:
            self._scale(deployment, new_rs, replicas)
        else:
            room = max(replicas + surge - total, 0)
            self._scale(deployment, new_rs, min(replicas, _spec_replicas(new_rs) + room))
        # Scale down old ReplicaSets as far as maxUnavailable allows: unhealthy replicas first, then the
        # available ones above minAvailable (upstream's reconcileOldReplicaSets).
        min_available = replicas - max_unavailable
        all_pods = _spec_replicas(new_rs) + sum(_spec_replicas(rs) for rs in old_rs)
        budget = all_pods - min_available - (_spec_replicas(new_rs) - _status(new_rs, "availableReplicas"))
        if budget <= 0:
            return
        oldest_first = sorted(old_rs, key=lambda r: r["metadata"].get("creationTimestamp", ""))
        for rs in oldest_first:
            unhealthy = _spec_replicas(rs) - _status(rs, "availableReplicas")
            drop = min(max(unhealthy, 0), budget)
            if drop > 0:
                self._scale(deployment, rs, _spec_replicas(rs) - drop)
                budget -= drop
        available = _status(new_rs, "availableReplicas") + sum(
            _status(rs, "availableReplicas") for rs in old_rs
        )
        excess = min(available - min_available, budget)
        for rs in oldest_first:
            drop = min(_spec_replicas(rs), excess)
            if drop > 0:
                self._scale(deployment, rs, _spec_replicas(rs) - drop)
                excess -= drop

    def _cleanup(self, deployment: Obj, old_rs: list[Obj]) -> None:
        limit = int((deployment.get("spec") or {}).get("revisionHistoryLimit", 10))
        idle = [rs for rs in old_rs if _spec_replicas(rs) == 0 and _status(rs, "replicas") == 0]
        idle.sort(key=lambda rs: int((rs["metadata"].get("annotations") or {}).get(REVISION, 0)))
        for rs in idle[: max(len(idle) - limit, 0)]:
            self.store.delete(
                self.rt("apps/v1", "replicasets"), rs["metadata"]["name"], rs["metadata"]["namespace"]
            )

    # ---- status --------------------------------------------------------------------------------------
    def _update_status(self, deployment: Obj, new_rs: Obj | None, old_rs: list[Obj]) -> float | None:
        spec = deployment.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        all_rs = ([new_rs] if new_rs else []) + old_rs
        total = sum(_status(rs, "replicas") for rs in all_rs)
        updated = _status(new_rs, "replicas") if new_rs else 0
        ready = sum(_status(rs, "readyReplicas") for rs in all_rs)
        available = sum(_status(rs, "availableReplicas") for rs in all_rs)
        _, max_unavailable = surge_and_unavailable(deployment)
        status = deployment.setdefault("status", {})
        conditions: list[Obj] = status.setdefault("conditions", [])
        if available >= replicas - max_unavailable:
            self._condition(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        else:
            self._condition(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        counts = omit_zero(
            {
                "observedGeneration": deployment["metadata"].get("generation", 1),
                "replicas": total,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": available,
                "unavailableReplicas": max(replicas - available, 0),
            }
        )
        requeue: float | None = None
        if new_rs is not None and not spec.get("paused"):
            name = new_rs["metadata"]["name"]
            progressing = next((c for c in conditions if c.get("type") == "Progressing"), None)
            deadline = float(spec.get("progressDeadlineSeconds", 600))
            progressed = {k: status.get(k) for k in counts} != counts
            if updated == replicas and available == replicas and total == replicas:
                self._condition(
                    conditions,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{name}" has successfully progressed.',
                )
            elif progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
                pass
            elif progressed or progressing is None:
                self._condition(
                    conditions,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{name}" is progressing.',
                    touch=True,
                )
                requeue = deadline
            elif self._stalled(progressing, deadline):
                self._condition(
                    conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{name}" has timed out progressing.',
                )
            else:
                requeue = deadline
        conditions.sort(key=lambda c: {"Available": 0, "Progressing": 1}.get(c.get("type", ""), 2))
        fresh = {**{k: v for k, v in status.items() if k in ("conditions", "collisionCount")}, **counts}
        current = self.get(
            "apps/v1",
            "deployments",
            f"{deployment['metadata']['namespace']}/{deployment['metadata']['name']}",
        )
        if current is not None and current.get("status") != fresh:
            current["status"] = fresh
            self.store.update_status(self.rt("apps/v1", "deployments"), current)
        return requeue

    def _condition(
        self,
        conditions: list[Obj],
        type_: str,
        status: str,
        reason: str,
        message: str,
        *,
        touch: bool = False,
    ) -> None:
        stamp = self.clock.timestamp()
        if set_condition(conditions, type_, status, stamp, reason, message) or touch:
            for cond in conditions:
                if cond.get("type") == type_:
                    cond["lastUpdateTime"] = stamp

    def _stalled(self, progressing: Obj, deadline: float) -> bool:
        stamp = progressing.get("lastUpdateTime") or progressing.get("lastTransitionTime")
        if not stamp:
            return False
        updated = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
        now = self.clock.now().replace(tzinfo=None)
        return (now - updated).total_seconds() > deadline
