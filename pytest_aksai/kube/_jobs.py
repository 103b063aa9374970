"""An Indexed Job of N pods that each read one file from a ConfigMap and print their result to their log.

What the load area's in-cluster workers run on (docs: lifecycle-anchors E.1): `completionMode: Indexed`,
`completions = parallelism = N`, `backoffLimit: 0` (a re-created index would replay load and double-count),
`restartPolicy: Never`, a TTL, the run's labels on everything, and no toleration of GPU taints, so the
workers never land on (or keep alive) a GPU node. The caller deletes what `run_indexed_job` created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from pytest_aksai._errors import AksaiError
from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._endpoint import service_port
from pytest_aksai.kube._wait import condition_is, wait_for

JOBS = _rest.Kind("batch", "v1", "jobs", kind="Job")
MOUNT_PATH = "/etc/aksai-job"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
TTL_SECONDS = 3600


class JobError(AksaiError):
    """An Indexed Job the suite ran did not finish (a pod failed, the deadline passed)."""

    __module__ = "pytest_aksai.kube"


@dataclass(frozen=True)
class IndexedJob:
    name: str
    namespace: str
    image: str
    command: list[str]
    """The container's command; `{file}` is replaced by the path of the mounted file."""
    file_name: str
    file_text: str
    completions: int
    labels: Mapping[str, str]
    cpu: str = "1"

    @property
    def path(self) -> str:
        return f"{MOUNT_PATH}/{self.file_name}"

    def configmap(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(self.labels)},
            "data": {self.file_name: self.file_text},
        }

    def job(self) -> dict[str, Any]:
        container = {
            "name": "worker",
            "image": self.image,
            "command": [part.replace("{file}", self.path) for part in self.command],
            "resources": {"requests": {"cpu": self.cpu, "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
            "volumeMounts": [{"name": "spec", "mountPath": MOUNT_PATH, "readOnly": True}],
        }
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(self.labels)},
            "spec": {
                "completionMode": "Indexed",
                "completions": self.completions,
                "parallelism": self.completions,
                "backoffLimit": 0,
                "ttlSecondsAfterFinished": TTL_SECONDS,
                "template": {
                    "metadata": {"labels": dict(self.labels)},
                    "spec": {
                        "restartPolicy": "Never",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "containers": [container],
                        "volumes": [{"name": "spec", "configMap": {"name": self.name}}],
                    },
                },
            },
        }


def service_url(cluster: Cluster, namespace: str, name: str) -> str:
    """`http://<name>.<namespace>.svc.cluster.local:<port>`: the Service as pods in the cluster reach it."""
    service = _rest.get(cluster._api, _rest.SERVICES, name, namespace)
    port = service_port(service) if service is not None else None
    if port is None:
        raise JobError(
            f"Service {namespace}/{name} does not exist or has no port",
            expected="the Service KAITO creates for the Workspace",
            fix="Check `kubectl get svc -n " + namespace + "`",
        )
    return f"http://{name}.{namespace}.svc.cluster.local:{port}"


def run_indexed_job(cluster: Cluster, job: IndexedJob, timeout: float) -> dict[int, str]:
    """Create the ConfigMap and the Job, wait until the Job completes, return each index's log.

    `timeout` is in cluster seconds. Raises JobError when the Job fails or a pod's log cannot be read.
    """
    __tracebackhide__ = True
    _rest.create(cluster._api, _rest.CONFIGMAPS, job.configmap(), job.namespace)
    _rest.create(cluster._api, JOBS, job.job(), job.namespace)

    def failed(obj: dict[str, Any]) -> str | None:
        if condition_is(obj, "Failed"):
            return "the Job failed: " + str((obj.get("status") or {}).get("failed") or 0) + " pod(s) failed"
        return None

    wait_for(cluster, JOBS, job.name, job.namespace, until=lambda o: condition_is(o, "Complete"),
             expected=f"all {job.completions} workers to finish", timeout=timeout, abort_if=failed)  # fmt: skip
    logs: dict[int, str] = {}
    for pod in _rest.items(cluster._api, _rest.PODS, job.namespace, label_selector=f"job-name={job.name}"):
        index = (pod["metadata"].get("labels") or {}).get(INDEX_LABEL)
        if index is None:
            continue
        path = f"/api/v1/namespaces/{job.namespace}/pods/{pod['metadata']['name']}/log"
        try:
            logs[int(index)] = _rest.raw_text(cluster._api, path, query={"container": "worker"})
        except ApiException as exc:
            raise JobError(
                f"The log of worker {index} ({pod['metadata']['name']}) cannot be read",
                observed=f"{exc.status} {exc.reason}",
                fix="The suite needs get on pods/log in the namespace it runs the workers in",
            ) from None
    return logs


def delete_indexed_job(cluster: Cluster, job: IndexedJob) -> None:
    """Delete the Job (its pods with it) and the ConfigMap; what is already gone is fine."""
    _rest.delete(cluster._api, JOBS, job.name, job.namespace)
    _rest.delete(cluster._api, _rest.CONFIGMAPS, job.name, job.namespace)
