"""A minimal NodeClaim provisioner: each `karpenter.sh/v1` NodeClaim becomes a Ready node of its instance type.

It plays the cloud-provider half of Karpenter on AKS (and KAITO's gpu-provisioner) with the lifecycle a
NodeClaim shows on a live cluster, in cluster seconds: the VM is created (`Launched`, with providerID,
capacity and allocatable) after `LAUNCH_SECONDS`; it boots and its kubelet joins (`Registered`, a Node
named after the claim, carrying the claim's labels and taints plus the labels AKS and Karpenter put on GPU
nodes) `REGISTER_SECONDS` later; once the Node is Ready and the NVIDIA device plugin advertises
`nvidia.com/gpu`, the claim is `Initialized` and `Ready`. Deleting a NodeClaim deletes its Node (the claim
owns it and holds the `karpenter.sh/termination` finalizer until the Node is gone).

The instance type comes from the claim's `node.kubernetes.io/instance-type` (or
`karpenter.azure.com/sku-name`) requirement; its figures from the sizing catalog. No NodePool limits,
consolidation or drift: the NAP controller builds on this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pytest_aksai.sim._core._framework import Controller, Obj, Watch
from pytest_aksai.sim._scenarios._vmsizes import VM_SIZES, VmSize, capacity_and_allocatable
from pytest_aksai.sizing import GpuSku, UnknownEntryError, gpu_sku

NODECLAIM_API = "karpenter.sh/v1"
LAUNCH_SECONDS = 75.0
"""VM create call until the instance exists (Azure GPU VMs: one to two minutes)."""
REGISTER_SECONDS = 90.0
"""Boot, GPU driver load and kubelet join after launch."""
TERMINATION_FINALIZER = "karpenter.sh/termination"
LABEL_NODEPOOL = "karpenter.sh/nodepool"
LABEL_REGISTERED = "karpenter.sh/registered"
LABEL_INITIALIZED = "karpenter.sh/initialized"
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_SKU_NAME = "karpenter.azure.com/sku-name"
GPU_RESOURCE = "nvidia.com/gpu"
REGION = "eastus2"
_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
_NODE_RESOURCE_GROUP = "MC_aksai-lab_aksai-sim_eastus"

_CONDITIONS = ("Launched", "Registered", "Initialized", "Ready")
_CLAIM_LABELS = (
    "node.kubernetes.io/instance-type",
    "karpenter.sh/capacity-type",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    LABEL_SKU_NAME,
    "karpenter.azure.com/sku-family",
    "karpenter.azure.com/sku-cpu",
    "karpenter.azure.com/sku-memory",
    "karpenter.azure.com/sku-gpu-name",
    "karpenter.azure.com/sku-gpu-count",
    "karpenter.azure.com/sku-gpu-manufacturer",
)


def set_status_condition(
    conditions: list[Obj], type_: str, status: str, reason: str, message: str, generation: int, now: str
) -> bool:
    """metav1.Condition semantics (meta.SetStatusCondition): the transition time moves only with the status.
    Returns True when anything changed."""
    for cond in conditions:
        if cond.get("type") == type_:
            old = dict(cond)
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
            cond.update(
                {"status": status, "reason": reason, "message": message, "observedGeneration": generation}
            )
            return cond != old
    conditions.append(
        {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": now,
        }
    )
    return True


def _node_event(_self: Controller, _event_type: str, node: Obj) -> list[str]:
    return [
        ref["name"] for ref in node["metadata"].get("ownerReferences") or [] if ref.get("kind") == "NodeClaim"
    ]


def requirement_value(claim: Mapping[str, Any], key: str) -> str | None:
    for req in (claim.get("spec") or {}).get("requirements") or []:
        if req.get("key") == key and req.get("operator") == "In" and req.get("values"):
            return str(req["values"][0])
    return None


def instance_type_of(claim: Mapping[str, Any]) -> str | None:
    return requirement_value(claim, LABEL_INSTANCE_TYPE) or requirement_value(claim, LABEL_SKU_NAME)


def _vm(name: str, sku: GpuSku | None) -> VmSize:
    if name in VM_SIZES:
        return VM_SIZES[name]
    if sku is None:
        raise ValueError(name)
    return VmSize(name, sku.sku_family, sku.vcpu, int(sku.ram_gib))


def node_name_for(claim_name: str) -> str:
    digits = int(hashlib.sha256(claim_name.encode()).hexdigest()[:8], 16) % 10**8
    return f"aks-{claim_name}-{digits:08d}-vmss000000"


def node_labels(instance_type: str, node_name: str, claim: Mapping[str, Any]) -> dict[str, str]:
    """What AKS, Karpenter and GPU feature discovery put on a node of `instance_type`."""
    try:
        sku: GpuSku | None = gpu_sku(instance_type)
    except UnknownEntryError:
        sku = None
    vm = _vm(instance_type, sku)
    zone = f"{REGION}-{int(hashlib.sha256(node_name.encode()).hexdigest()[:2], 16) % 3 + 1}"
    claim_labels = dict((claim.get("metadata") or {}).get("labels") or {})
    pool = claim_labels.get(LABEL_NODEPOOL, "default")
    labels = {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": node_name,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        LABEL_INSTANCE_TYPE: instance_type,
        "beta.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/region": REGION,
        "topology.kubernetes.io/zone": zone,
        "failure-domain.beta.kubernetes.io/region": REGION,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "karpenter.sh/capacity-type": "on-demand",
        LABEL_NODEPOOL: pool,
        LABEL_SKU_NAME: instance_type,
        "karpenter.azure.com/sku-family": vm.family[:1],
        "karpenter.azure.com/sku-cpu": str(vm.vcpus),
        "karpenter.azure.com/sku-memory": str(vm.memory_gib * 1024),
        "kubernetes.azure.com/mode": "user",
        "kubernetes.azure.com/os-sku": "Ubuntu",
        "kubernetes.azure.com/role": "agent",
        "kubernetes.azure.com/cluster": _NODE_RESOURCE_GROUP,
    }
    if sku is not None:
        labels.update(
            {
                "karpenter.azure.com/sku-family": sku.sku_family,
                "karpenter.azure.com/sku-gpu-name": sku.gpu_model,
                "karpenter.azure.com/sku-gpu-count": str(sku.gpu_count),
                "karpenter.azure.com/sku-gpu-manufacturer": "nvidia",
                "kubernetes.azure.com/accelerator": "nvidia",
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.count": str(sku.gpu_count),
            }
        )
        gpu = vm.gpu
        if gpu is not None:
            labels["nvidia.com/gpu.product"] = gpu.product_label
            labels["nvidia.com/gpu.memory"] = str(gpu.memory_mib)
    labels.update(claim_labels)
    return labels


def capacity_for(instance_type: str) -> tuple[dict[str, str], dict[str, str]]:
    try:
        sku: GpuSku | None = gpu_sku(instance_type)
    except UnknownEntryError:
        sku = None
    capacity, allocatable = capacity_and_allocatable(_vm(instance_type, sku))
    if sku is not None:
        capacity[GPU_RESOURCE] = allocatable[GPU_RESOURCE] = str(sku.gpu_count)
    return capacity, allocatable


def known_instance_type(name: str) -> bool:
    if name in VM_SIZES:
        return True
    try:
        gpu_sku(name)
    except UnknownEntryError:
        return False
    return True


class ProvisionerController(Controller):
    name = "nodeclaim-provisioner"
    watches = (Watch(NODECLAIM_API, "nodeclaims"), Watch("v1", "nodes", _node_event))

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._created: dict[str, tuple[str, float]] = {}
        """Claim name → (uid, cluster elapsed seconds when first seen)."""

    async def reconcile(self, key: str) -> float | None:
        claim = self.get(NODECLAIM_API, "nodeclaims", key)
        if claim is None:
            self._created.pop(key, None)
            return None
        meta = claim["metadata"]
        if meta.get("deletionTimestamp"):
            return self._terminate(claim)
        if TERMINATION_FINALIZER not in (meta.get("finalizers") or []):
            meta.setdefault("finalizers", []).append(TERMINATION_FINALIZER)
            claim = self.store.update(self.rt(NODECLAIM_API, "nodeclaims"), claim)
        now = self.clock.elapsed()
        uid, since = self._created.get(key, ("", now))
        if uid != claim["metadata"]["uid"]:
            since = now
            self._created[key] = (claim["metadata"]["uid"], since)
        return self._advance(claim, now - since)

    def _advance(self, claim: Obj, age: float) -> float | None:
        status = claim.setdefault("status", {})
        conditions: list[Obj] = status.setdefault("conditions", [])
        stamp = self.clock.timestamp()
        generation = int(claim["metadata"].get("generation") or 1)

        def cond(type_: str, cstatus: str, reason: str, message: str) -> bool:
            return set_status_condition(conditions, type_, cstatus, reason, message, generation, stamp)

        changed = False
        if not conditions:
            for ctype in _CONDITIONS:
                cond(ctype, "Unknown", "AwaitingReconciliation", "object is awaiting reconciliation")
            changed = True
        instance_type = instance_type_of(claim)
        if instance_type is None or not known_instance_type(instance_type):
            changed |= cond(
                "Launched",
                "False",
                "LaunchFailed",
                f"creating instance, insufficient capacity, all requested instance types were unavailable during "
                f"launch (requested {instance_type or 'no instance type'}; the simulated cloud offers the sizes of "
                "the sizing catalog)",
            )
            if changed:
                self.store.update_status(self.rt(NODECLAIM_API, "nodeclaims"), claim)
            return None
        name = claim["metadata"]["name"]
        node_name = status.get("nodeName") or node_name_for(name)
        next_due: float | None = None
        if age >= LAUNCH_SECONDS and not status.get("providerID"):
            capacity, allocatable = capacity_for(instance_type)
            status.update(
                {
                    "providerID": f"azure:///subscriptions/{_SUBSCRIPTION}/resourceGroups/{_NODE_RESOURCE_GROUP}/"
                    f"providers/Microsoft.Compute/virtualMachineScaleSets/{node_name[:-10]}/"
                    "virtualMachines/0",
                    "imageID": "/CommunityGalleries/AKSUbuntu-38d80f77-467a-481f-a8d4-09b6d4220bd2/images/"
                    "2204gen2containerd/versions/202501.12.0",
                    "capacity": capacity,
                    "allocatable": allocatable,
                }
            )
            cond("Launched", "True", "Launched", "")
            self.event(
                claim,
                "Normal",
                "Launched",
                "Status condition transitioned, Type: Launched, Status: True",
                "karpenter",
            )
            changed = True
        elif age < LAUNCH_SECONDS:
            next_due = LAUNCH_SECONDS - age
        node = self.get("v1", "nodes", node_name)
        if (
            status.get("providerID")
            and age >= LAUNCH_SECONDS + REGISTER_SECONDS
            and node is None
            and not status.get("nodeName")
        ):
            node = self._create_node(claim, instance_type, node_name)
            status["nodeName"] = node_name
            cond("Registered", "True", "Registered", "")
            changed = True
        elif status.get("providerID") and not status.get("nodeName"):
            next_due = LAUNCH_SECONDS + REGISTER_SECONDS - age
        if (
            node is not None
            and self._node_initialized(node)
            and not self._condition_true(conditions, "Initialized")
        ):
            cond("Initialized", "True", "Initialized", "")
            cond("Ready", "True", "Ready", "")
            self._label_node(node, {LABEL_INITIALIZED: "true"})
            changed = True
        if changed:
            self.store.update_status(self.rt(NODECLAIM_API, "nodeclaims"), claim)
        if status.get("providerID"):
            self._label_claim(name, instance_type, node_name)
        return next_due

    def _label_claim(self, name: str, instance_type: str, node_name: str) -> None:
        """Karpenter labels a launched NodeClaim with its instance's well-known labels (its printer columns)."""
        rt = self.rt(NODECLAIM_API, "nodeclaims")
        fresh = self.store.get(rt, name)
        labels = fresh["metadata"].setdefault("labels", {})
        wanted = {k: v for k, v in node_labels(instance_type, node_name, fresh).items() if k in _CLAIM_LABELS}
        if any(labels.get(k) != v for k, v in wanted.items()):
            labels.update(wanted)
            self.store.update(rt, fresh)

    @staticmethod
    def _condition_true(conditions: list[Obj], ctype: str) -> bool:
        return any(c.get("type") == ctype and c.get("status") == "True" for c in conditions)

    @staticmethod
    def _node_initialized(node: Obj) -> bool:
        status = node.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        gpu_node = (node["metadata"].get("labels") or {}).get("nvidia.com/gpu.present") == "true"
        return ready and (not gpu_node or GPU_RESOURCE in (status.get("allocatable") or {}))

    def _create_node(self, claim: Obj, instance_type: str, node_name: str) -> Obj:
        capacity, allocatable = capacity_for(instance_type)
        labels = node_labels(instance_type, node_name, claim)
        labels[LABEL_REGISTERED] = "true"
        labels["kubernetes.azure.com/agentpool"] = labels["agentpool"] = claim["metadata"]["name"]
        spec: Obj = {"providerID": claim["status"]["providerID"]}
        taints = list((claim.get("spec") or {}).get("taints") or [])
        if taints:
            spec["taints"] = taints
        node: Obj = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node_name,
                "labels": labels,
                "annotations": {
                    "karpenter.sh/nodepool-hash-version": "v3",
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
                "ownerReferences": [
                    {
                        "apiVersion": NODECLAIM_API,
                        "kind": "NodeClaim",
                        "name": claim["metadata"]["name"],
                        "uid": claim["metadata"]["uid"],
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
            "status": {"capacity": capacity, "allocatable": allocatable},
        }
        created = self.store.create(self.rt("v1", "nodes"), node)
        if not (created.get("status") or {}).get("capacity"):
            created["status"] = {"capacity": capacity, "allocatable": allocatable}
            created = self.store.update_status(self.rt("v1", "nodes"), created)
        self.event(
            claim,
            "Normal",
            "Registered",
            "Status condition transitioned, Type: Registered, Status: True",
            "karpenter",
        )
        return created

    def _label_node(self, node: Obj, labels: Mapping[str, str]) -> None:
        current = node["metadata"].get("labels") or {}
        if all(current.get(k) == v for k, v in labels.items()):
            return
        fresh = self.store.get(self.rt("v1", "nodes"), node["metadata"]["name"])
        fresh["metadata"].setdefault("labels", {}).update(labels)
        self.store.update(self.rt("v1", "nodes"), fresh)

    def _terminate(self, claim: Obj) -> float | None:
        name = claim["metadata"]["name"]
        node_name = (claim.get("status") or {}).get("nodeName")
        if node_name and self.get("v1", "nodes", node_name) is not None:
            node = self.get("v1", "nodes", node_name)
            if node is not None and not node["metadata"].get("deletionTimestamp"):
                self.store.delete(self.rt("v1", "nodes"), node_name)
            if self.get("v1", "nodes", node_name) is not None:
                return 1.0
        finalizers = [f for f in claim["metadata"].get("finalizers") or [] if f != TERMINATION_FINALIZER]
        if finalizers != (claim["metadata"].get("finalizers") or []):
            claim["metadata"]["finalizers"] = finalizers
            self.store.update(self.rt(NODECLAIM_API, "nodeclaims"), claim)
        self._created.pop(name, None)
        return None
