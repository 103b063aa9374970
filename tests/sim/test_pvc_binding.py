"""PersistentVolumeClaims on the sim: AKS's default StorageClass, WaitForFirstConsumer binding with dynamic
provisioning by disk.csi.azure.com, reclaim on delete, and what `kubectl get pvc,pv` prints."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import kubernetes
import pytest
from kubernetes import watch

from pytest_aksai.sim import SimCluster

KUBECTL = shutil.which("kubectl")


def _claim(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}, **spec},
    }


def _pod(name: str, claim: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1.27",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }


def test_aks_storage_classes(api):
    storage = kubernetes.client.StorageV1Api(api)
    classes = {sc.metadata.name: sc for sc in storage.list_storage_class().items}
    assert {"default", "managed-csi", "managed-csi-premium", "azurefile-csi"} <= set(classes)
    defaults = [
        n
        for n, sc in classes.items()
        if (sc.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert defaults == ["default"]
    managed = classes["managed-csi"]
    assert (managed.provisioner, managed.volume_binding_mode, managed.reclaim_policy) == (
        "disk.csi.azure.com",
        "WaitForFirstConsumer",
        "Delete",
    )


def test_a_claim_binds_when_its_first_consumer_is_scheduled(api, ns, watch_until):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(ns, _claim("data"))
    claim = core.read_namespaced_persistent_volume_claim("data", ns)
    assert claim.spec.storage_class_name == "default"  # the DefaultStorageClass admission plugin
    watch_until(
        core.list_namespaced_event,
        lambda e: e.involved_object.name == "data" and e.reason == "WaitForFirstConsumer",
        "the claim to wait for its first consumer",
        namespace=ns,
    )
    assert core.read_namespaced_persistent_volume_claim("data", ns).status.phase == "Pending"

    core.create_namespaced_pod(ns, _pod("app", "data"))
    bound = watch_until(
        core.list_namespaced_persistent_volume_claim,
        lambda c: c.status.phase == "Bound",
        "the claim to be Bound",
        namespace=ns,
    )
    pod = core.read_namespaced_pod("app", ns)
    assert bound.metadata.annotations["volume.kubernetes.io/selected-node"] == pod.spec.node_name
    assert bound.metadata.annotations["volume.kubernetes.io/storage-provisioner"] == "disk.csi.azure.com"
    assert bound.spec.volume_name == f"pvc-{bound.metadata.uid}"
    assert bound.status.capacity["storage"] == "8Gi" and bound.status.access_modes == ["ReadWriteOnce"]
    pv = core.read_persistent_volume(bound.spec.volume_name)
    assert pv.status.phase == "Bound"
    assert (pv.spec.claim_ref.name, pv.spec.claim_ref.namespace, pv.spec.claim_ref.uid) == (
        "data",
        ns,
        bound.metadata.uid,
    )
    assert pv.spec.csi.driver == "disk.csi.azure.com"
    assert pv.spec.csi.volume_handle.endswith(f"/providers/Microsoft.Compute/disks/{pv.metadata.name}")
    node = core.read_node(pod.spec.node_name)
    [term] = pv.spec.node_affinity.required.node_selector_terms
    assert term.match_expressions[0].values == [node.metadata.labels["topology.disk.csi.azure.com/zone"]]
    reasons = [
        e.reason for e in core.list_namespaced_event(ns, field_selector="involvedObject.name=data").items
    ]
    assert {"ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"} <= set(reasons)

    core.delete_namespaced_pod("app", ns, grace_period_seconds=0)
    core.delete_namespaced_persistent_volume_claim("data", ns)
    assert _gone(core, pv.metadata.name), "the Delete-policy volume outlived its claim"


def _gone(core: kubernetes.client.CoreV1Api, name: str) -> bool:
    """Whether the volume is deleted within 10 wall seconds (a watch, from the listing's version)."""
    listing = core.list_persistent_volume()
    if name not in {v.metadata.name for v in listing.items}:
        return True
    stream = watch.Watch()
    for event in stream.stream(
        core.list_persistent_volume, resource_version=listing.metadata.resource_version, timeout_seconds=10
    ):
        if event["type"] == "DELETED" and event["object"].metadata.name == name:
            stream.stop()
            return True
    return False


def test_an_immediate_class_binds_at_once_and_kubectl_prints_both(sim: SimCluster, api, ns, watch_until):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(
        ns, _claim("shared", storageClassName="azurefile-csi", accessModes=["ReadWriteMany"])
    )
    bound = watch_until(
        core.list_namespaced_persistent_volume_claim,
        lambda c: c.status.phase == "Bound",
        "the azurefile claim to bind without a consumer",
        namespace=ns,
    )
    assert "volume.kubernetes.io/selected-node" not in (bound.metadata.annotations or {})
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: the client half passed")
    shown = subprocess.run(
        [KUBECTL, "--kubeconfig", str(sim.kubeconfig_path), "-n", ns, "get", "pvc,pv"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    pvc_row = next(line for line in lines if line.startswith("persistentvolumeclaim/shared"))
    assert pvc_row.split()[1:6] == ["Bound", bound.spec.volume_name, "8Gi", "RWX", "azurefile-csi"]
    pv_row = next(line for line in lines if line.startswith(f"persistentvolume/{bound.spec.volume_name}"))
    assert pv_row.split()[1:6] == ["8Gi", "RWX", "Delete", "Bound", f"{ns}/shared"]
