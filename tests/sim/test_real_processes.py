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
    assert pods
    log = core.read_namespaced_pod_log(pods[0].metadata.name, NS)
    # The real client ran: it read the file the kubelet wrote for the mount, and said what was wrong with it.
    assert "cannot be read" in log and "JSONDecodeError" in log, log
    state = pods[0].status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (2, "Error")


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
