"""The scheduler: binds pending pods of `default-scheduler` to a node that passes every filter."""

from __future__ import annotations

from typing import Any

from pytest_aksai.sim._core._framework import Controller, Obj, Watch, object_key
from pytest_aksai.sim._core._nodes import TAINT_NOT_READY
from pytest_aksai.sim._core._podutil import is_terminal, set_condition
from pytest_aksai.sim._core._predicates import NodeVerdict, filter_node, fit_error_message, score_node

SCHEDULER_NAME = "default-scheduler"
RETRY_UNSCHEDULABLE = 300.0
"""Cluster seconds after which an unschedulable pod is retried even without a cluster change (upstream's
podMaxInUnschedulablePodsDuration)."""


def _pod_event(self: SchedulerController, event_type: str, pod: Obj) -> list[str]:
    spec = pod.get("spec") or {}
    key = object_key(pod)
    if not spec.get("nodeName"):
        if event_type == "DELETED":
            self.unschedulable.discard(key)
            return []
        return [key]
    if event_type == "DELETED" or is_terminal(pod):
        return self._retry_unschedulable()  # capacity freed
    return []


def _node_event(self: SchedulerController, _event_type: str, _node: Obj) -> list[str]:
    return self._retry_unschedulable()


def _as_registered(node: Obj) -> Obj:
    """A Node the kubelet has not registered yet (no Ready condition) counts as carrying the not-ready taint
    the kubelet registers it with, so a pod never lands on a node between its creation and registration."""
    if any(c.get("type") == "Ready" for c in (node.get("status") or {}).get("conditions") or []):
        return node
    spec = node.setdefault("spec", {})
    spec["taints"] = [*(spec.get("taints") or []), {"key": TAINT_NOT_READY, "effect": "NoSchedule"}]
    return node


class SchedulerController(Controller):
    name = "scheduler"
    watches = (Watch("v1", "pods", _pod_event), Watch("v1", "nodes", _node_event))

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.unschedulable: set[str] = set()

    def _retry_unschedulable(self) -> list[str]:
        return sorted(self.unschedulable)

    async def reconcile(self, key: str) -> float | None:
        pod = self.get("v1", "pods", key)
        spec = (pod or {}).get("spec") or {}
        if (
            pod is None
            or spec.get("nodeName")
            or pod["metadata"].get("deletionTimestamp")
            or is_terminal(pod)
        ):
            self.unschedulable.discard(key)
            return None
        if (spec.get("schedulerName") or SCHEDULER_NAME) != SCHEDULER_NAME:
            return None
        nodes = sorted(
            (_as_registered(n) for n in self.list("v1", "nodes")), key=lambda n: n["metadata"]["name"]
        )
        by_node: dict[str, list[Obj]] = {}
        for other in self.list("v1", "pods"):
            node_name = (other.get("spec") or {}).get("nodeName")
            if node_name and not is_terminal(other):
                by_node.setdefault(node_name, []).append(other)
        verdicts: list[NodeVerdict] = []
        feasible: list[tuple[float, str]] = []
        for node in nodes:
            name = node["metadata"]["name"]
            verdict = filter_node(pod, node, by_node.get(name, []))
            verdicts.append(verdict)
            if verdict.fits:
                feasible.append((score_node(pod, node, by_node.get(name, [])), name))
        if not feasible:
            self.unschedulable.add(key)
            self._mark_unschedulable(pod, fit_error_message(verdicts))
            return RETRY_UNSCHEDULABLE
        self.unschedulable.discard(key)
        best = min(feasible, key=lambda item: (-item[0], item[1]))[1]
        self._bind(pod, best)
        return None

    def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        status = pod.setdefault("status", {})
        conditions = status.setdefault("conditions", [])
        changed = set_condition(
            conditions,
            "PodScheduled",
            "False",
            self.clock.timestamp(),
            "Unschedulable",
            message,
            probe_time=True,
        )
        if changed:
            self.store.update_status(self.rt("v1", "pods"), pod)
            self.event(pod, "Warning", "FailedScheduling", message, SCHEDULER_NAME)

    def _bind(self, pod: Obj, node_name: str) -> None:
        pods = self.rt("v1", "pods")
        pod["spec"]["nodeName"] = node_name
        bound = self.store.update(pods, pod)
        status = bound.setdefault("status", {})
        set_condition(
            status.setdefault("conditions", []),
            "PodScheduled",
            "True",
            self.clock.timestamp(),
            probe_time=True,
        )
        self.store.update_status(pods, bound)
        meta = pod["metadata"]
        self.event(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node_name}",
            SCHEDULER_NAME,
        )
