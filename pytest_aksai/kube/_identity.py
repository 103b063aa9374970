"""The Kubernetes side of the Workload Identity chain: the objects that configure it, TokenRequest, and
the probe pod that shows what the webhook injects."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster, _status_message
from pytest_aksai.kube._rest import DEPLOYMENTS, EVENTS, PODS, STATEFULSETS, Kind, Obj

SERVICEACCOUNTS = Kind("", "v1", "serviceaccounts", kind="ServiceAccount")
DAEMONSETS = Kind("apps", "v1", "daemonsets", kind="DaemonSet")
JOBS = Kind("batch", "v1", "jobs", kind="Job")
CRONJOBS = Kind("batch", "v1", "cronjobs", kind="CronJob")
SECRETPROVIDERCLASSES = Kind(
    "secrets-store.csi.x-k8s.io", "v1", "secretproviderclasses", kind="SecretProviderClass"
)
SECRETS = Kind("", "v1", "secrets", kind="Secret")
PROBE_IMAGE = "mcr.microsoft.com/azure-cli:2.67.0"
_STREAM_OPENING = threading.Lock()
"""`kubernetes.stream.stream` swaps its ApiClient's `request` while a stream opens (see _portforward)."""


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
    cluster: Cluster,
    namespace: str,
    service_account: str,
    labels: dict[str, str],
    use_label: str,
    *,
    volumes: list[Obj] | None = None,
    mounts: list[Obj] | None = None,
    seconds: int = 300,
) -> tuple[Obj | None, str]:
    """Create a pod running as the ServiceAccount (labelled `use_label=true` unless it is empty), with the
    given volumes mounted; the pod as admitted (after every mutating webhook), or None and the refusal."""
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"aksai-wi-probe-{secrets.token_hex(3)}",
            "namespace": namespace,
            "labels": {**labels, **({use_label: "true"} if use_label else {})},
        },
        "spec": {
            "serviceAccountName": service_account,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "probe",
                    "image": PROBE_IMAGE,
                    "command": ["sleep", str(seconds)],
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                    **({"volumeMounts": mounts} if mounts else {}),
                }
            ],
            **({"volumes": volumes} if volumes else {}),
        },
    }
    try:
        return _rest.create(cluster._api, PODS, body, namespace), ""
    except ApiException as exc:
        return None, _status_message(exc)


def delete_pod(cluster: Cluster, namespace: str, name: str) -> None:
    _rest.delete(cluster._api, PODS, name, namespace)


def wait_started(cluster: Cluster, namespace: str, pod: str, timeout: float) -> tuple[bool, str]:
    """Watch the pod's events until the kubelet reports a container Started (True, "") or a volume
    FailedMount (False, its message); `timeout` in cluster seconds (at least 20 wall seconds: on a
    time-compressed cluster a busy machine, not the cluster, sets the pace), (False, "") when it passes."""
    deadline = time.monotonic() + max(timeout / max(cluster.time_scale, 1e-9), 20.0)
    selector = f"involvedObject.name={pod}"

    def verdict(event: Obj) -> tuple[bool, str] | None:
        if event.get("reason") == "Started":
            return True, ""
        if event.get("reason") == "FailedMount":
            return False, str(event.get("message", ""))
        return None

    listed = _rest.list_(cluster._api, EVENTS, namespace, field_selector=selector)
    for event in listed.get("items") or []:
        found = verdict(event)
        if found:
            return found
    version = str((listed.get("metadata") or {}).get("resourceVersion", ""))
    while (remaining := deadline - time.monotonic()) > 0:
        for change in _rest.watch(
            cluster._api,
            EVENTS,
            namespace,
            resource_version=version,
            timeout_seconds=max(1, int(remaining + 1)),
            field_selector=selector,
        ):
            obj = change.get("object") or {}
            version = str((obj.get("metadata") or {}).get("resourceVersion", version))
            found = verdict(obj) if change.get("type") in ("ADDED", "MODIFIED") else None
            if found:
                return found
            if time.monotonic() >= deadline:
                break
    return False, ""


def pod_exec(cluster: Cluster, namespace: str, pod: str, argv: list[str]) -> tuple[int, str, str]:
    """Run `argv` in the pod's first container (exec, as `kubectl exec`): (exit code, stdout, stderr). The
    output is the caller's to fingerprint; it is never logged here."""
    import json

    from kubernetes import client as k8s
    from kubernetes.stream import stream
    from kubernetes.stream.ws_client import ERROR_CHANNEL

    core = k8s.CoreV1Api(k8s.ApiClient(cluster._api.configuration))
    with _STREAM_OPENING:
        session = stream(
            core.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=argv,
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
            _preload_content=False,
        )
    try:
        session.run_forever(timeout=60)
        status = json.loads(session.read_channel(ERROR_CHANNEL) or "{}")
        out, err = session.read_stdout() or "", session.read_stderr() or ""
    finally:
        session.close()
    if status.get("status") == "Success":
        return 0, out, err
    causes = ((status.get("details") or {}).get("causes")) or []
    code = next((int(c["message"]) for c in causes if c.get("reason") == "ExitCode"), 1)
    return code, out, err or str(status.get("message", ""))


def secret_keys(cluster: Cluster, namespace: str, name: str) -> list[str] | None:
    """The data keys of a Secret (never its values); None when it does not exist."""
    found = _rest.get(cluster._api, SECRETS, name, namespace)
    return None if found is None else sorted((found.get("data") or {}).keys())


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


TRIGGER_AUTHENTICATIONS = Kind("keda.sh", "v1alpha1", "triggerauthentications", kind="TriggerAuthentication")
CLUSTER_TRIGGER_AUTHENTICATIONS = Kind(
    "keda.sh",
    "v1alpha1",
    "clustertriggerauthentications",
    namespaced=False,
    kind="ClusterTriggerAuthentication",
)
KEDA_SCALEDOBJECTS = Kind("keda.sh", "v1alpha1", "scaledobjects", kind="ScaledObject")
KEDA_OPERATOR = "keda-operator"


def keda_identity_objects(cluster: Cluster) -> tuple[list[Obj], list[Obj], Obj | None]:
    """The (Cluster)TriggerAuthentications with `podIdentity.provider: azure-workload`, the ScaledObjects,
    and the KEDA operator's Deployment (None when there is none named keda-operator)."""
    if not cluster.serves("keda.sh", "v1alpha1"):
        return [], [], None
    auths: list[Obj] = []
    for kind in (TRIGGER_AUTHENTICATIONS, CLUSTER_TRIGGER_AUTHENTICATIONS):
        try:
            found = cluster.items(kind)
        except ApiException as exc:
            if exc.status != 404:
                raise
            continue
        auths += [
            {**o, "kind": kind.kind}
            for o in found
            if ((o.get("spec") or {}).get("podIdentity") or {}).get("provider") == "azure-workload"
        ]
    scaled = cluster.items(KEDA_SCALEDOBJECTS) if auths else []
    operators = _rest.items(cluster._api, DEPLOYMENTS, None, field_selector=f"metadata.name={KEDA_OPERATOR}")
    return auths, scaled, operators[0] if operators else None


def service_account(cluster: Cluster, namespace: str, name: str) -> Obj | None:
    return _rest.get(cluster._api, SERVICEACCOUNTS, name, namespace)
