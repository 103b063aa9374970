"""The Kubernetes side of the Workload Identity chain: the objects that configure it, TokenRequest, and
the probe pod that shows what the webhook injects."""

from __future__ import annotations

import secrets
from typing import Any

from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster, _status_message
from pytest_aksai.kube._rest import DEPLOYMENTS, PODS, STATEFULSETS, Kind, Obj

SERVICEACCOUNTS = Kind("", "v1", "serviceaccounts", kind="ServiceAccount")
DAEMONSETS = Kind("apps", "v1", "daemonsets", kind="DaemonSet")
JOBS = Kind("batch", "v1", "jobs", kind="Job")
CRONJOBS = Kind("batch", "v1", "cronjobs", kind="CronJob")
SECRETPROVIDERCLASSES = Kind(
    "secrets-store.csi.x-k8s.io", "v1", "secretproviderclasses", kind="SecretProviderClass"
)
PROBE_IMAGE = "mcr.microsoft.com/azure-cli:2.67.0"


def identity_objects(cluster: Cluster, namespace: str | None = None) -> list[tuple[str, Obj]]:
    """ServiceAccounts, workloads and SecretProviderClasses, as `(source, object)` pairs."""
    kinds = [SERVICEACCOUNTS, DEPLOYMENTS, STATEFULSETS, DAEMONSETS, JOBS, CRONJOBS, PODS]
    if cluster.serves(SECRETPROVIDERCLASSES.group, SECRETPROVIDERCLASSES.version):
        kinds.append(SECRETPROVIDERCLASSES)
    source = f"cluster:{cluster.profile}"
    out: list[tuple[str, Obj]] = []
    for kind in kinds:
        try:
            out.extend((source, obj) for obj in cluster.items(kind, namespace))
        except ApiException as exc:
            if exc.status != 404:  # a kind this cluster does not serve (the sim has no CronJobs)
                raise
    return out


def request_token(cluster: Cluster, namespace: str, name: str, audience: str, seconds: int = 3600) -> str:
    """A TokenRequest token for the ServiceAccount, as the kubelet requests the projected one."""
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": [audience], "expirationSeconds": seconds},
    }
    result = _rest._call(cluster._api, "POST", SERVICEACCOUNTS.path(namespace, name, "token"), body=body)
    return str(((result or {}).get("status") or {}).get("token", ""))


def create_probe_pod(
    cluster: Cluster, namespace: str, service_account: str, labels: dict[str, str], use_label: str
) -> tuple[Obj | None, str]:
    """Create a pod labelled for Workload Identity running as the ServiceAccount; the pod as admitted (after
    every mutating webhook), or None and the API server's refusal."""
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"aksai-wi-probe-{secrets.token_hex(3)}",
            "namespace": namespace,
            "labels": {**labels, use_label: "true"},
        },
        "spec": {
            "serviceAccountName": service_account,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "probe",
                    "image": PROBE_IMAGE,
                    "command": ["sleep", "300"],
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                }
            ],
        },
    }
    try:
        return _rest.create(cluster._api, PODS, body, namespace), ""
    except ApiException as exc:
        return None, _status_message(exc)


def delete_pod(cluster: Cluster, namespace: str, name: str) -> None:
    _rest.delete(cluster._api, PODS, name, namespace)


def pod_env(pod: Obj) -> dict[str, dict[str, str]]:
    """Container name → its literal env (valueFrom entries as `<from ...>`)."""
    out: dict[str, dict[str, str]] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        env: dict[str, str] = {}
        for entry in container.get("env") or []:
            env[str(entry.get("name"))] = str(entry.get("value", "<from valueFrom>"))
        out[str(container.get("name"))] = env
    return out


def projected_token_volumes(pod: Obj) -> list[dict[str, Any]]:
    """The projected serviceAccountToken sources of the pod's volumes, with the volume name and mount path."""
    spec = pod.get("spec") or {}
    mounts = {
        m.get("name"): m.get("mountPath")
        for c in spec.get("containers") or []
        for m in c.get("volumeMounts") or []
    }
    out = []
    for volume in spec.get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            token = source.get("serviceAccountToken")
            if token:
                out.append(
                    {**token, "volume": volume.get("name"), "mountPath": mounts.get(volume.get("name"))}
                )
    return out
