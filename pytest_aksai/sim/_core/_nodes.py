"""Node heartbeats and the node lifecycle controller.

The kubelet half registers a node (conditions, nodeInfo, addresses; `Ready` after a short start-up for
nodes created without a Ready condition) and renews its Lease in `kube-node-lease` every 10 cluster seconds.
The `node-not-ready` fault stops that kubelet. The node-lifecycle half, as upstream, notices a Lease older
than the grace period (40 s): every condition turns `Unknown` (`NodeStatusUnknown`, "Kubelet stopped
posting node status."), the node gets the `node.kubernetes.io/unreachable` NoSchedule and NoExecute
taints, its pods are marked not Ready, and pods that do not tolerate the NoExecute taint are evicted once
their `tolerationSeconds` run out. A kubelet that comes back clears all of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pytest_aksai.sim._core._framework import Controller, Obj, Watch
from pytest_aksai.sim._core._podutil import set_condition
from pytest_aksai.sim._core._predicates import tolerates
from pytest_aksai.sim.contract import Fault

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
HEARTBEAT_SECONDS = 10.0
GRACE_SECONDS = 40.0
STATUS_REPORT_SECONDS = 300.0
NODE_START_SECONDS = 5.0
KUBELET_VERSION = "v1.30.6"

GPU_RESOURCE = "nvidia.com/gpu"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"

_PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)
_NOT_READY_MESSAGE = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)


def kubelet_down(ctx: Any, node_name: str) -> bool:
    """True while the `node-not-ready` fault stops this node's kubelet (parameter: node names, comma-separated;
    empty: every node), and for good once the node's VM is gone (`ctx.vms_gone`)."""
    if node_name in getattr(ctx, "vms_gone", ()):
        return True
    if not ctx.faults.is_active(Fault.NODE_NOT_READY):
        return False
    names = [n.strip() for n in ctx.faults.parameter(Fault.NODE_NOT_READY).split(",") if n.strip()]
    return not names or node_name in names


def _parse_time(stamp: str) -> datetime:
    return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def _lease_event(_self: NodeController, _event_type: str, lease: Obj) -> Iterable[str]:
    return [lease["metadata"]["name"]] if lease["metadata"].get("namespace") == LEASE_NAMESPACE else []


class NodeController(Controller):
    name = "nodes"
    watches = (Watch("v1", "nodes"), Watch("coordination.k8s.io/v1", "leases", _lease_event))

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._renewed: dict[str, float] = {}
        self._registered: dict[str, float] = {}
        self._reported: dict[str, float] = {}

    async def reconcile(self, key: str) -> float | None:
        node = self.get("v1", "nodes", key)
        if node is None:
            for table in (self._renewed, self._registered, self._reported):
                table.pop(key, None)
            return None
        now = self.clock.elapsed()
        if not (node.get("spec") or {}).get("podCIDR"):
            node = self._allocate_pod_cidr(node)
        if not kubelet_down(self.ctx, key):
            self._kubelet_sync(node, now)
            return HEARTBEAT_SECONDS
        return self._lifecycle(node, now)

    # ---- the kubelet's side --------------------------------------------------------------------------
    def _kubelet_sync(self, node: Obj, now: float) -> None:
        name = node["metadata"]["name"]
        if now - self._renewed.get(name, -HEARTBEAT_SECONDS) >= HEARTBEAT_SECONDS - 0.01:
            self._renew_lease(node)
            self._renewed[name] = now
        status = node.setdefault("status", {})
        conditions: list[Obj] = status.setdefault("conditions", [])
        stamp = self.clock.timestamp()
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        changed = False
        if ready is None:
            self._register(node)
            self._registered[name] = now
            changed = True
            self.event(node, "Normal", "Starting", "Starting kubelet.", "kubelet", name)
            self.event(
                node,
                "Normal",
                "RegisteredNode",
                f"Node {name} event: Registered Node {name} in Controller",
                "node-controller",
            )
        elif ready.get("status") != "True" and now >= self._registered.get(name, 0.0) + NODE_START_SECONDS:
            for ctype, reason, message in _PRESSURE_CONDITIONS:
                set_condition(conditions, ctype, "False", stamp, reason, message)
            set_condition(
                conditions, "Ready", "True", stamp, "KubeletReady", "kubelet is posting ready status"
            )
            self._set_taints(node, [])
            changed = True
            self.event(node, "Normal", "NodeReady", f"Node {name} status is now: NodeReady", "kubelet", name)
        changed |= self._sync_device_plugin(node)
        if changed or now - self._reported.get(name, -STATUS_REPORT_SECONDS) >= STATUS_REPORT_SECONDS:
            for cond in conditions:
                cond["lastHeartbeatTime"] = stamp
            self._reported[name] = now
            changed = True
        if changed:
            self.store.update_status(self.rt("v1", "nodes"), node)
            if ready is None:
                self.queue.add_after(name, NODE_START_SECONDS)

    def _sync_device_plugin(self, node: Obj) -> bool:
        """`nvidia.com/gpu` in capacity and allocatable exists only while the NVIDIA device plugin runs: the
        `gpu-device-plugin-missing` fault takes it away; clearing the fault restores it (the plugin registers
        the node's GPUs, counted by GPU feature discovery's `nvidia.com/gpu.count` label)."""
        status = node.setdefault("status", {})
        count = (node["metadata"].get("labels") or {}).get(GPU_COUNT_LABEL)
        if not count:
            return False
        capacity: Obj = status.setdefault("capacity", {})
        allocatable: Obj = status.setdefault("allocatable", {})
        if self.ctx.faults.is_active(Fault.GPU_DEVICE_PLUGIN_MISSING):
            if GPU_RESOURCE not in capacity and GPU_RESOURCE not in allocatable:
                return False
            capacity.pop(GPU_RESOURCE, None)
            allocatable.pop(GPU_RESOURCE, None)
            return True
        if any(o.get("kind") == "NodeClaim" for o in node["metadata"].get("ownerReferences") or []):
            return False  # a Karpenter node: the karpenter add-on runs its device plugin (timing, NAP faults)
        if capacity.get(GPU_RESOURCE) == count and allocatable.get(GPU_RESOURCE) == count:
            return False
        capacity[GPU_RESOURCE] = allocatable[GPU_RESOURCE] = count
        return True

    def _register(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        status = node["status"]
        stamp = self.clock.timestamp()
        status.setdefault("capacity", {"cpu": "4", "memory": "16374824Ki", "pods": "110"})
        status.setdefault("allocatable", dict(status["capacity"]))
        status.setdefault(
            "addresses",
            [{"type": "InternalIP", "address": self._node_ip(name)}, {"type": "Hostname", "address": name}],
        )
        status.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 10250}})
        labels = node["metadata"].get("labels") or {}
        info = {
            "architecture": labels.get("kubernetes.io/arch", "amd64"),
            "operatingSystem": labels.get("kubernetes.io/os", "linux"),
            "osImage": "Ubuntu 22.04.5 LTS",
            "kernelVersion": "5.15.0-1074-azure",
            "containerRuntimeVersion": "containerd://1.7.23-1",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        }
        status["nodeInfo"] = {**info, **(status.get("nodeInfo") or {})}
        conditions: list[Obj] = status.setdefault("conditions", [])
        for ctype, reason, message in _PRESSURE_CONDITIONS:
            set_condition(conditions, ctype, "False", stamp, reason, message)
        set_condition(conditions, "Ready", "False", stamp, "KubeletNotReady", _NOT_READY_MESSAGE)
        self._set_taints(node, [{"key": TAINT_NOT_READY, "effect": "NoSchedule"}])

    def _allocate_pod_cidr(self, node: Obj) -> Obj:
        """The node IPAM controller's part: a /24 of the cluster CIDR no other node has, so pod IPs are
        unique across the cluster (nodes that join later, e.g. Karpenter's, come without one)."""
        used = {
            str((n.get("spec") or {}).get("podCIDR"))
            for n in self.list("v1", "nodes")
            if (n.get("spec") or {}).get("podCIDR")
        }
        cidr = next(f"10.244.{i}.0/24" for i in range(256) if f"10.244.{i}.0/24" not in used)
        node.setdefault("spec", {}).update({"podCIDR": cidr, "podCIDRs": [cidr]})
        updated: Obj = self.store.update(self.rt("v1", "nodes"), node)
        return updated

    def _node_ip(self, name: str) -> str:
        index = len(self._registered) + 4
        return f"10.224.{index // 250}.{index % 250 + 4}"

    def _set_taints(self, node: Obj, wanted: list[Obj]) -> None:
        """Replace the node-lifecycle taints (not-ready/unreachable) by `wanted`, keeping every other taint."""
        spec = node.setdefault("spec", {})
        others = [
            t for t in spec.get("taints") or [] if t.get("key") not in (TAINT_NOT_READY, TAINT_UNREACHABLE)
        ]
        current = [
            t for t in spec.get("taints") or [] if t.get("key") in (TAINT_NOT_READY, TAINT_UNREACHABLE)
        ]
        if [(t["key"], t["effect"]) for t in current] == [(t["key"], t["effect"]) for t in wanted]:
            return
        stamp = self.clock.timestamp()
        taints = others + [{**t, "timeAdded": stamp} for t in wanted]
        fresh = self.store.get(self.rt("v1", "nodes"), node["metadata"]["name"])
        fresh.setdefault("spec", {})["taints"] = taints
        if not taints:
            fresh["spec"].pop("taints")
        updated = self.store.update(self.rt("v1", "nodes"), fresh)
        node["spec"] = updated["spec"]
        node["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]

    def _renew_lease(self, node: Obj) -> None:
        rt = self.rt("coordination.k8s.io/v1", "leases")
        name = node["metadata"]["name"]
        renew = self.clock.micro_timestamp()
        lease = self.store.try_get(rt, name, LEASE_NAMESPACE)
        if lease is None:
            self.store.create(
                rt,
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": name,
                        "namespace": LEASE_NAMESPACE,
                        "ownerReferences": [
                            {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node["metadata"]["uid"]}
                        ],
                    },
                    "spec": {
                        "holderIdentity": name,
                        "leaseDurationSeconds": LEASE_DURATION,
                        "renewTime": renew,
                    },
                },
            )
            return
        lease.setdefault("spec", {})["renewTime"] = renew
        lease["spec"]["holderIdentity"] = name
        lease["spec"]["leaseDurationSeconds"] = LEASE_DURATION
        self.store.update(rt, lease)

    # ---- the node lifecycle controller's side --------------------------------------------------------
    def _lifecycle(self, node: Obj, now: float) -> float:
        name = node["metadata"]["name"]
        lease = self.store.try_get(self.rt("coordination.k8s.io/v1", "leases"), name, LEASE_NAMESPACE)
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
        age = (self.clock.now() - _parse_time(renew)).total_seconds() if renew else GRACE_SECONDS
        if age < GRACE_SECONDS:
            return GRACE_SECONDS - age + 0.5
        conditions: list[Obj] = node.setdefault("status", {}).setdefault("conditions", [])
        stamp = self.clock.timestamp()
        was_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        changed = False
        for cond in conditions:
            if cond.get("status") != "Unknown":
                changed = True
                cond.update(
                    {
                        "status": "Unknown",
                        "reason": "NodeStatusUnknown",
                        "lastTransitionTime": stamp,
                        "message": "Kubelet stopped posting node status.",
                    }
                )
        if changed:
            self.store.update_status(self.rt("v1", "nodes"), node)
            self._set_taints(
                node,
                [
                    {"key": TAINT_UNREACHABLE, "effect": "NoSchedule"},
                    {"key": TAINT_UNREACHABLE, "effect": "NoExecute"},
                ],
            )
            if was_ready:
                self.event(
                    node,
                    "Normal",
                    "NodeNotReady",
                    f"Node {name} status is now: NodeNotReady",
                    "node-controller",
                )
        return self._evict(node)

    def _evict(self, node: Obj) -> float:
        """Mark the node's pods not Ready and evict those whose NoExecute toleration has run out."""
        pods_rt = self.rt("v1", "pods")
        name = node["metadata"]["name"]
        stamp = self.clock.timestamp()
        taint = {"key": TAINT_UNREACHABLE, "effect": "NoExecute"}
        added = next(
            (
                t.get("timeAdded")
                for t in (node.get("spec") or {}).get("taints") or []
                if t.get("key") == TAINT_UNREACHABLE and t.get("effect") == "NoExecute"
            ),
            None,
        )
        since = (self.clock.now() - _parse_time(added)).total_seconds() if added else 0.0
        next_check = HEARTBEAT_SECONDS
        for pod in self.store.list(pods_rt, field_selector=f"spec.nodeName={name}"):
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            conditions: list[Obj] = pod.setdefault("status", {}).setdefault("conditions", [])
            if set_condition(conditions, "Ready", "False", stamp):
                self.store.update_status(pods_rt, pod)
            matching = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if tolerates([t], taint)]
            if matching and all(t.get("tolerationSeconds") is None for t in matching):
                continue
            allowed = min(
                (float(t["tolerationSeconds"]) for t in matching if t.get("tolerationSeconds") is not None),
                default=0.0,
            )
            if since >= allowed:
                self.event(
                    pod,
                    "Normal",
                    "TaintManagerEviction",
                    f"Marking for deletion Pod {meta['namespace']}/{meta['name']}",
                    "taint-eviction-controller",
                )
                self.store.delete(pods_rt, meta["name"], meta["namespace"])
            else:
                next_check = min(next_check, allowed - since + 0.5)
        return next_check
