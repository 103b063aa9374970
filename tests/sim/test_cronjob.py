"""CronJobs on the sim: schedules in cluster time, Jobs named `<cronjob>-<scheduled minute>`, status, history
limits, concurrency policies, suspend, and `kubectl create job --from=cronjob/…`."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime
from typing import Any

import kubernetes
import pytest

from pytest_aksai.sim import SimCluster

KUBECTL = shutil.which("kubectl")


def _cronjob(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {
                "metadata": {"labels": {"cron": name}},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "tick", "image": "busybox:1.36", "command": command}],
                        }
                    },
                },
            },
            **spec,
        },
    }


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _events(api: kubernetes.client.ApiClient, ns: str, name: str) -> list[Any]:
    return (
        kubernetes.client.CoreV1Api(api)
        .list_namespaced_event(ns, field_selector=f"involvedObject.name={name}")
        .items
    )


def test_every_minute_jobs_are_named_by_their_minute_and_history_is_kept_to_the_limit(api, ns, watch_until):
    batch = kubernetes.client.BatchV1Api(api)
    batch.create_namespaced_cron_job(ns, _cronjob("tick", ["echo", "tick"], successfulJobsHistoryLimit=2))
    # Four schedule times pass: four Jobs ran, two are kept.
    cj = watch_until(
        batch.list_namespaced_cron_job,
        lambda c: (
            c.status.last_successful_time is not None
            and c.status.last_schedule_time is not None
            and len([e for e in _events(api, ns, "tick") if e.reason == "SuccessfulCreate"]) >= 1
            and sum(e.count or 1 for e in _events(api, ns, "tick") if e.reason == "SuccessfulDelete") >= 2
        ),
        "four runs of the CronJob, two of them cleaned up",
        timeout=30,
        namespace=ns,
    )
    assert cj.status.last_schedule_time.second == 0
    jobs = batch.list_namespaced_job(ns, label_selector="cron=tick").items
    finished = [j for j in jobs if j.status.succeeded]
    assert 1 <= len(finished) <= 2
    for job in jobs:
        scheduled = _time(job.metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"])
        assert job.metadata.name == f"tick-{int(scheduled.timestamp()) // 60}"
        assert (
            job.metadata.owner_references[0].kind == "CronJob" and job.metadata.owner_references[0].controller
        )
        # Created within a few cluster seconds of its scheduled minute (one wall second is 60 here).
        lag = (job.metadata.creation_timestamp - scheduled).total_seconds()
        assert 0 <= lag <= 30, lag
    assert all(j.spec.template.metadata.labels["job-name"] == j.metadata.name for j in jobs)


def test_forbid_keeps_one_job_and_replace_swaps_it(api, ns, watch_until):
    batch = kubernetes.client.BatchV1Api(api)
    batch.create_namespaced_cron_job(ns, _cronjob("long", ["sleep", "3600"], concurrencyPolicy="Forbid"))
    watch_until(
        kubernetes.client.CoreV1Api(api).list_namespaced_event,
        lambda e: e.involved_object.name == "long" and e.reason == "JobAlreadyActive",
        "the Forbid policy to skip a run",
        timeout=20,
        namespace=ns,
    )
    [only] = batch.list_namespaced_job(ns, label_selector="cron=long").items
    assert batch.read_namespaced_cron_job("long", ns).status.active[0].name == only.metadata.name
    message = next(e.message for e in _events(api, ns, "long") if e.reason == "JobAlreadyActive")
    assert message == "Not starting job because prior execution is running and concurrency policy is Forbid"

    batch.patch_namespaced_cron_job("long", ns, {"spec": {"concurrencyPolicy": "Replace"}})
    replaced = watch_until(
        batch.list_namespaced_cron_job,
        lambda c: (
            c.metadata.name == "long"
            and bool(c.status.active)
            and c.status.active[0].name != only.metadata.name
        ),
        "the Replace policy to start a new Job",
        timeout=20,
        namespace=ns,
    )
    assert len(replaced.status.active) == 1
    assert any(
        e.reason == "SuccessfulDelete" and e.message == f"Deleted job {only.metadata.name}"
        for e in _events(api, ns, "long")
    )


def test_a_suspended_cronjob_starts_nothing_and_a_manual_job_can_be_made_from_it(
    sim: SimCluster, api, ns, watch_until
):
    batch = kubernetes.client.BatchV1Api(api)
    batch.create_namespaced_cron_job(ns, _cronjob("paused", ["echo", "hi"], suspend=True))
    # A sibling that does run proves schedule times passed meanwhile.
    batch.create_namespaced_cron_job(ns, _cronjob("witness", ["echo", "hi"]))
    watch_until(
        batch.list_namespaced_cron_job,
        lambda c: c.metadata.name == "witness" and c.status.last_successful_time is not None,
        "the witness CronJob to run once",
        timeout=20,
        namespace=ns,
    )
    assert batch.list_namespaced_job(ns, label_selector="cron=paused").items == []
    assert batch.read_namespaced_cron_job("paused", ns).status.last_schedule_time is None
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: the client half passed")
    made = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "-n",
            ns,
            "create",
            "job",
            "by-hand",
            "--from=cronjob/paused",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0 and made.stdout.strip() == "job.batch/by-hand created", made.stderr
    job = watch_until(
        batch.list_namespaced_job,
        lambda j: j.metadata.name == "by-hand" and bool(j.status.succeeded),
        "the manual Job to complete",
        timeout=20,
        namespace=ns,
    )
    assert job.metadata.annotations["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job.metadata.owner_references[0].name == "paused"
    shown = subprocess.run(
        [KUBECTL, "--kubeconfig", str(sim.kubeconfig_path), "-n", ns, "get", "cronjob", "witness"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    header, row = shown.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND"]
    assert row.split()[0] == "witness" and "<none>" not in row.split()[5]  # LAST SCHEDULE is set
