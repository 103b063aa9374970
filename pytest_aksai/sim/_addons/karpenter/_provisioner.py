"""The NodeClaim lifecycle: Karpenter's `nodeclaim/lifecycle` controllers plus the Azure cloud provider.

Every `karpenter.sh/v1` NodeClaim (made by the NodePool provisioner or by KAITO) goes through the phases a
NodeClaim shows on AKS, in cluster seconds, with upstream's condition types and reasons:

- `Launched`: the VM create call returns after `LAUNCH_SECONDS`. The cloud provider picks the cheapest
  offering (instance type × capacity type × zone) the claim's requirements allow. A create error leaves
  `Launched=Unknown` with the provider's reason (`SubscriptionQuotaReached`, ...) and retries; a claim not
  launched within `LAUNCH_TIMEOUT` (5 min) is deleted (liveness), as upstream.
- `Registered`: the VM boots and its kubelet joins after a per-family delay (`REGISTER_SECONDS`): a Node
  named after the claim with every label, taint and allocatable an AKS NAP node carries, registered with
  `karpenter.sh/unregistered:NoExecute`, which Karpenter removes once it has synced the claim's labels and
  taints. No node within `REGISTRATION_TIMEOUT` (15 min) deletes the claim.
- `Initialized`: the Node is Ready and every extended resource the instance type promises is advertised;
  the NVIDIA device plugin advertises `nvidia.com/gpu` `DEVICE_PLUGIN_SECONDS` after the node is Ready.
  Until then `Initialized=Unknown` with `NodeNotReady` / `ResourceNotRegistered`; upstream has no
  initialization timeout, so a GPU that is never advertised leaves the claim there for good.
- `Ready` follows the three; `Consolidatable` is True once the NodePool's `consolidateAfter` has passed
  since `status.lastPodEventTime` (pods bound to or leaving the node), or since Initialized.

Deleting a NodeClaim (the `karpenter.sh/termination` finalizer) taints its node
`karpenter.sh/disrupted:NoSchedule`, drains it (deletes its pods but DaemonSet pods), deletes the Node and,
`VM_DELETE_SECONDS` later, the VM: then the finalizer goes. A pod whose `karpenter.sh/do-not-disrupt` holds is
not evicted: the drain waits on it (`FailedDraining`) until it ends or the NodeClaim's `terminationGracePeriod`
(from the NodePool's template) runs out, when it is deleted anyway (`Disrupted`), as upstream's terminator.

Spot eviction (the `nap-spot-eviction` fault): Azure reclaims a spot VM with eviction policy `Delete` (the
provider's setting), here as soon as a workload pod is bound to its node. The Azure eviction notice (~30 s, a
Scheduled Event) is not acted on: NodeRepair, which would, is off by default. The kubelet goes with the VM, so
the node lifecycle controller turns the node `Unknown` ("Kubelet stopped posting node status.") after its
grace period; the cloud node lifecycle controller then deletes the Node ("Deleting node <n> because it does
not exist in the cloud provider"), Karpenter's node termination deletes the NodeClaim, finds the instance
gone and drains nothing, and the pod garbage collector removes the node's pods. Nothing replaces a bare pod.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pytest_aksai.sim._addons.karpenter import _disruption as disruption
from pytest_aksai.sim._addons.karpenter._disruption import parse_time
from pytest_aksai.sim._core._framework import Controller, Obj, Watch
from pytest_aksai.sim._core._podutil import is_terminal
from pytest_aksai.sim._scenarios._vmsizes import VM_SIZES, VmSize, capacity_and_allocatable
from pytest_aksai.sim.contract import Fault
from pytest_aksai.sizing import GpuSku, UnknownEntryError, compatible, gpu_sku, instance_type

NODECLAIM_API = "karpenter.sh/v1"
NODEPOOL_API = "karpenter.sh/v1"
LAUNCH_SECONDS = 60.0
"""VM create call until the instance exists."""
REGISTER_SECONDS: dict[str, float] = {"D": 60.0, "NC": 150.0, "NV": 180.0, "ND": 240.0}
"""Boot, GPU driver install and kubelet join after launch, by VM family (GPU VMs: 3–5 min to Registered)."""
REGISTER_SECONDS_BY_GPU = {"A100": 210.0, "H100": 240.0}
DEVICE_PLUGIN_SECONDS = 20.0
"""From node Ready until the NVIDIA device plugin advertises `nvidia.com/gpu`."""
LAUNCH_RETRY_SECONDS = 30.0
LAUNCH_TIMEOUT = 300.0
REGISTRATION_TIMEOUT = 900.0
VM_DELETE_SECONDS = 30.0
POD_EVENT_DEDUPE_SECONDS = 5.0
CLOUD_NODE_MONITOR_SECONDS = 5.0
"""The cloud node lifecycle controller's period (cloud-controller-manager's `--node-monitor-period`)."""
TERMINATION_FINALIZER = "karpenter.sh/termination"
LABEL_NODEPOOL = "karpenter.sh/nodepool"
LABEL_REGISTERED = "karpenter.sh/registered"
LABEL_INITIALIZED = "karpenter.sh/initialized"
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_SKU_NAME = "karpenter.azure.com/sku-name"
LABEL_CAPACITY_TYPE = "karpenter.sh/capacity-type"
LABEL_ZONE = "topology.kubernetes.io/zone"
TAINT_UNREGISTERED = {"key": "karpenter.sh/unregistered", "effect": "NoExecute"}
TAINT_DISRUPTED = {"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}
GPU_RESOURCE = "nvidia.com/gpu"
REGION = "eastus2"
SPOT_PRICE_FACTOR = 0.2
"""The simulated spot price as a share of on-demand: the lab's own estimate (~80% savings); Azure's spot
prices move and no upstream source pins them."""
UNPRICED = 1e6
"""The price an instance type without a catalog price ranks at: after every priced one."""
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
    "karpenter.azure.com/sku-series",
    "karpenter.azure.com/sku-version",
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


def clear_condition(conditions: list[Obj], type_: str) -> bool:
    before = len(conditions)
    conditions[:] = [c for c in conditions if c.get("type") != type_]
    return len(conditions) != before


def condition_of(obj: Mapping[str, Any], type_: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def condition_true(obj: Mapping[str, Any], type_: str) -> bool:
    return (condition_of(obj, type_) or {}).get("status") == "True"


def _node_event(_self: Controller, _event_type: str, node: Obj) -> list[str]:
    return [
        ref["name"] for ref in node["metadata"].get("ownerReferences") or [] if ref.get("kind") == "NodeClaim"
    ]


def _pod_event(self: ProvisionerController, event_type: str, pod: Obj) -> list[str]:
    node_name = (pod.get("spec") or {}).get("nodeName")
    claim = self.claim_of_node.get(node_name or "")
    if claim is None:
        return []
    uid = pod["metadata"].get("uid", "")
    state = (bool(node_name), is_terminal(pod), event_type == "DELETED")
    if self._pod_states.get(uid) != state:
        self._pod_states[uid] = state
        if event_type == "DELETED":
            self._pod_states.pop(uid, None)
        self._pod_events.add(claim)
        return [claim]
    return []


def _nodepool_event(self: ProvisionerController, _event_type: str, pool: Obj) -> list[str]:
    name = pool["metadata"]["name"]
    return [c for c, p in self.pool_of_claim.items() if p == name]


def requirement_values(claim: Mapping[str, Any], key: str) -> list[str]:
    for req in (claim.get("spec") or {}).get("requirements") or []:
        if req.get("key") == key and req.get("operator") == "In" and req.get("values"):
            return [str(v) for v in req["values"]]
    return []


def requirement_value(claim: Mapping[str, Any], key: str) -> str | None:
    values = requirement_values(claim, key)
    return values[0] if values else None


def instance_type_of(claim: Mapping[str, Any]) -> str | None:
    """The launched instance type (its label), else the first the requirements allow."""
    launched = ((claim.get("metadata") or {}).get("labels") or {}).get(LABEL_INSTANCE_TYPE)
    return (
        launched or requirement_value(claim, LABEL_INSTANCE_TYPE) or requirement_value(claim, LABEL_SKU_NAME)
    )


def _vm(name: str, sku: GpuSku | None) -> VmSize:
    if name in VM_SIZES:
        return VM_SIZES[name]
    if sku is None:
        raise ValueError(name)
    return VmSize(name, sku.sku_family, sku.vcpu, int(sku.ram_gib))


def node_name_for(claim_name: str) -> str:
    digits = int(hashlib.sha256(claim_name.encode()).hexdigest()[:8], 16) % 10**8
    return f"aks-{claim_name}-{digits:08d}-vmss000000"


def _gpu_sku(name: str) -> GpuSku | None:
    try:
        return gpu_sku(name)
    except UnknownEntryError:
        return None


def node_labels(
    instance_type_name: str,
    node_name: str,
    claim: Mapping[str, Any],
    capacity_type: str = "on-demand",
    zone: str | None = None,
) -> dict[str, str]:
    """What AKS, Karpenter and GPU feature discovery put on a node of `instance_type_name`."""
    sku = _gpu_sku(instance_type_name)
    vm = _vm(instance_type_name, sku)
    zone = zone or f"{REGION}-{int(hashlib.sha256(node_name.encode()).hexdigest()[:2], 16) % 3 + 1}"
    claim_labels = dict((claim.get("metadata") or {}).get("labels") or {})
    pool = claim_labels.get(LABEL_NODEPOOL, "default")
    labels = {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": node_name,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        LABEL_INSTANCE_TYPE: instance_type_name,
        "beta.kubernetes.io/instance-type": instance_type_name,
        "topology.kubernetes.io/region": REGION,
        "topology.kubernetes.io/zone": zone,
        "failure-domain.beta.kubernetes.io/region": REGION,
        "failure-domain.beta.kubernetes.io/zone": zone,
        LABEL_CAPACITY_TYPE: capacity_type,
        LABEL_NODEPOOL: pool,
        LABEL_SKU_NAME: instance_type_name,
        "karpenter.azure.com/sku-family": vm.family[:1],
        "karpenter.azure.com/sku-cpu": str(vm.vcpus),
        "karpenter.azure.com/sku-memory": str(vm.memory_gib * 1024),
        "kubernetes.azure.com/mode": "user",
        "kubernetes.azure.com/os-sku": "Ubuntu",
        "kubernetes.azure.com/role": "agent",
        "kubernetes.azure.com/cluster": _NODE_RESOURCE_GROUP,
    }
    known = instance_type(instance_type_name)
    if known is not None:
        labels.update({k: v for k, v in known.labels.items() if k.startswith("karpenter.azure.com/")})
    if capacity_type == "spot":
        labels["kubernetes.azure.com/scalesetpriority"] = "spot"
        labels["kubernetes.azure.com/priority"] = "spot"
    if sku is not None:
        labels.update(
            {
                "karpenter.azure.com/sku-family": sku.sku_family,
                "karpenter.azure.com/sku-gpu-name": sku.gpu_model.split("-")[0],
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


def capacity_for(instance_type_name: str) -> tuple[dict[str, str], dict[str, str]]:
    sku = _gpu_sku(instance_type_name)
    capacity, allocatable = capacity_and_allocatable(_vm(instance_type_name, sku))
    if sku is not None:
        capacity[GPU_RESOURCE] = allocatable[GPU_RESOURCE] = str(sku.gpu_count)
    return capacity, allocatable


def known_instance_type(name: str) -> bool:
    return name in VM_SIZES or _gpu_sku(name) is not None


def register_seconds(instance_type_name: str) -> float:
    sku = _gpu_sku(instance_type_name)
    if sku is not None and sku.gpu_model.split("-")[0] in REGISTER_SECONDS_BY_GPU:
        return REGISTER_SECONDS_BY_GPU[sku.gpu_model.split("-")[0]]
    family = VM_SIZES[instance_type_name].family if instance_type_name in VM_SIZES else "D"
    return REGISTER_SECONDS.get(family, REGISTER_SECONDS.get(family[:1], 60.0))


def offering_price(name: str, capacity_type: str) -> float:
    known = instance_type(name)
    if known is None or known.price_per_hour is None:
        return UNPRICED
    return known.price_per_hour * (SPOT_PRICE_FACTOR if capacity_type == "spot" else 1.0)


def choose_offering(claim: Mapping[str, Any], priciest: bool = False) -> tuple[str, str, str] | None:
    """(instance type, capacity type, zone): the cheapest offering the claim's requirements allow."""
    names = requirement_values(claim, LABEL_INSTANCE_TYPE) or requirement_values(claim, LABEL_SKU_NAME)
    reqs = [r for r in (claim.get("spec") or {}).get("requirements") or [] if r.get("key") != LABEL_NODEPOOL]
    offers: list[tuple[float, str, str, str]] = []
    for name in names:
        known = instance_type(name)
        if known is None:
            continue
        for capacity_type, zone in compatible(known, reqs):
            offers.append(
                (offering_price(known.name, capacity_type), known.name, capacity_type, f"{REGION}-{zone}")
            )
    if not offers:
        return None
    offers.sort()
    if priciest:
        # The `nap-pricier-sku` fault: the most expensive instance type (at its cheapest offering).
        by_type: dict[str, tuple[float, str, str, str]] = {}
        for offer in offers:
            if offer[0] < UNPRICED:  # the priciest of the types with a known price
                by_type.setdefault(offer[1], offer)
        if not by_type:
            by_type = {offers[0][1]: offers[0]}
        _, name, capacity_type, zone = max(by_type.values())
        return name, capacity_type, zone
    _, name, capacity_type, zone = offers[0]
    return name, capacity_type, zone


class ProvisionerController(Controller):
    name = "nodeclaim-lifecycle"
    watches = (
        Watch(NODECLAIM_API, "nodeclaims"),
        Watch("v1", "nodes", _node_event),
        Watch("v1", "pods", _pod_event),
        Watch(NODEPOOL_API, "nodepools", _nodepool_event),
    )

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._created: dict[str, tuple[str, float]] = {}
        """Claim name → (uid, cluster elapsed seconds when first seen)."""
        self.claim_of_node: dict[str, str] = {}
        self.pool_of_claim: dict[str, str] = {}
        self._pod_states: dict[str, tuple[bool, bool, bool]] = {}
        self._pod_events: set[str] = set()
        self._terminating_since: dict[str, float] = {}
        self._evicted: set[str] = set()
        """NodeClaims whose spot VM Azure evicted."""
        self._drain_reported: dict[str, int] = {}

    def _fault_applies(self, fault: Fault, claim: Mapping[str, Any]) -> bool:
        """NAP faults hit the NodeClaims of the cluster's NodePools; KAITO's NodeClaims, which name no NodePool of
        the cluster, are spared. A parameter (`karpenter.sh/nodepool` values, comma-separated) picks the claims
        instead: `kaito` hits KAITO's."""
        if not self.ctx.faults.is_active(fault):
            return False
        pool = ((claim.get("metadata") or {}).get("labels") or {}).get(LABEL_NODEPOOL, "")
        names = [n.strip() for n in self.ctx.faults.parameter(fault).split(",") if n.strip()]
        if names:
            return pool in names
        return self.get(NODEPOOL_API, "nodepools", pool) is not None

    async def reconcile(self, key: str) -> float | None:
        claim = self.get(NODECLAIM_API, "nodeclaims", key)
        if claim is None:
            self._created.pop(key, None)
            self.pool_of_claim.pop(key, None)
            self._terminating_since.pop(key, None)
            for node, owner in list(self.claim_of_node.items()):
                if owner == key:
                    del self.claim_of_node[node]
            return None
        meta = claim["metadata"]
        self.pool_of_claim[key] = (meta.get("labels") or {}).get(LABEL_NODEPOOL, "")
        self.claim_of_node[(claim.get("status") or {}).get("nodeName") or node_name_for(key)] = key
        if meta.get("deletionTimestamp"):
            return self._terminate(claim)
        evicted, wait = self._spot_eviction(claim)
        if evicted:
            return wait
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
        name = claim["metadata"]["name"]

        def cond(type_: str, cstatus: str, reason: str, message: str = "") -> bool:
            return set_status_condition(conditions, type_, cstatus, reason, message, generation, stamp)

        changed = False
        if not conditions:
            for ctype in _CONDITIONS:
                cond(ctype, "Unknown", "AwaitingReconciliation", "object is awaiting reconciliation")
            changed = True
        due: list[float] = []
        if not status.get("providerID"):
            if age >= LAUNCH_TIMEOUT:
                self.event(
                    claim, "Normal", "LaunchTimeout", "NodeClaim was not launched within 5m0s", "karpenter"
                )
                self.store.delete(self.rt(NODECLAIM_API, "nodeclaims"), name)
                return None
            if age < LAUNCH_SECONDS:
                if changed:
                    self.store.update_status(self.rt(NODECLAIM_API, "nodeclaims"), claim)
                return LAUNCH_SECONDS - age
            if choose_offering(claim) is None:
                # InsufficientCapacityError: upstream deletes the NodeClaim and publishes the error.
                requested = ", ".join(
                    requirement_values(claim, LABEL_INSTANCE_TYPE)
                    or requirement_values(claim, LABEL_SKU_NAME)
                )
                self.event(
                    claim,
                    "Warning",
                    "InsufficientCapacityError",
                    f"NodeClaim {name} event: creating instance, insufficient capacity, all requested instance "
                    f"types were unavailable during launch (requested {requested or 'no instance type'})",
                    "karpenter",
                )
                self.store.delete(self.rt(NODECLAIM_API, "nodeclaims"), name)
                return None
            failure = self._launch_failure(claim)
            if failure is not None:
                reason, message = failure
                if cond("Launched", "Unknown", reason, message) or changed:
                    self.store.update_status(self.rt(NODECLAIM_API, "nodeclaims"), claim)
                return min(LAUNCH_RETRY_SECONDS, max(LAUNCH_TIMEOUT - age, 0.1))
            chosen = choose_offering(claim, priciest=self._fault_applies(Fault.NAP_PRICIER_SKU, claim))
            assert chosen is not None  # _launch_failure refuses claims without an offering
            instance, capacity_type, zone = chosen
            capacity, allocatable = capacity_for(instance)
            node_name = node_name_for(name)
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
            cond("Launched", "True", "Launched")
            cond("Registered", "Unknown", "NodeNotFound", "Node not registered with cluster")
            self.store.update_status(self.rt(NODECLAIM_API, "nodeclaims"), claim)
            self._label_claim(name, instance, node_name, capacity_type, zone)
            self.event(
                claim,
                "Normal",
                "Launched",
                "Status condition transitioned, Type: Launched, Status: True",
                "karpenter",
            )
            return register_seconds(instance)
        fresh = self.get(NODECLAIM_API, "nodeclaims", name) or claim
        claim, status = fresh, fresh.setdefault("status", {})
        conditions = status.setdefault("conditions", [])
        instance = instance_type_of(claim) or ""
        node_name = status.get("nodeName") or node_name_for(name)
        launched = condition_of(claim, "Launched") or {}
        since_launch = (
            self.clock.now() - parse_time(launched.get("lastTransitionTime") or stamp)
        ).total_seconds()
        node = self.get("v1", "nodes", node_name)
        if not status.get("nodeName"):
            if since_launch >= REGISTRATION_TIMEOUT:
                self.store.delete(self.rt(NODECLAIM_API, "nodeclaims"), name)
                return None
            wait = register_seconds(instance) - since_launch
            if wait > 0:
                return wait
            if node is None:
                node = self._create_node(claim, instance, node_name)
            status["nodeName"] = node_name
            self.claim_of_node[node_name] = name
            cond("Registered", "True", "Registered")
            changed = True
        if node is not None:
            due.extend(self._device_plugin(claim, node))
            node = self.get("v1", "nodes", node_name)
        initialized = condition_true(claim, "Initialized")
        if node is not None and not initialized:
            blocker = self._initialization_blocker(node, instance)
            if blocker is None:
                cond("Initialized", "True", "Initialized")
                cond("Ready", "True", "Ready")
                self._label_node(node, {LABEL_INITIALIZED: "true"})
                changed = True
            else:
                changed |= cond("Initialized", "Unknown", blocker[0], blocker[1])
                changed |= cond("Ready", "Unknown", "ReconcilingDependents", "Initialized=Unknown")
                due.append(5.0)
        if condition_true(claim, "Initialized"):
            if name in self._pod_events:
                self._pod_events.discard(name)
                last = status.get("lastPodEventTime")
                # Karpenter dedupes pod events: lastPodEventTime moves at most every 5 s.
                if (
                    not last
                    or (self.clock.now() - parse_time(last)).total_seconds() >= POD_EVENT_DEDUPE_SECONDS
                ):
                    status["lastPodEventTime"] = stamp
                    changed = True
                else:
                    due.append(POD_EVENT_DEDUPE_SECONDS)
                    self._pod_events.add(name)
            cleared, consolidatable_in = self._consolidatable(claim, conditions, generation, stamp)
            changed |= cleared
            if consolidatable_in is not None:
                due.append(consolidatable_in)
        if changed:
            self.store.update_status(self.rt(NODECLAIM_API, "nodeclaims"), claim)
        return min(due) if due else None

    def _spot_eviction(self, claim: Obj) -> tuple[bool, float | None]:
        """Azure's spot eviction and what the control plane does about it; (evicted, when to look again)."""
        name = claim["metadata"]["name"]
        node_name = (claim.get("status") or {}).get("nodeName") or ""
        if name not in self._evicted:
            labels = claim["metadata"].get("labels") or {}
            if (
                not node_name
                or labels.get(LABEL_CAPACITY_TYPE) != "spot"
                or not condition_true(claim, "Initialized")
                or not self._fault_applies(Fault.NAP_SPOT_EVICTION, claim)
                or not self._runs_workload(node_name)
            ):
                return False, None
            self._evicted.add(name)
            self.ctx.vms_gone.add(node_name)  # the VM, and the kubelet with it, is gone
            return True, CLOUD_NODE_MONITOR_SECONDS
        node = self.get("v1", "nodes", node_name)
        if node is not None:
            ready = condition_of(node, "Ready") or {}
            if ready.get("status") == "True":
                return True, CLOUD_NODE_MONITOR_SECONDS  # the node lifecycle controller has not noticed yet
            since = (
                self.clock.now() - parse_time(ready.get("lastTransitionTime") or self.clock.timestamp())
            ).total_seconds()
            if since < CLOUD_NODE_MONITOR_SECONDS:
                return (
                    True,
                    CLOUD_NODE_MONITOR_SECONDS - since,
                )  # the cloud node lifecycle controller's next pass
            self.event(
                node,
                "Normal",
                "DeletingNode",
                f"Deleting node {node_name} because it does not exist in the cloud provider",
                "cloud-node-lifecycle-controller",
            )
            self.store.delete(self.rt("v1", "nodes"), node_name)
            self.event(
                node,
                "Normal",
                "RemovingNode",
                f"Node {node_name} event: Removing Node {node_name} from Controller",
                "node-controller",
            )
        # Karpenter's node termination deletes the NodeClaim of a deleted Node; its instance is already gone.
        self.store.delete(self.rt(NODECLAIM_API, "nodeclaims"), name)
        return True, None

    def _runs_workload(self, node_name: str) -> bool:
        return any(
            not is_terminal(pod)
            and not any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences") or [])
            for pod in self.list("v1", "pods", field_selector=f"spec.nodeName={node_name}")
        )

    def _launch_failure(self, claim: Obj) -> tuple[str, str] | None:
        offering = choose_offering(claim)
        if offering is None:
            return None
        if self._fault_applies(Fault.NAP_QUOTA_EXCEEDED, claim):
            instance, capacity_type, _ = offering
            return (
                "SubscriptionQuotaReached",
                f"subscription level {capacity_type} vCPU quota for {instance} has been reached (may try provision "
                "an alternative instance type)",
            )
        return None

    def _device_plugin(self, claim: Obj, node: Obj) -> list[float]:
        """The NVIDIA device plugin DaemonSet: advertises the GPUs once the node has been Ready a while."""
        if (node.get("status") or {}).get("allocatable", {}).get(GPU_RESOURCE):
            return []
        sku = _gpu_sku(instance_type_of(claim) or "")
        if sku is None or self._fault_applies(Fault.NAP_GPU_NOT_ADVERTISED, claim):
            return []
        if self.ctx.faults.is_active(Fault.GPU_DEVICE_PLUGIN_MISSING):
            return [
                10.0
            ]  # no device plugin runs on any node (the core's fault); look again at the next heartbeat
        ready = next(
            (c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None
        )
        if ready is None or ready.get("status") != "True":
            return [5.0]
        since = (self.clock.now() - parse_time(ready["lastTransitionTime"])).total_seconds()
        if since < DEVICE_PLUGIN_SECONDS:
            return [DEVICE_PLUGIN_SECONDS - since]
        fresh = self.store.get(self.rt("v1", "nodes"), node["metadata"]["name"])
        fresh_status = fresh.setdefault("status", {})
        for field in ("capacity", "allocatable"):
            fresh_status.setdefault(field, {})[GPU_RESOURCE] = str(sku.gpu_count)
        self.store.update_status(self.rt("v1", "nodes"), fresh)
        return []

    @staticmethod
    def _initialization_blocker(node: Obj, instance: str) -> tuple[str, str] | None:
        status = node.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        if not ready:
            return "NodeNotReady", "Node status is NotReady"
        sku = _gpu_sku(instance)
        if sku is not None and not (status.get("allocatable") or {}).get(GPU_RESOURCE):
            return "ResourceNotRegistered", f'Resource "{GPU_RESOURCE}" was requested but not registered'
        return None

    def _consolidatable(
        self, claim: Obj, conditions: list[Obj], generation: int, stamp: str
    ) -> tuple[bool, float | None]:
        pool_name = (claim["metadata"].get("labels") or {}).get(LABEL_NODEPOOL, "")
        pool = self.get(NODEPOOL_API, "nodepools", pool_name)
        after = disruption.consolidate_after(pool) if pool is not None else None
        if after is None:
            return clear_condition(conditions, "Consolidatable"), None
        since_stamp = (claim.get("status") or {}).get("lastPodEventTime") or (
            condition_of(claim, "Initialized") or {}
        ).get("lastTransitionTime")
        if not since_stamp:
            return False, None
        waited = (self.clock.now() - parse_time(since_stamp)).total_seconds()
        if waited < after:
            return clear_condition(conditions, "Consolidatable"), after - waited
        return set_status_condition(
            conditions, "Consolidatable", "True", "Consolidatable", "", generation, stamp
        ), None

    def _label_claim(self, name: str, instance: str, node_name: str, capacity_type: str, zone: str) -> None:
        """Karpenter labels a launched NodeClaim with its instance's well-known labels (its printer columns)."""
        rt = self.rt(NODECLAIM_API, "nodeclaims")
        fresh = self.store.get(rt, name)
        labels = fresh["metadata"].setdefault("labels", {})
        wanted = {
            k: v
            for k, v in node_labels(instance, node_name, fresh, capacity_type, zone).items()
            if k in _CLAIM_LABELS
        }
        if any(labels.get(k) != v for k, v in wanted.items()):
            labels.update(wanted)
            self.store.update(rt, fresh)

    def _create_node(self, claim: Obj, instance: str, node_name: str) -> Obj:
        capacity, allocatable = capacity_for(instance)
        capacity.pop(GPU_RESOURCE, None)
        allocatable.pop(GPU_RESOURCE, None)
        claim_labels = claim["metadata"].get("labels") or {}
        labels = node_labels(
            instance,
            node_name,
            claim,
            claim_labels.get(LABEL_CAPACITY_TYPE, "on-demand"),
            claim_labels.get(LABEL_ZONE),
        )
        labels[LABEL_REGISTERED] = "true"
        labels["kubernetes.azure.com/agentpool"] = labels["agentpool"] = claim["metadata"]["name"]
        spec: Obj = {"providerID": claim["status"]["providerID"]}
        taints = list((claim.get("spec") or {}).get("taints") or [])
        taints += list((claim.get("spec") or {}).get("startupTaints") or [])
        annotations = {
            "karpenter.sh/nodepool-hash-version": "v3",
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        }
        node: Obj = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node_name,
                "labels": labels,
                "annotations": annotations,
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
            # The kubelet joins with the unregistered taint; Karpenter removes it once it synced the claim.
            "spec": {**spec, "taints": [*taints, dict(TAINT_UNREGISTERED)]},
            "status": {"capacity": capacity, "allocatable": allocatable},
        }
        rt = self.rt("v1", "nodes")
        created = self.store.create(rt, node)
        if not (created.get("status") or {}).get("capacity"):
            created["status"] = {"capacity": capacity, "allocatable": allocatable}
            created = self.store.update_status(rt, created)
        created["spec"]["taints"] = taints
        if not taints:
            created["spec"].pop("taints")
        created = self.store.update(rt, created)
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
        """Taint, drain, delete the Node, then the VM; the finalizer goes last."""
        name = claim["metadata"]["name"]
        node_name = (claim.get("status") or {}).get("nodeName")
        node = self.get("v1", "nodes", node_name) if node_name else None
        now = self.clock.elapsed()
        if node is not None:
            taints = (node.get("spec") or {}).get("taints") or []
            if not any(t.get("key") == TAINT_DISRUPTED["key"] for t in taints):
                node["spec"]["taints"] = [*taints, dict(TAINT_DISRUPTED)]
                node = self.store.update(self.rt("v1", "nodes"), node)
            if name not in self._evicted and self._drain(node, claim):
                return 1.0  # an evicted node's instance is gone: nothing to drain, as upstream
            if not node["metadata"].get("deletionTimestamp"):
                self.store.delete(self.rt("v1", "nodes"), node["metadata"]["name"])
            if self.get("v1", "nodes", node_name or "") is not None:
                return 1.0
        if name in self._evicted:
            self._evicted.discard(name)
            self.ctx.vms_gone.discard(node_name or "")  # Delete answers NotFound: nothing left to wait for
        elif (claim.get("status") or {}).get("providerID"):
            since = self._terminating_since.setdefault(name, now)
            if now - since < VM_DELETE_SECONDS:
                return VM_DELETE_SECONDS - (now - since)
        finalizers = [f for f in claim["metadata"].get("finalizers") or [] if f != TERMINATION_FINALIZER]
        if finalizers != (claim["metadata"].get("finalizers") or []):
            claim["metadata"]["finalizers"] = finalizers
            self.store.update(self.rt(NODECLAIM_API, "nodeclaims"), claim)
        self._created.pop(name, None)
        self._terminating_since.pop(name, None)
        self._drain_reported.pop(node_name or "", None)
        return None

    def _drain(self, node: Obj, claim: Obj) -> bool:
        """Delete the node's pods (DaemonSet pods stay, as upstream); True while some are still going.

        As upstream's terminator: a pod whose `karpenter.sh/do-not-disrupt` holds is not evicted, so the drain
        waits on it (`FailedDraining` "Failed to drain node, N pods are waiting to be evicted") until it ends
        or, with the NodeClaim's `terminationGracePeriod`, until that deadline: then it is deleted anyway
        (`Disrupted`, bypassing the annotation)."""
        node_name = node["metadata"]["name"]
        now = self.clock.now()
        grace = disruption.duration_seconds(((claim.get("spec") or {}).get("terminationGracePeriod")) or "")
        deleted_at = claim["metadata"].get("deletionTimestamp")
        deadline = parse_time(deleted_at).timestamp() + grace if grace is not None and deleted_at else None
        pending = 0
        for pod in self.list("v1", "pods", field_selector=f"spec.nodeName={node_name}"):
            meta = pod["metadata"]
            owners = meta.get("ownerReferences") or []
            if any(o.get("kind") == "DaemonSet" for o in owners) or is_terminal(pod):
                continue
            pending += 1
            if meta.get("deletionTimestamp"):
                continue
            if disruption.do_not_disrupt_active(pod, now):
                pod_grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
                if deadline is None or now.timestamp() < deadline - pod_grace:
                    continue  # Karpenter does not evict it; the drain waits
                self.event(
                    pod,
                    "Normal",
                    "Disrupted",
                    "Deleting the pod to accommodate the terminationTime "
                    f"{datetime.fromtimestamp(deadline, UTC):%Y-%m-%dT%H:%M:%SZ} of the node. This bypasses the "
                    "PDB of the pod and the do-not-disrupt annotation.",
                    "karpenter",
                )
            self.store.delete(self.rt("v1", "pods"), meta["name"], meta["namespace"])
        if pending and self._drain_reported.get(node_name) != pending:
            self._drain_reported[node_name] = pending
            self.event(
                node,
                "Warning",
                "FailedDraining",
                f"Failed to drain node, {pending} pods are waiting to be evicted",
                "karpenter",
            )
        return pending > 0
