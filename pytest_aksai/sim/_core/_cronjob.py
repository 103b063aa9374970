"""The CronJob controller (batch/v1), as kube-controller-manager's `cronjob_controllerv2.go` schedules.

The schedule (standard 5-field cron, `@hourly`-style macros, in `spec.timeZone` or UTC) is evaluated in
cluster time. Each sync: finished Jobs leave `status.active` (`SawCompletedJob`; a Complete one moves
`lastSuccessfulTime`), vanished ones too (`MissingJob`); then the most recent unmet schedule time after
`lastScheduleTime` (or the creation time), no earlier than `now − startingDeadlineSeconds`, is run unless
`suspend` — too late for its deadline is `MissSchedule`, more than 100 missed starts `TooManyMissedTimes`;
`Forbid` skips it while a Job is active (`JobAlreadyActive`), `Replace` deletes the active ones first. The
Job is `<cronjob>-<scheduled time in Unix minutes>`, owned by the CronJob, with the template's labels and
annotations plus `batch.kubernetes.io/cronjob-scheduled-timestamp`. Finished Jobs beyond
`successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted oldest first. The controller then sleeps
until the next schedule time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from pytest_aksai.sim._core._framework import Controller, Obj, Watch, split_key, watch_owned
from pytest_aksai.sim._core._podutil import is_controlled_by

COMPONENT = "cronjob-controller"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finished(job: Obj) -> str | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


def schedule_times(
    schedule: str, zone: str | None, after: datetime, until: datetime
) -> tuple[list[datetime], bool]:
    """The schedule's times in (after, until], at most MAX_MISSED + 1 of them (the bool says there were more)."""
    tz = ZoneInfo(zone) if zone else UTC
    it = croniter(schedule, after.astimezone(tz))
    out: list[datetime] = []
    while True:
        t = it.get_next(datetime)
        if t > until:
            return out, False
        out.append(t)
        if len(out) > MAX_MISSED:
            return out, True


def next_time(schedule: str, zone: str | None, now: datetime) -> datetime:
    tz = ZoneInfo(zone) if zone else UTC
    result: datetime = croniter(schedule, now.astimezone(tz)).get_next(datetime)
    return result


class CronJobController(Controller):
    name = "cronjob"
    watches = (Watch("batch/v1", "cronjobs"), watch_owned("batch/v1", "jobs", "CronJob"))

    async def reconcile(self, key: str) -> float | None:
        cj = self.get("batch/v1", "cronjobs", key)
        if cj is None or cj["metadata"].get("deletionTimestamp"):
            return None
        namespace = split_key(key)[0] or "default"
        spec = cj.get("spec") or {}
        status: Obj = dict(cj.get("status") or {})
        before = repr(status)
        jobs_rt = self.rt("batch/v1", "jobs")
        jobs = [j for j in self.list("batch/v1", "jobs", namespace) if is_controlled_by(j, cj)]
        by_uid = {j["metadata"]["uid"]: j for j in jobs}
        active: list[Obj] = []
        for ref in status.get("active") or []:
            job = by_uid.get(ref.get("uid"))
            if job is None:
                self.event(
                    cj, "Warning", "MissingJob", f"Active job went missing: {ref.get('name')}", COMPONENT
                )
                continue
            if _finished(job) is None:
                active.append(ref)
        for job in jobs:
            condition = _finished(job)
            listed = any(r.get("uid") == job["metadata"]["uid"] for r in status.get("active") or [])
            if condition is None and not listed:
                # e.g. `kubectl create job --from=cronjob/…`: owned, but not started by the controller
                self.event(
                    cj,
                    "Warning",
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {job['metadata']['name']}",
                    COMPONENT,
                )
            elif condition is not None and listed:
                self.event(
                    cj,
                    "Normal",
                    "SawCompletedJob",
                    f"Saw completed job: {job['metadata']['name']}, condition: {condition}",
                    COMPONENT,
                )
            if condition == "Complete":
                done = _parse((job.get("status") or {}).get("completionTime"))
                last = _parse(status.get("lastSuccessfulTime"))
                if done is not None and (last is None or done > last):
                    status["lastSuccessfulTime"] = _stamp(done)
        if active:
            status["active"] = active
        else:
            status.pop("active", None)
        self._clean_history(cj, jobs, spec, namespace)

        schedule = str(spec.get("schedule") or "")
        zone = spec.get("timeZone")
        now = self.clock.now()
        try:
            if zone:
                ZoneInfo(zone)
            upcoming = next_time(schedule, zone, now)
        except (ValueError, KeyError, ZoneInfoNotFoundError) as exc:
            self.event(
                cj, "Warning", "UnparseableSchedule", f"unparseable schedule: {schedule} : {exc}", COMPONENT
            )
            self._write(cj, status, before)
            return None
        wait = max((upcoming - now).total_seconds(), 0.0) + 0.1
        if spec.get("suspend"):
            self._write(cj, status, before)
            return None
        earliest = (
            _parse(status.get("lastScheduleTime")) or _parse(cj["metadata"].get("creationTimestamp")) or now
        )
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - timedelta(seconds=int(deadline)))
        times, too_many = schedule_times(schedule, zone, earliest, now)
        if too_many:
            self.event(
                cj,
                "Warning",
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                COMPONENT,
            )
        if not times:
            self._write(cj, status, before)
            return wait
        scheduled = times[-1]
        if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
            self.event(
                cj,
                "Warning",
                "MissSchedule",
                f"Missed scheduled time to start a job: {scheduled.isoformat()}",
                COMPONENT,
            )
            self._write(cj, status, before)
            return wait
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            self.event(
                cj,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
                COMPONENT,
            )
            self._write(cj, status, before)
            return wait
        if policy == "Replace":
            for ref in active:
                self.store.delete(jobs_rt, ref["name"], namespace=namespace, propagation_policy="Background")
                self.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {ref['name']}", COMPONENT)
            active = []
            status.pop("active", None)
        job = self._job(cj, scheduled, namespace)
        existing = self.store.try_get(jobs_rt, job["metadata"]["name"], namespace)
        if existing is None:
            created = self.store.create(jobs_rt, job, namespace=namespace)
            self.event(
                cj, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}", COMPONENT
            )
        else:
            created = existing
        if not any(r.get("uid") == created["metadata"]["uid"] for r in active) and _finished(created) is None:
            active.append(self._ref(created))
        if active:
            status["active"] = active
        status["lastScheduleTime"] = _stamp(scheduled)
        self._write(cj, status, before)
        return wait

    def _job(self, cj: Obj, scheduled: datetime, namespace: str) -> Obj:
        template = (cj.get("spec") or {}).get("jobTemplate") or {}
        meta = template.get("metadata") or {}
        name = f"{cj['metadata']['name']}-{int(scheduled.timestamp()) // 60}"
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(meta.get("labels") or {}),
                "annotations": {
                    **(meta.get("annotations") or {}),
                    SCHEDULED_ANNOTATION: scheduled.isoformat().replace("+00:00", "Z"),
                },
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "CronJob",
                        "name": cj["metadata"]["name"],
                        "uid": cj["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": dict(template.get("spec") or {}),
        }

    @staticmethod
    def _ref(job: Obj) -> Obj:
        meta = job["metadata"]
        return {
            "kind": "Job",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": "batch/v1",
            "resourceVersion": meta.get("resourceVersion", ""),
        }

    def _clean_history(self, cj: Obj, jobs: list[Obj], spec: Obj, namespace: str) -> None:
        rt = self.rt("batch/v1", "jobs")
        for condition, key, default in (
            ("Complete", "successfulJobsHistoryLimit", 3),
            ("Failed", "failedJobsHistoryLimit", 1),
        ):
            limit = spec.get(key)
            limit = default if limit is None else int(limit)
            finished = [
                j for j in jobs if _finished(j) == condition and not j["metadata"].get("deletionTimestamp")
            ]
            finished.sort(
                key=lambda j: (j.get("status") or {}).get("startTime") or j["metadata"]["creationTimestamp"]
            )
            for job in finished[: max(len(finished) - limit, 0)]:
                self.store.delete(
                    rt, job["metadata"]["name"], namespace=namespace, propagation_policy="Background"
                )
                self.event(
                    cj, "Normal", "SuccessfulDelete", f"Deleted job {job['metadata']['name']}", COMPONENT
                )

    def _write(self, cj: Obj, status: Obj, before: str) -> None:
        if repr(status) == before:
            return
        cj = dict(cj)
        cj["status"] = status
        self.store.update_status(self.rt("batch/v1", "cronjobs"), cj, namespace=cj["metadata"]["namespace"])
