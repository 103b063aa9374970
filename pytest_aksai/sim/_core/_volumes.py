"""PersistentVolumeClaim binding: the PV controller (kube-controller-manager's `persistentvolume-binder`) and
the CSI external-provisioner of the AKS storage classes (`disk.csi.azure.com`, `file.csi.azure.com`).

As upstream:

- A claim of a `WaitForFirstConsumer` class stays `Pending` (event `WaitForFirstConsumer`, "waiting for first
  consumer to be created before binding") until a pod that mounts it is scheduled; the node is written to
  the claim's `volume.kubernetes.io/selected-node` and the provisioner creates the volume in that node's
  zone. A claim of an `Immediate` class is provisioned at once.
- The provisioner's events (`ExternalProvisioning`, `Provisioning`, `ProvisioningSucceeded`), then a PV
  `pvc-<claim uid>` (capacity and access modes of the claim, the class's reclaim policy, CSI source with
  the Azure disk's resource ID, zone node affinity for disks, `pv.kubernetes.io/provisioned-by`), bound both
  ways: the claim gets `spec.volumeName`, phase `Bound`, `status.capacity` and the bind annotations; the
  volume a `claimRef` and phase `Bound`.
- A claim that names an existing Available volume (`spec.volumeName`) or matches one (class, access modes,
  size) binds to it without provisioning.
- When its claim is deleted a volume with `Delete` goes away; with `Retain` it turns `Released`.

Left out: the scheduler's volume-topology filtering (the pod is placed first, then the volume follows it;
upstream decides both together), attach/detach, resize, snapshots and the kubelet's mount wait.
"""

from __future__ import annotations

from pytest_aksai.sim._apiserver import ApiError
from pytest_aksai.sim._core import _resources
from pytest_aksai.sim._core._framework import Controller, Obj, Watch, object_key, split_key

SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONER_ANNOTATIONS = (
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
)
COMPONENT = "persistentvolume-controller"
_ZONE_LABEL = "topology.disk.csi.azure.com/zone"


def _claims_of_pod(self: VolumeController, _event: str, pod: Obj) -> list[str]:
    namespace = pod["metadata"].get("namespace") or "default"
    return [
        f"{namespace}/{v['persistentVolumeClaim']['claimName']}"
        for v in (pod.get("spec") or {}).get("volumes") or []
        if (v.get("persistentVolumeClaim") or {}).get("claimName")
    ]


def _claim_of_volume(_self: VolumeController, _event: str, pv: Obj) -> list[str]:
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    return (
        [f"{ref.get('namespace')}/{ref.get('name')}"] if ref.get("name") else [f"pv:{pv['metadata']['name']}"]
    )


class VolumeController(Controller):
    name = "persistentvolume"
    watches = (
        Watch("v1", "persistentvolumeclaims"),
        Watch("v1", "pods", _claims_of_pod),
        Watch("v1", "persistentvolumes", _claim_of_volume),
    )

    async def reconcile(self, key: str) -> float | None:
        if key.startswith("pv:"):
            self._reclaim(key[3:])
            return None
        claim = self.get("v1", "persistentvolumeclaims", key)
        if claim is None:
            namespace, name = split_key(key)
            for pv in self.list("v1", "persistentvolumes"):
                ref = (pv.get("spec") or {}).get("claimRef") or {}
                if (ref.get("namespace"), ref.get("name")) == (namespace, name):
                    self._reclaim(pv["metadata"]["name"])
            return None
        if (claim.get("status") or {}).get("phase") == "Bound" or claim["metadata"].get("deletionTimestamp"):
            return None
        namespace = split_key(key)[0] or "default"
        spec = claim.get("spec") or {}
        pv_rt = self.rt("v1", "persistentvolumes")
        if spec.get("volumeName"):
            named = self.store.try_get(pv_rt, spec["volumeName"])
            if named is not None:
                self._bind(claim, named)
            return None
        class_name = spec.get("storageClassName") or ""
        match = self._matching_volume(claim, class_name)
        if match is not None:
            self._bind(claim, match)
            return None
        sc = (
            self.store.try_get(self.rt("storage.k8s.io/v1", "storageclasses"), class_name)
            if class_name
            else None
        )
        if sc is None:
            if class_name:
                self._event_once(
                    claim,
                    "Warning",
                    "ProvisioningFailed",
                    f'storageclass.storage.k8s.io "{class_name}" not found',
                )
            else:
                self._event_once(
                    claim,
                    "Normal",
                    "FailedBinding",
                    "no persistent volumes available for this claim and no storage class is set",
                )
            return None
        node_name = (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE)
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not node_name:
            node_name = self._consumer_node(namespace, claim["metadata"]["name"])
            if node_name is None:
                self._event_once(
                    claim,
                    "Normal",
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding",
                )
                return None
            self._annotate(claim, {SELECTED_NODE: node_name})
        self._provision(claim, sc, node_name)
        return None

    # ---- helpers -----------------------------------------------------------------------------------------
    def _event_once(self, claim: Obj, type_: str, reason: str, message: str) -> None:
        self.event(claim, type_, reason, message, COMPONENT)

    def _consumer_node(self, namespace: str, claim: str) -> str | None:
        for pod in self.list("v1", "pods", namespace):
            node = (pod.get("spec") or {}).get("nodeName")
            if node and f"{namespace}/{claim}" in _claims_of_pod(self, "", pod):
                return str(node)
        return None

    def _annotate(self, claim: Obj, annotations: dict[str, str]) -> None:
        self.store.patch(
            self.rt("v1", "persistentvolumeclaims"),
            claim["metadata"]["name"],
            {"metadata": {"annotations": annotations}},
            "merge",
            namespace=claim["metadata"]["namespace"],
        )

    def _matching_volume(self, claim: Obj, class_name: str) -> Obj | None:
        spec = claim.get("spec") or {}
        wanted = _resources.parse(((spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
        modes = set(spec.get("accessModes") or [])
        best: Obj | None = None
        for pv in self.list("v1", "persistentvolumes"):
            pv_spec = pv.get("spec") or {}
            if (pv.get("status") or {}).get("phase") != "Available" or pv_spec.get("claimRef"):
                continue
            if (pv_spec.get("storageClassName") or "") != class_name or not modes <= set(
                pv_spec.get("accessModes") or []
            ):
                continue
            size = _resources.parse((pv_spec.get("capacity") or {}).get("storage", "0"))
            if size >= wanted and (
                best is None or size < _resources.parse(best["spec"]["capacity"]["storage"])
            ):
                best = pv
        return best

    def _provision(self, claim: Obj, sc: Obj, node_name: str | None) -> None:
        meta = claim["metadata"]
        namespace = meta["namespace"]
        provisioner = str(sc.get("provisioner") or "")
        self._annotate(claim, dict.fromkeys(PROVISIONER_ANNOTATIONS, provisioner))
        self.event(
            claim,
            "Normal",
            "ExternalProvisioning",
            f"Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually "
            "by the system administrator. If volume creation is delayed, please verify that the provisioner is "
            "running and correctly registered.",
            COMPONENT,
        )
        component = f"{provisioner}_csi-{provisioner.split('.')[0]}-node_{meta['uid'][:8]}"
        self.event(
            claim,
            "Normal",
            "Provisioning",
            f'External provisioner is provisioning volume for claim "{namespace}/{meta["name"]}"',
            component,
        )
        name = f"pvc-{meta['uid']}"
        spec = claim.get("spec") or {}
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        node = self.store.try_get(self.rt("v1", "nodes"), node_name) if node_name else None
        group = _node_resource_group(node) or "MC_rg-aksai-lab_aksai-lab_eastus2"
        zone = ((node or {}).get("metadata", {}).get("labels") or {}).get(_ZONE_LABEL)
        gib = max(1, int(_resources.parse(storage) / 2**30))
        if provisioner == "disk.csi.azure.com":
            handle = f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{group}/providers/Microsoft.Compute/disks/{name}"
        else:
            handle = f"{group}#f{meta['uid'][:20].replace('-', '')}#{name}###{namespace}"
        pv: Obj = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": name,
                "annotations": {
                    "pv.kubernetes.io/provisioned-by": provisioner,
                    "volume.kubernetes.io/provisioner-deletion-secret-name": "",
                    "volume.kubernetes.io/provisioner-deletion-secret-namespace": "",
                },
            },
            "spec": {
                "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                "capacity": {"storage": storage},
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
                "storageClassName": sc["metadata"]["name"],
                "volumeMode": spec.get("volumeMode") or "Filesystem",
                "csi": {
                    "driver": provisioner,
                    "volumeHandle": handle,
                    "volumeAttributes": {
                        **{str(k): str(v) for k, v in (sc.get("parameters") or {}).items()},
                        "csi.storage.k8s.io/pv/name": name,
                        "csi.storage.k8s.io/pvc/name": meta["name"],
                        "csi.storage.k8s.io/pvc/namespace": namespace,
                        "requestedsizegib": str(gib),
                    },
                    **({"fsType": "ext4"} if provisioner == "disk.csi.azure.com" else {}),
                },
            },
        }
        if sc.get("mountOptions"):
            pv["spec"]["mountOptions"] = list(sc["mountOptions"])
        if zone and provisioner == "disk.csi.azure.com":
            pv["spec"]["nodeAffinity"] = {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": _ZONE_LABEL, "operator": "In", "values": [zone]}]}
                    ]
                }
            }
        try:
            created = self.store.create(self.rt("v1", "persistentvolumes"), pv)
        except ApiError as exc:
            if exc.code != 409:
                raise
            created = self.store.get(self.rt("v1", "persistentvolumes"), name)
        self.event(
            claim, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {name}", component
        )
        fresh = self.get("v1", "persistentvolumeclaims", object_key(claim))
        if fresh is not None:
            self._bind(fresh, created)

    def _bind(self, claim: Obj, pv: Obj) -> None:
        meta = claim["metadata"]
        pv_rt = self.rt("v1", "persistentvolumes")
        pvc_rt = self.rt("v1", "persistentvolumeclaims")
        pv = self.store.get(pv_rt, pv["metadata"]["name"])
        pv["spec"]["claimRef"] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "resourceVersion": meta.get("resourceVersion", ""),
            "uid": meta["uid"],
        }
        pv["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bound-by-controller"] = "yes"
        pv = self.store.update(pv_rt, pv)
        pv["status"] = {"phase": "Bound"}
        self.store.update_status(pv_rt, pv)
        claim = self.store.get(pvc_rt, meta["name"], meta["namespace"])
        claim["spec"]["volumeName"] = pv["metadata"]["name"]
        annotations = claim["metadata"].setdefault("annotations", {})
        annotations["pv.kubernetes.io/bind-completed"] = "yes"
        annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
        claim = self.store.update(pvc_rt, claim, namespace=meta["namespace"])
        claim["status"] = {
            "phase": "Bound",
            "accessModes": list(pv["spec"].get("accessModes") or []),
            "capacity": dict(pv["spec"].get("capacity") or {}),
        }
        self.store.update_status(pvc_rt, claim, namespace=meta["namespace"])

    def _reclaim(self, name: str) -> None:
        pv_rt = self.rt("v1", "persistentvolumes")
        pv = self.store.try_get(pv_rt, name)
        if pv is None:
            return
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if not ref.get("name") or (pv.get("status") or {}).get("phase") != "Bound":
            return
        claim = self.store.try_get(self.rt("v1", "persistentvolumeclaims"), ref["name"], ref.get("namespace"))
        if claim is not None and claim["metadata"].get("uid") == ref.get("uid"):
            return
        if (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete":
            self.store.delete(pv_rt, name)
        else:
            pv["status"] = {"phase": "Released"}
            self.store.update_status(pv_rt, pv)


def _node_resource_group(node: Obj | None) -> str | None:
    provider = ((node or {}).get("spec") or {}).get("providerID") or ""
    parts = provider.split("/")
    if "resourceGroups" in parts:
        return parts[parts.index("resourceGroups") + 1]
    return None
