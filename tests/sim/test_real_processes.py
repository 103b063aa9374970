"""Containers running `aksai-load` are real processes: mounted ConfigMaps, the Job index, logs and exit codes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from kubernetes import client

NS = "inference"


def _job(name: str, args: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completionMode": "Indexed",
            "completions": 2,
            "parallelism": 2,
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "worker",
                            "image": "pytest-aksai-load:test",
                            "command": ["aksai-load", *args],
                            "volumeMounts": [{"name": "spec", "mountPath": "/etc/spec"}],
                        }
                    ],
                    "volumes": [{"name": "spec", "configMap": {"name": name}}],
                }
            },
        },
    }


def _finished(batch: client.BatchV1Api, watch_until: Callable[..., Any], name: str, condition: str) -> Any:
    return watch_until(
        batch.list_namespaced_job,
        lambda j: (
            j.metadata.name == name
            and any(c.type == condition and c.status == "True" for c in j.status.conditions or [])
        ),
        f"job {name} to be {condition}",
        namespace=NS,
        timeout=60,
    )


def test_a_worker_reads_its_mounted_spec_and_its_index_and_fails_with_its_own_paragraph(
    api: client.ApiClient, watch_until: Callable[..., Any]
) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    name = f"load-{uuid.uuid4().hex[:5]}"
    core.create_namespaced_config_map(NS, {"metadata": {"name": name}, "data": {"spec.json": "{not json"}})
    batch.create_namespaced_job(NS, _job(name, ["worker", "--spec", "/etc/spec/spec.json"]))
    _finished(batch, watch_until, name, "Failed")
    pods = core.list_namespaced_pod(NS, label_selector=f"job-name={name}").items
    # The first worker to fail fails the Job (backoffLimit 0) and the Job controller deletes the other one, which
    # may not have written anything yet: judge the workers that did run to their end.
    written = []
    for pod in pods:
        try:
            log = core.read_namespaced_pod_log(pod.metadata.name, NS)
        except client.ApiException as exc:
            if exc.status != 404:  # 404: the sibling the Job controller deleted
                raise
            continue
        if log:
            written.append((pod, log))
    assert written, [p.metadata.name for p in pods]
    for _, log in written:
        # The real client ran: it read the file the kubelet wrote for the mount, and said what was wrong with it.
        assert "cannot be read" in log and "JSONDecodeError" in log, log
    # The worker that failed the Job exited with the client's bad-input code.
    ended = [p.status.container_statuses[0].state.terminated for p in pods if p.status.container_statuses]
    assert (2, "Error") in {(t.exit_code, t.reason) for t in ended if t is not None}, ended


def test_a_worker_that_exits_zero_completes_its_index(
    api: client.ApiClient, watch_until: Callable[..., Any]
) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    name = f"load-{uuid.uuid4().hex[:5]}"
    core.create_namespaced_config_map(NS, {"metadata": {"name": name}, "data": {"spec.json": "{}"}})
    batch.create_namespaced_job(NS, _job(name, ["--help"]))
    done = _finished(batch, watch_until, name, "Complete")
    assert done.status.succeeded == 2
    pods = core.list_namespaced_pod(NS, label_selector=f"job-name={name}").items
    assert "worker" in core.read_namespaced_pod_log(pods[0].metadata.name, NS)
