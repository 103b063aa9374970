"""The Job controller (batch/v1): runs pods to `completions` (NonIndexed or Indexed) with `parallelism`,
retries failed pods up to `backoffLimit`, honours `activeDeadlineSeconds` and `suspend`, and reports
`Complete`/`Failed` conditions with the upstream reasons."""

from __future__ import annotations

from datetime import datetime

from pytest_aksai.sim._core._framework import Controller, Obj, Watch, split_key, watch_owned
from pytest_aksai.sim._core._podutil import is_controlled_by, omit_zero, set_condition
from pytest_aksai.sim._core._replicaset import pod_from_template

COMPONENT = "job-controller"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase", "Pending"))


class JobController(Controller):
    name = "job"
    watches = (Watch("batch/v1", "jobs"), watch_owned("v1", "pods", "Job"))

    async def reconcile(self, key: str) -> float | None:
        job = self.get("batch/v1", "jobs", key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return None
        namespace, _ = split_key(key)
        spec = job.get("spec") or {}
        status = job.setdefault("status", {})
        conditions: list[Obj] = status.setdefault("conditions", [])
        finished = any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions
        )
        pods = [p for p in self.list("v1", "pods", namespace) if is_controlled_by(p, job)]
        active = [
            p
            for p in pods
            if _phase(p) not in ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")
        ]
        succeeded = [p for p in pods if _phase(p) == "Succeeded"]
        failed = [p for p in pods if _phase(p) == "Failed"]
        completions = (
            int(spec.get("completions") or 1)
            if spec.get("completions") is not None or not spec.get("parallelism")
            else None
        )
        parallelism = int(spec.get("parallelism", 1))
        backoff_limit = int(spec.get("backoffLimit", 6))
        stamp = self.clock.timestamp()
        requeue: float | None = None
        if not finished and not spec.get("suspend"):
            status.setdefault("startTime", stamp)
            deadline = spec.get("activeDeadlineSeconds")
            elapsed = (
                self.clock.now().replace(tzinfo=None)
                - datetime.strptime(status["startTime"][:19], "%Y-%m-%dT%H:%M:%S")
            ).total_seconds()
            if len(failed) > backoff_limit:
                self._fail(job, active, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
            elif deadline is not None and elapsed >= float(deadline):
                self._fail(job, active, "DeadlineExceeded", "Job was active longer than specified deadline")
            elif (completions is not None and len(succeeded) >= completions) or (
                completions is None and succeeded and not active
            ):
                set_condition(conditions, "Complete", "True", stamp, probe_time=True)
                status["completionTime"] = stamp
                self.event(job, "Normal", "Completed", "Job completed", COMPONENT)
            else:
                remaining = (completions - len(succeeded)) if completions is not None else parallelism
                want = min(parallelism, remaining) - len(active)
                indexed = spec.get("completionMode") == "Indexed"
                taken = {
                    (p["metadata"].get("annotations") or {}).get(INDEX_ANNOTATION) for p in active + succeeded
                }
                free = [str(i) for i in range(completions or 0) if str(i) not in taken]
                for _ in range(max(want, 0)):
                    index = free.pop(0) if indexed and free else None
                    self._create_pod(job, index)
                if deadline is not None:
                    requeue = max(float(deadline) - elapsed, 0.0) + 0.5
        pods = [p for p in self.list("v1", "pods", namespace) if is_controlled_by(p, job)]
        counts = omit_zero(
            {
                "active": sum(
                    1
                    for p in pods
                    if _phase(p) not in ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")
                ),
                "ready": sum(
                    1
                    for p in pods
                    if any(
                        c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (p.get("status") or {}).get("conditions") or []
                    )
                ),
                "succeeded": len([p for p in pods if _phase(p) == "Succeeded"]),
                "failed": len([p for p in pods if _phase(p) == "Failed"]),
            }
        )
        fresh = {
            **{k: v for k, v in status.items() if k not in ("active", "ready", "succeeded", "failed")},
            **counts,
        }
        if not fresh.get("conditions"):
            fresh.pop("conditions", None)
        current = self.get("batch/v1", "jobs", key)
        if current is not None and current.get("status") != fresh:
            current["status"] = fresh
            self.store.update_status(self.rt("batch/v1", "jobs"), current)
        return requeue

    def _create_pod(self, job: Obj, index: str | None) -> None:
        spec = job.get("spec") or {}
        meta = job["metadata"]
        labels = {
            "batch.kubernetes.io/controller-uid": meta["uid"],
            "batch.kubernetes.io/job-name": meta["name"],
            "controller-uid": meta["uid"],
            "job-name": meta["name"],
        }
        if index is not None:
            labels["batch.kubernetes.io/job-completion-index"] = index
        pod = pod_from_template(
            job,
            spec.get("template") or {},
            generate_name=f"{meta['name']}-" if index is None else f"{meta['name']}-{index}-",
            extra_labels=labels,
        )
        if index is not None:
            pod["metadata"].setdefault("annotations", {})[INDEX_ANNOTATION] = index
        created = self.store.create(self.rt("v1", "pods"), pod)
        self.event(
            job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}", COMPONENT
        )

    def _fail(self, job: Obj, active: list[Obj], reason: str, message: str) -> None:
        for pod in active:
            self.store.delete(self.rt("v1", "pods"), pod["metadata"]["name"], pod["metadata"]["namespace"])
            self.event(
                job, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", COMPONENT
            )
        status = job.setdefault("status", {})
        set_condition(
            status.setdefault("conditions", []),
            "Failed",
            "True",
            self.clock.timestamp(),
            reason,
            message,
            probe_time=True,
        )
        self.event(job, "Warning", reason, message, COMPONENT)
