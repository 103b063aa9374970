"""Karpenter's disruption controller: emptiness consolidation and expiration, for any NodePool's nodes.

As kubernetes-sigs/karpenter `pkg/controllers/disruption/`: every `POLL_SECONDS` (10 s) the controller
looks for candidates — NodeClaims of a NodePool with `consolidateAfter` set, `Consolidatable=True`,
Initialized, not being deleted, whose node runs no pod but DaemonSet pods — and drops the ones
`karpenter.sh/do-not-disrupt` protects (`"true"` on the NodeClaim or its Node; on a running pod of the node —
DaemonSet pods too — `"true"` or a duration counted from the pod's start, as upstream since v1.12), publishing
`DisruptionBlocked` events (and, for pods, `DoNotDisruptUntil` / `DoNotDisruptGracePeriodElapsed` /
`InvalidDoNotDisruptAnnotation`). A disruption budget (`spec.disruption.budgets`, default `nodes: 10%`, rounded up; the most
restrictive one that applies to reason `Empty` wins) caps how many of a NodePool's nodes may be disrupting
at once. A command is re-validated after `VALIDATION_SECONDS` (15 s): still empty and consolidatable, the
node is tainted `karpenter.sh/disrupted:NoSchedule`, `DisruptionTerminating` events are published and the
NodeClaim is deleted (the lifecycle controller drains it and deletes Node and VM). NodeClaims older than
the NodePool's `expireAfter` (default 720h) are deleted whatever protects them, as upstream. Budget
`schedule`/`duration` windows are not simulated (a budget with a schedule is treated as always active).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pytest_aksai.sim._core._framework import Controller, Obj, Watch
from pytest_aksai.sim._core._podutil import is_terminal
from pytest_aksai.sim.contract import Fault
from pytest_aksai.sizing import do_not_disrupt_grace

POLL_SECONDS = 10.0
VALIDATION_SECONDS = 15.0
DEFAULT_EXPIRE_AFTER = "720h"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
LABEL_NODEPOOL = "karpenter.sh/nodepool"
API = "karpenter.sh/v1"
_KEY = "disruption"
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_time(stamp: str) -> datetime:
    return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def duration_seconds(text: object) -> float | None:
    """A Go duration (`2m`, `1h30m`, `0s`) in seconds; None for `Never` or anything unparsable."""
    value = str(text).strip()
    if not value or value == "Never":
        return None
    match = _DURATION.match(value)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def consolidate_after(pool: Mapping[str, Any]) -> float | None:
    disruption = (pool.get("spec") or {}).get("disruption") or {}
    return duration_seconds(disruption.get("consolidateAfter", "0s"))


def expire_after(pool: Mapping[str, Any]) -> float | None:
    template = ((pool.get("spec") or {}).get("template") or {}).get("spec") or {}
    return duration_seconds(template.get("expireAfter", DEFAULT_EXPIRE_AFTER))


def allowed_disruptions(pool: Mapping[str, Any], nodes: int, reason: str = "Empty") -> int:
    budgets = ((pool.get("spec") or {}).get("disruption") or {}).get("budgets") or [{"nodes": "10%"}]
    allowed = nodes
    for budget in budgets:
        reasons = budget.get("reasons")
        if reasons and reason not in reasons:
            continue
        value = str(budget.get("nodes", "10%"))
        count = math.ceil(nodes * float(value[:-1]) / 100) if value.endswith("%") else int(value)
        allowed = min(allowed, count)
    return max(allowed, 0)


def do_not_disrupt_active(pod: Mapping[str, Any], now: datetime) -> bool:
    """The pod's `karpenter.sh/do-not-disrupt` protects it now (upstream `IsDoNotDisruptActive`): `"true"`, or
    a duration not yet elapsed since `status.startTime` (no start time: protected); invalid values do not."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(DO_NOT_DISRUPT)
    if value is None:
        return False
    try:
        grace = do_not_disrupt_grace(value)
    except ValueError:
        return False
    started = (pod.get("status") or {}).get("startTime")
    return not (started and math.isfinite(grace)) or now.timestamp() < parse_time(started).timestamp() + grace


def _is_daemon(pod: Mapping[str, Any]) -> bool:
    return any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences") or [])


def _true(obj: Mapping[str, Any], type_: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


class DisruptionController(Controller):
    name = "disruption"
    watches = (
        Watch(API, "nodepools", lambda _s, _t, _o: [_KEY]),
        Watch(API, "nodeclaims", lambda _s, _t, _o: [_KEY]),
    )

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._pending: dict[str, tuple[str, float]] = {}
        """Candidate claim → (its uid, cluster seconds when the command was computed)."""
        self._blocked: set[str] = set()

    async def reconcile(self, key: str) -> float | None:
        now = self.clock.elapsed()
        claims = self.list(API, "nodeclaims")
        pools = {p["metadata"]["name"]: p for p in self.list(API, "nodepools")}
        next_expiry = self._expire(claims, pools)
        candidates = [
            c
            for c in sorted(claims, key=lambda c: c["metadata"]["name"])
            if (c["metadata"].get("labels") or {}).get(LABEL_NODEPOOL, "") in pools
            and not c["metadata"].get("deletionTimestamp")
            and _true(c, "Initialized")
            and _true(c, "Consolidatable")
        ]
        if self.ctx.faults.is_active(Fault.NAP_NO_CONSOLIDATION) or not candidates:
            # Nothing to consolidate: wait for a NodeClaim to change (or the next expiry) instead of polling.
            self._pending.clear()
            return next_expiry
        deleting: dict[str, int] = {}
        members: dict[str, int] = {}
        for claim in claims:
            pool_name = (claim["metadata"].get("labels") or {}).get(LABEL_NODEPOOL, "")
            members[pool_name] = members.get(pool_name, 0) + 1
            if claim["metadata"].get("deletionTimestamp"):
                deleting[pool_name] = deleting.get(pool_name, 0) + 1
        seen: set[str] = set()
        for claim in candidates:
            name = claim["metadata"]["name"]
            pool_name = (claim["metadata"].get("labels") or {}).get(LABEL_NODEPOOL, "")
            pool = pools[pool_name]
            node_name = (claim.get("status") or {}).get("nodeName") or ""
            node = self.get("v1", "nodes", node_name)
            if self._protected(claim, node) or self._pod_protected(claim, node, node_name):
                continue
            if self._busy(node_name):
                continue  # not empty: underutilized consolidation (replacing nodes) is not simulated
            allowed = allowed_disruptions(pool, members.get(pool_name, 0)) - deleting.get(pool_name, 0)
            if allowed <= 0:
                self.event(
                    pool,
                    "Normal",
                    "DisruptionBlocked",
                    "No allowed disruptions for disruption reason Empty due to blocking budget",
                    "karpenter",
                )
                continue
            seen.add(name)
            uid, since = self._pending.get(name, ("", now))
            if uid != claim["metadata"]["uid"]:
                self._pending[name] = (claim["metadata"]["uid"], now)
                continue
            if now - since < VALIDATION_SECONDS:
                continue
            self._disrupt(claim, node)
            deleting[pool_name] = deleting.get(pool_name, 0) + 1
            seen.discard(name)
        self._pending = {k: v for k, v in self._pending.items() if k in seen}
        soonest = min(
            (VALIDATION_SECONDS - (now - since) for _, since in self._pending.values()), default=POLL_SECONDS
        )
        return max(min(POLL_SECONDS, soonest), 0.1)

    def _busy(self, node_name: str) -> bool:
        return any(
            not is_terminal(pod) and not _is_daemon(pod)
            for pod in self.list("v1", "pods", field_selector=f"spec.nodeName={node_name}")
        )

    def _protected(self, claim: Obj, node: Obj | None) -> bool:
        for obj, kind in ((claim, "NodeClaim"), (node, "Node")):
            if obj is not None and (obj["metadata"].get("annotations") or {}).get(DO_NOT_DISRUPT) == "true":
                key = f"{kind}/{obj['metadata']['name']}"
                if key not in self._blocked:
                    self._blocked.add(key)
                    self.event(
                        obj,
                        "Normal",
                        "DisruptionBlocked",
                        f'Disruption is blocked through the "{DO_NOT_DISRUPT}" annotation',
                        "karpenter",
                    )
                return True
        return False

    def _pod_protected(self, claim: Obj, node: Obj | None, node_name: str) -> bool:
        """A running pod of the node whose `karpenter.sh/do-not-disrupt` still holds (upstream's
        `ValidatePodsDisruptable`): `"true"`, or a duration not yet elapsed since the pod's `status.startTime`."""
        now = self.clock.now()
        for pod in self.list("v1", "pods", field_selector=f"spec.nodeName={node_name}"):
            meta = pod["metadata"]
            value = (meta.get("annotations") or {}).get(DO_NOT_DISRUPT)
            if value is None or is_terminal(pod) or meta.get("deletionTimestamp"):
                continue
            uid = meta.get("uid", "")
            try:
                grace = do_not_disrupt_grace(value)
            except ValueError as exc:
                self._once(
                    f"invalid/{uid}/{value}",
                    pod,
                    "Warning",
                    "InvalidDoNotDisruptAnnotation",
                    f"Invalid {DO_NOT_DISRUPT} annotation: {exc}, ignoring annotation",
                )
                continue
            started = (pod.get("status") or {}).get("startTime")
            if started and math.isfinite(grace):
                until = parse_time(started).timestamp() + grace
                if now.timestamp() >= until:
                    self._once(
                        f"elapsed/{uid}",
                        pod,
                        "Normal",
                        "DoNotDisruptGracePeriodElapsed",
                        f"The {DO_NOT_DISRUPT} grace period has elapsed, pod is now disruptable",
                    )
                    continue
                stamp = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                self._once(
                    f"until/{uid}/{stamp}",
                    pod,
                    "Normal",
                    "DoNotDisruptUntil",
                    f"The {DO_NOT_DISRUPT} grace period will elapse at {stamp}",
                )
            message = f'Pod has "{DO_NOT_DISRUPT}" annotation (Pod={meta["namespace"]}/{meta["name"]})'
            for obj in (node, claim):
                if obj is not None:
                    self._once(
                        f"blocked/{obj['metadata'].get('uid')}/{uid}",
                        obj,
                        "Normal",
                        "DisruptionBlocked",
                        message,
                    )
            return True
        return False

    def _once(self, key: str, obj: Obj, type_: str, reason: str, message: str) -> None:
        if key not in self._blocked:
            self._blocked.add(key)
            self.event(obj, type_, reason, message, "karpenter")

    def _disrupt(self, claim: Obj, node: Obj | None, reason: str = "Empty") -> None:
        if node is not None:
            taints = (node.get("spec") or {}).get("taints") or []
            if not any(t.get("key") == "karpenter.sh/disrupted" for t in taints):
                node["spec"]["taints"] = [*taints, {"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]
                node = self.store.update(self.rt("v1", "nodes"), node)
            self.event(node, "Normal", "DisruptionTerminating", f"Disrupting Node: {reason}", "karpenter")
        self.event(claim, "Normal", "DisruptionTerminating", f"Disrupting NodeClaim: {reason}", "karpenter")
        self.store.delete(self.rt(API, "nodeclaims"), claim["metadata"]["name"])

    def _expire(self, claims: list[Obj], pools: Mapping[str, Obj]) -> float | None:
        """Delete the NodeClaims past their NodePool's expireAfter; cluster seconds until the next one expires."""
        now = self.clock.now()
        soonest: float | None = None
        for claim in claims:
            pool = pools.get((claim["metadata"].get("labels") or {}).get(LABEL_NODEPOOL, ""))
            if pool is None or claim["metadata"].get("deletionTimestamp"):
                continue
            limit = expire_after(pool)
            created = claim["metadata"].get("creationTimestamp")
            if limit is None or not created:
                continue
            left = limit - (now - parse_time(created)).total_seconds()
            if left <= 0:
                node = self.get("v1", "nodes", (claim.get("status") or {}).get("nodeName") or "")
                self._disrupt(claim, node, "Expired")
            else:
                soonest = left if soonest is None else min(soonest, left)
        return soonest
