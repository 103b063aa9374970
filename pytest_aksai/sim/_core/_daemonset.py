"""The DaemonSet controller: one pod per eligible node (nodeSelector, required node affinity, taints against
the pod's tolerations plus the ones upstream adds to daemon pods), pinned with a `metadata.name` node-affinity
term that the scheduler honours, replaced on template change (RollingUpdate, one node at a time within
maxUnavailable 1), and the DaemonSet status counters."""

from __future__ import annotations

from typing import Any

from pytest_aksai.sim._core._framework import (
    Controller,
    Obj,
    Watch,
    object_key,
    split_key,
    watch_owned,
)
from pytest_aksai.sim._core._history import clean_template, sync_revisions
from pytest_aksai.sim._core._podutil import is_active, is_controlled_by, is_ready, template_hash
from pytest_aksai.sim._core._predicates import matches_node_affinity, tolerates
from pytest_aksai.sim._core._replicaset import pod_from_template

COMPONENT = "daemonset-controller"
REVISION_LABEL = "controller-revision-hash"

_DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def _all_daemonsets(self: DaemonSetController, _event_type: str, _node: Obj) -> list[str]:
    return [object_key(ds) for ds in self.list("apps/v1", "daemonsets")]


def _pinned(template_spec: Obj, node_name: str) -> Obj:
    """The pod spec with its required node affinity narrowed to one node (as upstream daemon pods are)."""
    spec = dict(template_spec)
    affinity = dict(spec.get("affinity") or {})
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    pin = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = [{**t, "matchFields": pin["matchFields"]} for t in required.get("nodeSelectorTerms") or []] or [
        pin
    ]
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}
    affinity["nodeAffinity"] = node_affinity
    spec["affinity"] = affinity
    tolerations = list(spec.get("tolerations") or [])
    for toleration in _DAEMON_TOLERATIONS:
        if not any(
            t.get("key") == toleration["key"] and t.get("effect") == toleration["effect"] for t in tolerations
        ):
            tolerations.append(dict(toleration))
    spec["tolerations"] = tolerations
    return spec


def eligible(template_spec: Obj, node: Obj) -> bool:
    pod = {"spec": _pinned(template_spec, node["metadata"]["name"])}
    if not matches_node_affinity(pod, node):
        return False
    return all(
        tolerates(pod["spec"]["tolerations"], taint)
        for taint in (node.get("spec") or {}).get("taints") or []
        if taint.get("effect") in ("NoSchedule", "NoExecute")
    )


class DaemonSetController(Controller):
    name = "daemonset"
    watches = (
        Watch("apps/v1", "daemonsets"),
        watch_owned("v1", "pods", "DaemonSet"),
        Watch("v1", "nodes", _all_daemonsets),
    )

    async def reconcile(self, key: str) -> float | None:
        ds = self.get("apps/v1", "daemonsets", key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return None
        namespace, name = split_key(key)
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        revision = template_hash(clean_template(template))
        pods_rt = self.rt("v1", "pods")
        pods = [p for p in self.list("v1", "pods", namespace) if is_controlled_by(p, ds) and is_active(p)]
        sync_revisions(
            self, ds, revision, {str((p["metadata"].get("labels") or {}).get(REVISION_LABEL)) for p in pods}
        )
        by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            by_node.setdefault(self._target(pod), []).append(pod)
        nodes = {n["metadata"]["name"]: n for n in self.list("v1", "nodes")}
        wanted = {n for n, node in nodes.items() if eligible(template.get("spec") or {}, node)}
        for node_name in sorted(wanted - set(by_node)):
            pod = pod_from_template(
                ds,
                template,
                generate_name=f"{name}-",
                extra_labels={
                    REVISION_LABEL: revision,
                    "pod-template-generation": str(ds["metadata"].get("generation", 1)),
                },
            )
            pod["spec"] = _pinned(pod["spec"], node_name)
            created = self.store.create(pods_rt, pod)
            self.event(
                ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}", COMPONENT
            )
        for node_name, node_pods in by_node.items():
            surplus = node_pods[1:] if node_name in wanted else node_pods
            for pod in surplus:
                self.store.delete(pods_rt, pod["metadata"]["name"], namespace)
                self.event(
                    ds, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", COMPONENT
                )
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
            outdated = [
                p
                for n, ps in sorted(by_node.items())
                if n in wanted
                for p in ps[:1]
                if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision
            ]
            if outdated and all(is_ready(p) for ps in by_node.values() for p in ps[:1]):
                pod = outdated[0]
                self.store.delete(pods_rt, pod["metadata"]["name"], namespace)
                self.event(
                    ds, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", COMPONENT
                )
        self._update_status(ds, wanted, revision)
        return None

    @staticmethod
    def _target(pod: Obj) -> str:
        if (pod.get("spec") or {}).get("nodeName"):
            return str(pod["spec"]["nodeName"])
        terms = (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution", {}
        ).get("nodeSelectorTerms") or [{}]
        for field in terms[0].get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("values"):
                return str(field["values"][0])
        return ""

    def _update_status(self, ds: Obj, wanted: set[str], revision: str) -> None:
        pods = [
            p
            for p in self.list("v1", "pods", ds["metadata"]["namespace"])
            if is_controlled_by(p, ds) and is_active(p)
        ]
        scheduled = {self._target(p) for p in pods if (p.get("spec") or {}).get("nodeName")}
        ready = [p for p in pods if is_ready(p) and self._target(p) in wanted]
        updated = [p for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision]
        status: dict[str, Any] = {
            "desiredNumberScheduled": len(wanted),
            "currentNumberScheduled": len(scheduled & wanted),
            "numberMisscheduled": len(scheduled - wanted),
            "numberReady": len(ready),
            "numberAvailable": len(ready),
            "updatedNumberScheduled": len(updated),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        if len(wanted) - len(ready):
            status["numberUnavailable"] = len(wanted) - len(ready)
        if ds.get("status") != status:
            ds["status"] = status
            self.store.update_status(self.rt("apps/v1", "daemonsets"), ds)
