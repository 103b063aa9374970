"""The simulated kubelet's CSI volumes and projected tokens: the Secrets Store CSI driver with the Azure
provider mounts Key Vault secrets through the workload-identity exchange, syncs `secretObjects` while a pod
mounts the class, and keeps pods in ContainerCreating with the driver's FailedMount texts; the kubelet
rotates projected service-account tokens at 80 % of their lifetime."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from pytest_aksai.sim import SimCluster

NAMESPACE = "inference"
SA = "inference-sa"
WORKLOAD_CLIENT_ID = "5b0e9f0c-3a52-4d8e-9f43-2c1f8e6a7d10"
KEDA_CLIENT_ID = "9e1f2a3b-4c5d-4e6f-8a7b-0c1d2e3f4a5b"
TENANT = "8f2d6c1e-7b3a-4e59-a0c4-91d5e2f3b6a7"
HF_TOKEN = "hf_simulatedTokenNotARealOne0000000000"  # the default scenario's simulated vault value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def core(api: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api)


@pytest.fixture(scope="module")
def custom(api: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api)


def _cat(core: kubernetes.client.CoreV1Api, pod: str, path: str) -> str:
    return str(
        stream(
            core.connect_get_namespaced_pod_exec,
            pod,
            NAMESPACE,
            command=["cat", path],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
        )
    )


def _spc(name: str, client_id: str, objects: list[str], secret: str | None = None) -> dict[str, Any]:
    array = "".join(f"    - |\n      objectName: {o}\n      objectType: secret\n" for o in objects)
    spec: dict[str, Any] = {
        "provider": "azure",
        "parameters": {
            "usePodIdentity": "false",
            "clientID": client_id,
            "keyvaultName": "kv-aksai-lab",
            "tenantID": TENANT,
            "objects": "array:\n" + array,
        },
    }
    if secret:
        spec["secretObjects"] = [
            {"secretName": secret, "type": "Opaque", "data": [{"objectName": o, "key": o} for o in objects]}
        ]
    return {
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def _pod(name: str, spc: str | None = None, token_seconds: int | None = None) -> dict[str, Any]:
    mounts, volumes = [], []
    if spc:
        mounts.append({"name": "secrets", "mountPath": "/mnt/secrets", "readOnly": True})
        volumes.append(
            {
                "name": "secrets",
                "csi": {
                    "driver": "secrets-store.csi.k8s.io",
                    "readOnly": True,
                    "volumeAttributes": {"secretProviderClass": spc},
                },
            }
        )
    if token_seconds:
        mounts.append({"name": "token", "mountPath": "/var/run/probe", "readOnly": True})
        volumes.append(
            {
                "name": "token",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "path": "token",
                                "audience": "api://AzureADTokenExchange",
                                "expirationSeconds": token_seconds,
                            }
                        }
                    ]
                },
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "serviceAccountName": SA,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "box", "image": "busybox:1.36", "command": ["sleep", "3600"], "volumeMounts": mounts}
            ],
            "volumes": volumes,
        },
    }


@pytest.fixture
def made(
    core: kubernetes.client.CoreV1Api, custom: kubernetes.client.CustomObjectsApi
) -> Iterator[list[tuple[str, str]]]:
    """Objects a test creates, as (kind, name), deleted afterwards."""
    created: list[tuple[str, str]] = []
    yield created
    for kind, name in reversed(created):
        try:
            if kind == "pod":
                core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
            else:
                custom.delete_namespaced_custom_object(
                    "secrets-store.csi.x-k8s.io", "v1", NAMESPACE, "secretproviderclasses", name
                )
        except ApiException as exc:
            if exc.status != 404:
                raise


def _running(pod: Any) -> bool:
    return bool(pod.status and pod.status.phase == "Running")


def _lab_pod(core, made, watch_until) -> str:
    """A pod running as the lab's ServiceAccount that mounts the lab's SecretProviderClass, Running."""
    name = f"t-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod(NAMESPACE, _pod(name, spc="lab-secrets"))
    made.append(("pod", name))
    watch_until(
        core.list_namespaced_pod, _running, f"pod {name} Running", timeout=30,
        namespace=NAMESPACE, field_selector=f"metadata.name={name}",
    )  # fmt: skip
    return name


def test_a_pod_mounts_the_lab_secrets_and_the_secret_is_synced(core, made, watch_until):
    name = _lab_pod(core, made, watch_until)
    assert _digest(_cat(core, name, "/mnt/secrets/HF_TOKEN")) == _digest(HF_TOKEN)
    listed = stream(
        core.connect_get_namespaced_pod_exec, name, NAMESPACE, command=["ls", "/mnt/secrets"],
        stdout=True, stderr=True, stdin=False, tty=False,
    )  # fmt: skip
    assert str(listed).split() == ["FOUNDRY_API_KEY", "HF_TOKEN", "SERVICEBUS_CONN"]
    synced = core.read_namespaced_secret("lab-secrets-k8s", NAMESPACE)
    assert sorted(synced.data) == ["foundry-api-key", "hf-token", "servicebus-conn"]
    assert synced.metadata.labels["secrets-store.csi.k8s.io/managed"] == "true"


def test_secret_objects_exist_only_while_a_pod_mounts_the_class(core, custom, made, watch_until, watch_gone):
    name = f"t-{uuid.uuid4().hex[:6]}"
    custom.create_namespaced_custom_object(
        "secrets-store.csi.x-k8s.io", "v1", NAMESPACE, "secretproviderclasses",
        _spc(name, WORKLOAD_CLIENT_ID, ["hf-token"], secret=f"{name}-synced"),
    )  # fmt: skip
    made.append(("spc", name))
    with pytest.raises(ApiException) as before:
        core.read_namespaced_secret(f"{name}-synced", NAMESPACE)
    assert before.value.status == 404
    core.create_namespaced_pod(NAMESPACE, _pod(name, spc=name))
    made.append(("pod", name))
    watch_until(
        core.list_namespaced_pod, _running, f"pod {name} Running", timeout=30,
        namespace=NAMESPACE, field_selector=f"metadata.name={name}",
    )  # fmt: skip
    assert _digest(_cat(core, name, "/mnt/secrets/hf-token")) == _digest(HF_TOKEN)
    secret = watch_until(
        core.list_namespaced_secret, lambda s: True, "the synced Secret", timeout=10,
        namespace=NAMESPACE, field_selector=f"metadata.name={name}-synced",
    )  # fmt: skip
    assert sorted(secret.data) == ["hf-token"]
    core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    watch_gone(
        core.list_namespaced_secret, "the synced Secret after its last pod", timeout=30,
        namespace=NAMESPACE, field_selector=f"metadata.name={name}-synced",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("client_id", "objects", "says"),
    [
        (KEDA_CLIENT_ID, ["hf-token"], ("AADSTS700213", "ClientAssertionCredential authentication failed")),
        (
            WORKLOAD_CLIENT_ID,
            ["no-such-secret"],
            ("RESPONSE 404: 404 Not Found", "ERROR CODE: SecretNotFound"),
        ),
        ("", ["hf-token"], ("failed to get credentials, nodePublishSecretRef secret is not set",)),
    ],
    ids=["wrong-client-id", "missing-object", "no-client-id"],
)
def test_a_failed_mount_keeps_the_pod_creating_with_the_providers_text(
    core, custom, made, watch_until, client_id, objects, says
):
    name = f"t-{uuid.uuid4().hex[:6]}"
    custom.create_namespaced_custom_object(
        "secrets-store.csi.x-k8s.io", "v1", NAMESPACE, "secretproviderclasses", _spc(name, client_id, objects)
    )
    made.append(("spc", name))
    core.create_namespaced_pod(NAMESPACE, _pod(name, spc=name))
    made.append(("pod", name))
    event = watch_until(
        core.list_namespaced_event, lambda e: e.reason == "FailedMount", f"a FailedMount event of {name}",
        timeout=30, namespace=NAMESPACE, field_selector=f"involvedObject.name={name}",
    )  # fmt: skip
    assert event.type == "Warning" and event.source.component == "kubelet"
    assert event.message.startswith(
        'MountVolume.SetUp failed for volume "secrets" : rpc error: code = Unknown desc = failed to mount '
        f"secrets store objects for pod {NAMESPACE}/{name}, err: rpc error: code = Unknown desc = failed to "
        "mount objects, error: "
    ), event.message
    for fragment in says:
        assert fragment in event.message, event.message
    pod = core.read_namespaced_pod(name, NAMESPACE)
    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.reason == "ContainerCreating"


def test_an_unregistered_csi_driver_fails_the_mount(core, made, watch_until):
    name = f"t-{uuid.uuid4().hex[:6]}"
    body = _pod(name, spc="anything")
    body["spec"]["volumes"][0]["csi"]["driver"] = "disk.csi.example.com"
    core.create_namespaced_pod(NAMESPACE, body)
    made.append(("pod", name))
    event = watch_until(
        core.list_namespaced_event, lambda e: e.reason == "FailedMount", f"a FailedMount event of {name}",
        timeout=30, namespace=NAMESPACE, field_selector=f"involvedObject.name={name}",
    )  # fmt: skip
    assert "driver name disk.csi.example.com not found in the list of registered CSI drivers" in event.message


def _token_rotation(core: kubernetes.client.CoreV1Api, name: str, scale: float) -> tuple[str, str, float]:
    """(first token digest, last token digest, wall seconds waited) after up to 0.8 × 600 cluster seconds
    and a margin."""
    first = _digest(_cat(core, name, "/var/run/probe/token"))
    assert first == _digest(_cat(core, name, "/var/run/probe/token")), "the token changed between two reads"
    deadline = 0.8 * 600 / scale + 6.0
    start = time.monotonic()
    last = first
    while time.monotonic() - start < deadline and last == first:
        time.sleep(0.5)
        last = _digest(_cat(core, name, "/var/run/probe/token"))
    return first, last, time.monotonic() - start


def test_the_kubelet_rotates_a_projected_token_at_80_percent_of_its_lifetime(sim, core, made, watch_until):
    name = f"t-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod(NAMESPACE, _pod(name, token_seconds=600))
    made.append(("pod", name))
    watch_until(
        core.list_namespaced_pod, _running, f"pod {name} Running", timeout=30,
        namespace=NAMESPACE, field_selector=f"metadata.name={name}",
    )  # fmt: skip
    first, last, waited = _token_rotation(core, name, sim.time_scale)
    assert last != first, f"no new token within {waited:.1f} s"
    # not before 80 % of the lifetime (one read's latency of slack)
    assert waited >= 0.8 * 600 / sim.time_scale - 1.5, waited


@pytest.fixture(scope="module")
def unrotated() -> Iterator[SimCluster]:
    with SimCluster(faults=["wi-token-not-rotated"]) as cluster:
        yield cluster


def test_wi_token_not_rotated_keeps_the_first_token(unrotated):
    api = kubernetes.config.new_client_from_config(str(unrotated.kubeconfig_path))
    core = kubernetes.client.CoreV1Api(api)
    name = "no-rotation"
    core.create_namespaced_pod(NAMESPACE, _pod(name, token_seconds=600))
    w = kubernetes.watch.Watch()
    for event in w.stream(
        core.list_namespaced_pod, NAMESPACE, field_selector=f"metadata.name={name}", timeout_seconds=30
    ):
        if _running(event["object"]):
            w.stop()
    first, last, waited = _token_rotation(core, name, unrotated.time_scale)
    assert last == first and waited >= 0.8 * 600 / unrotated.time_scale


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_an_operator_sees_the_mounted_files_with_kubectl_exec(sim, core, made, watch_until):
    name = _lab_pod(core, made, watch_until)
    shown = subprocess.run(
        ["kubectl", "--kubeconfig", str(sim.kubeconfig_path), "exec", "-n", NAMESPACE, name,
         "--", "cat", "/mnt/secrets/HF_TOKEN"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert _digest(shown.stdout) == _digest(HF_TOKEN)
