"""The StatefulSet controller: ordinal pods `<name>-0..n-1` with stable hostnames under the governing
service, created in order and each only once its predecessors are Running and Ready (OrderedReady; all at
once with `podManagementPolicy: Parallel`), removed from the highest ordinal down, and replaced from the
highest ordinal down on a template change (RollingUpdate)."""

from __future__ import annotations

from pytest_aksai.sim._core._framework import Controller, Obj, Watch, split_key, watch_owned
from pytest_aksai.sim._core._history import clean_template, sync_revisions
from pytest_aksai.sim._core._podutil import (
    is_controlled_by,
    is_ready,
    is_terminal,
    omit_zero,
    template_hash,
)
from pytest_aksai.sim._core._replicaset import available, pod_from_template

COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"


def _running_and_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_ready(pod)


class StatefulSetController(Controller):
    name = "statefulset"
    watches = (Watch("apps/v1", "statefulsets"), watch_owned("v1", "pods", "StatefulSet"))

    async def reconcile(self, key: str) -> float | None:
        sts = self.get("apps/v1", "statefulsets", key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return None
        namespace, name = split_key(key)
        spec = sts.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        revision_hash = template_hash(clean_template(spec.get("template") or {}))
        revision = f"{name}-{revision_hash}"
        parallel = spec.get("podManagementPolicy") == "Parallel"
        pods_rt = self.rt("v1", "pods")
        pods = {
            p["metadata"]["name"]: p for p in self.list("v1", "pods", namespace) if is_controlled_by(p, sts)
        }
        running = {
            str((p["metadata"].get("labels") or {}).get(REVISION_LABEL, "")).rsplit("-", 1)[-1]
            for p in pods.values()
        }
        sync_revisions(self, sts, revision_hash, running)

        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            pod = pods.get(pod_name)
            if pod is not None and is_terminal(pod) and not pod["metadata"].get("deletionTimestamp"):
                self.store.delete(pods_rt, pod_name, namespace)
                self.event(
                    sts,
                    "Normal",
                    "SuccessfulDelete",
                    f"delete Pod {pod_name} in StatefulSet {name} successful",
                    COMPONENT,
                )
                pod = None
                pods.pop(pod_name)
            if pod is None:
                self._create_pod(sts, ordinal, revision)
                pods[pod_name] = self.get("v1", "pods", f"{namespace}/{pod_name}") or {}
                if not parallel:
                    break
            elif not parallel and (pod["metadata"].get("deletionTimestamp") or not _running_and_ready(pod)):
                break
        else:
            self._scale_down_or_update(sts, pods, replicas, revision, parallel)
        return self._update_status(sts, revision)

    def _create_pod(self, sts: Obj, ordinal: int, revision: str) -> None:
        name = sts["metadata"]["name"]
        pod_name = f"{name}-{ordinal}"
        spec = sts.get("spec") or {}
        labels = {POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(ordinal), REVISION_LABEL: revision}
        pod = pod_from_template(sts, spec.get("template") or {}, name=pod_name, extra_labels=labels)
        pod["spec"]["hostname"] = pod_name
        if spec.get("serviceName"):
            pod["spec"]["subdomain"] = spec["serviceName"]
        self.store.create(self.rt("v1", "pods"), pod)
        self.event(
            sts,
            "Normal",
            "SuccessfulCreate",
            f"create Pod {pod_name} in StatefulSet {name} successful",
            COMPONENT,
        )

    def _scale_down_or_update(
        self, sts: Obj, pods: dict[str, Obj], replicas: int, revision: str, parallel: bool
    ) -> None:
        name = sts["metadata"]["name"]
        namespace = sts["metadata"]["namespace"]
        pods_rt = self.rt("v1", "pods")

        def ordinal(pod_name: str) -> int:
            suffix = pod_name.rsplit("-", 1)[-1]
            return int(suffix) if suffix.isdigit() else -1

        surplus = sorted((n for n in pods if ordinal(n) >= replicas), key=ordinal, reverse=True)
        for pod_name in surplus:
            if pods[pod_name]["metadata"].get("deletionTimestamp"):
                if not parallel:
                    return
                continue
            self.store.delete(pods_rt, pod_name, namespace)
            self.event(
                sts,
                "Normal",
                "SuccessfulDelete",
                f"delete Pod {pod_name} in StatefulSet {name} successful",
                COMPONENT,
            )
            if not parallel:
                return
        if surplus:
            return
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return
        current = [pods[f"{name}-{i}"] for i in range(replicas) if f"{name}-{i}" in pods]
        if any(p["metadata"].get("deletionTimestamp") or not _running_and_ready(p) for p in current):
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
        for pod in reversed(current):
            if ordinal(pod["metadata"]["name"]) < partition:
                break
            if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision:
                self.store.delete(pods_rt, pod["metadata"]["name"], namespace)
                self.event(
                    sts,
                    "Normal",
                    "SuccessfulDelete",
                    f"delete Pod {pod['metadata']['name']} in StatefulSet {name} successful",
                    COMPONENT,
                )
                return

    def _update_status(self, sts: Obj, revision: str) -> float | None:
        spec = sts.get("spec") or {}
        pods = [p for p in self.list("v1", "pods", sts["metadata"]["namespace"]) if is_controlled_by(p, sts)]
        live = [p for p in pods if not is_terminal(p)]
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        updated = [p for p in live if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision]
        old = sts.get("status") or {}
        current_revision = old.get("currentRevision") or revision
        if len(updated) == int(spec.get("replicas", 1)) == len(live):
            current_revision = revision
        current = [
            p for p in live if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == current_revision
        ]
        status = {
            **omit_zero(
                {
                    "observedGeneration": sts["metadata"].get("generation", 1),
                    "readyReplicas": sum(1 for p in live if is_ready(p)),
                    "currentReplicas": len(current),
                    "updatedReplicas": len(updated),
                    "availableReplicas": sum(1 for p in live if available(p, min_ready, now)),
                }
            ),
            "replicas": len(live),
            "currentRevision": current_revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        if status != old:
            sts["status"] = status
            self.store.update_status(self.rt("apps/v1", "statefulsets"), sts)
        return (
            float(min_ready)
            if min_ready and status.get("availableReplicas", 0) < status.get("readyReplicas", 0)
            else None
        )
