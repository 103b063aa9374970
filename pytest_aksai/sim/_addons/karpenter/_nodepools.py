"""NodePools and AKSNodeClasses: their status, and the provisioner that turns pending pods into NodeClaims.

- `NodeClassController`: AKSNodeClass conditions `ImagesReady`, `KubernetesVersionReady`, `SubnetsReady`,
  `ValidationSucceeded` and the root `Ready`; a `vnetSubnetID` that is no ARM subnet ID is `SubnetIDInvalid`
  "Failed to parse vnetSubnetID …", one with unfilled placeholders (`<SUBSCRIPTION_ID>`) is
  `SubnetNotFound` "resource not found: …" (the provider's GET answers 404).
- `NodePoolController`: NodePool `ValidationSucceeded`, `NodeClassReady` (the NodeClass's Ready, or
  `NodeClassNotFound` "NodeClass not found on cluster"), `NodeRegistrationHealthy` (Unknown until one of its
  NodeClaims registers) and `Ready`; `status.resources` (the capacity its NodeClaims hold, plus `nodes`) and
  `status.nodes`.
- `ProvisioningController`: pending pods the kube-scheduler marked `Unschedulable` are batched (the batch
  closes after 1 s without a new pod or 10 s after it opened, cluster time), then `_scheduling.schedule`
  decides; a pod is nominated (`Nominated` "Pod should schedule on: nodeclaim/…") or gets
  `FailedScheduling` "Failed to schedule pod, …" (deduplicated for 5 min), and a NodePool whose requirements
  leave no instance type gets `NoCompatibleInstanceTypes` (deduplicated for 1 min).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pytest_aksai.sim._addons.karpenter import _scheduling as scheduling
from pytest_aksai.sim._addons.karpenter._provisioner import (
    NODECLAIM_API,
    capacity_for,
    condition_true,
    offering_price,
    set_status_condition,
)
from pytest_aksai.sim._core._framework import Controller, Obj, Watch
from pytest_aksai.sim._core._podutil import get_condition, is_terminal
from pytest_aksai.sim._core._predicates import matches_node_affinity, tolerates
from pytest_aksai.sim._core._resources import Resources, parse_map, pod_requests
from pytest_aksai.sim.contract import Fault
from pytest_aksai.sizing import instance_types, matching_instance_types

API = "karpenter.sh/v1"
NODECLASS_API = "karpenter.azure.com/v1beta1"
BATCH_IDLE_SECONDS = 1.0
BATCH_MAX_SECONDS = 10.0
FAILED_SCHEDULING_DEDUPE = 300.0
NO_COMPATIBLE_DEDUPE = 60.0
RETRY_SECONDS = 30.0
"""Pods that could not be provisioned are considered again after this long (and on any NodePool change)."""
LABEL_NODEPOOL = "karpenter.sh/nodepool"
_SUBNET_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+/subnets/[^/]+$",
    re.IGNORECASE,
)
_KEY = "provision"


def _generation(obj: Mapping[str, Any]) -> int:
    return int(obj["metadata"].get("generation") or 1)


def _set(obj: Obj, type_: str, status: str, reason: str, message: str, now: str) -> bool:
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    return set_status_condition(conditions, type_, status, reason, message, _generation(obj), now)


class NodeClassController(Controller):
    name = "aksnodeclass-status"
    watches = (Watch(NODECLASS_API, "aksnodeclasses"),)

    async def reconcile(self, key: str) -> float | None:
        nc = self.get(NODECLASS_API, "aksnodeclasses", key)
        if nc is None:
            return None
        now = self.clock.timestamp()
        spec = nc.get("spec") or {}
        subnet = spec.get("vnetSubnetID")
        changed = _set(nc, "ImagesReady", "True", "ImagesReady", "", now)
        changed |= _set(nc, "KubernetesVersionReady", "True", "KubernetesVersionReady", "", now)
        changed |= _set(nc, "ValidationSucceeded", "True", "ValidationSucceeded", "", now)
        if subnet is not None and not _SUBNET_ID.match(str(subnet)):
            subnet_state = ("False", "SubnetIDInvalid", f"Failed to parse vnetSubnetID {subnet}")
        elif subnet is not None and ("<" in str(subnet) or ">" in str(subnet)):
            subnet_state = ("False", "SubnetNotFound", f"resource not found: {subnet}")
        else:
            subnet_state = ("True", "SubnetsReady", "")
        changed |= _set(nc, "SubnetsReady", *subnet_state, now)
        if subnet_state[0] == "True":
            changed |= _set(nc, "Ready", "True", "Ready", "", now)
        else:
            changed |= _set(nc, "Ready", "False", "SubnetsReady", "SubnetsReady=False", now)
        status = nc["status"]
        if "kubernetesVersion" not in status:
            status["kubernetesVersion"] = "1.30.6"
            status["images"] = [
                {
                    "id": "/CommunityGalleries/AKSUbuntu-38d80f77-467a-481f-a8d4-09b6d4220bd2/images/"
                    "2204gen2containerd/versions/202501.12.0",
                    "requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}],
                }
            ]
            changed = True
        if changed:
            self.store.update_status(self.rt(NODECLASS_API, "aksnodeclasses"), nc)
        return None


def _pool_of(_self: Any, _event_type: str, obj: Obj) -> list[str]:
    pool = (obj["metadata"].get("labels") or {}).get(LABEL_NODEPOOL)
    return [pool] if pool else []


def _pools_of_class(self: Controller, _event_type: str, nc: Obj) -> list[str]:
    name = nc["metadata"]["name"]
    return [
        p["metadata"]["name"]
        for p in self.list(API, "nodepools")
        if (((p.get("spec") or {}).get("template") or {}).get("spec") or {})
        .get("nodeClassRef", {})
        .get("name")
        == name
    ]


def pool_usage(claims: list[Obj]) -> Resources:
    used: Resources = {"nodes": Decimal(len(claims))}
    for claim in claims:
        for key, value in parse_map((claim.get("status") or {}).get("capacity")).items():
            used[key] = used.get(key, Decimal(0)) + value
    return used


def _format(key: str, value: Decimal) -> str:
    if key == "cpu":
        return str(int(value)) if value == int(value) else f"{int(value * 1000)}m"
    if key in ("memory", "ephemeral-storage"):
        return f"{int(value) // 1024}Ki"
    return str(int(value))


class NodePoolController(Controller):
    name = "nodepool-status"
    watches = (
        Watch(API, "nodepools"),
        Watch(NODECLAIM_API, "nodeclaims", _pool_of),
        Watch(NODECLASS_API, "aksnodeclasses", _pools_of_class),
    )

    async def reconcile(self, key: str) -> float | None:
        pool = self.get(API, "nodepools", key)
        if pool is None:
            return None
        if self.ctx.faults.is_active(Fault.NAP_SKU_FAMILY_MISMATCH) and self._apply_family_mismatch(pool):
            return None
        now = self.clock.timestamp()
        template = ((pool.get("spec") or {}).get("template") or {}).get("spec") or {}
        ref = template.get("nodeClassRef") or {}
        nc = self.get(NODECLASS_API, "aksnodeclasses", ref.get("name", ""))
        changed = _set(pool, "ValidationSucceeded", "True", "ValidationSucceeded", "", now)
        if nc is None:
            changed |= _set(
                pool, "NodeClassReady", "False", "NodeClassNotFound", "NodeClass not found on cluster", now
            )
        else:
            ready = next(
                (c for c in (nc.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"),
                None,
            )
            if ready is None or ready.get("status") == "Unknown":
                changed |= _set(
                    pool,
                    "NodeClassReady",
                    "False",
                    "NodeClassReadinessUnknown",
                    "Node Class Readiness Unknown",
                    now,
                )
            elif ready.get("status") == "False":
                changed |= _set(
                    pool, "NodeClassReady", "False", ready.get("reason", ""), ready.get("message", ""), now
                )
            else:
                changed |= _set(pool, "NodeClassReady", "True", "NodeClassReady", "", now)
        claims = self.list(NODECLAIM_API, "nodeclaims", label_selector=f"{LABEL_NODEPOOL}={key}")
        if any(condition_true(c, "Registered") for c in claims):
            changed |= _set(pool, "NodeRegistrationHealthy", "True", "NodeRegistrationHealthy", "", now)
        elif not any(
            c.get("type") == "NodeRegistrationHealthy" for c in pool["status"].get("conditions") or []
        ):
            changed |= _set(
                pool,
                "NodeRegistrationHealthy",
                "Unknown",
                "AwaitingReconciliation",
                "object is awaiting reconciliation",
                now,
            )
        class_ready = condition_true(pool, "NodeClassReady")
        if class_ready:
            changed |= _set(pool, "Ready", "True", "Ready", "", now)
        else:
            changed |= _set(pool, "Ready", "False", "NodeClassReady", "NodeClassReady=False", now)
        resources = {k: _format(k, v) for k, v in sorted(pool_usage(claims).items())}
        status = pool["status"]
        if status.get("resources") != resources or status.get("nodes") != len(claims):
            status["resources"] = resources
            status["nodes"] = len(claims)
            changed = True
        if changed:
            self.store.update_status(self.rt(API, "nodepools"), pool)
        return None

    def _apply_family_mismatch(self, pool: Obj) -> bool:
        """The `nap-sku-family-mismatch` fault: the seed lab's requirement, the series letters for the family."""
        template = ((pool.get("spec") or {}).get("template") or {}).get("spec") or {}
        changed = False
        for req in template.get("requirements") or []:
            if req.get("key") == "karpenter.azure.com/sku-family" and req.get("values") == ["N"]:
                req["values"] = ["NC"]
                changed = True
        if changed:
            self.store.update(self.rt(API, "nodepools"), pool)
        return changed


def _pending_pod(_self: Any, _event_type: str, pod: Obj) -> list[str]:
    if provisionable(pod):
        _self.note_pending()
        return [_KEY]
    return []


def provisionable(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    if spec.get("nodeName") or pod["metadata"].get("deletionTimestamp") or is_terminal(pod):
        return False
    scheduled = get_condition(pod, "PodScheduled") or {}
    return scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable"


def daemon_overhead(daemonsets: list[Obj], pool: scheduling.PoolTemplate) -> Resources:
    """The requests of the DaemonSets that would run on a node of `pool` (their tolerations and selectors)."""
    total: Resources = {}
    probe_node = {"metadata": {"labels": pool.labels}, "spec": {"taints": pool.taints}}
    for ds in daemonsets:
        template = ((ds.get("spec") or {}).get("template")) or {}
        pod = {"metadata": {}, "spec": template.get("spec") or {}}
        tolerations = pod["spec"].get("tolerations") or []
        if any(
            t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, t)
            for t in pool.taints
        ):
            continue
        if not matches_node_affinity(pod, probe_node):
            continue
        for k, v in pod_requests(pod).items():
            total[k] = total.get(k, Decimal(0)) + v
    return total


class ProvisioningController(Controller):
    name = "provisioner"
    watches = (Watch("v1", "pods", _pending_pod), Watch(API, "nodepools", lambda _s, _t, _o: [_KEY]))

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._opened: float | None = None
        self._last: float = 0.0
        self._nominated: dict[str, str] = {}
        """Pod uid → the NodeClaim it waits for."""
        self._published: dict[tuple[str, str], float] = {}

    def note_pending(self) -> None:
        now = self.clock.elapsed()
        if self._opened is None:
            self._opened = now
        self._last = now

    async def reconcile(self, key: str) -> float | None:
        now = self.clock.elapsed()
        if self._opened is None:
            self._opened = self._last = now
        idle, age = now - self._last, now - self._opened
        if idle < BATCH_IDLE_SECONDS and age < BATCH_MAX_SECONDS:
            return min(BATCH_IDLE_SECONDS - idle, BATCH_MAX_SECONDS - age)
        self._opened = None
        unresolved = self.provision()
        return RETRY_SECONDS if unresolved else None

    def _waiting(self, pod: Obj, claims: Mapping[str, Obj]) -> bool:
        claim = claims.get(self._nominated.get(pod["metadata"]["uid"], ""))
        return claim is not None and not claim["metadata"].get("deletionTimestamp")

    def templates(self) -> list[scheduling.PoolTemplate]:
        """Ready, dynamic NodePools with their compatible instance types; empty ones get NoCompatibleInstanceTypes."""
        claims = self.list(NODECLAIM_API, "nodeclaims")
        daemonsets = self.list("apps/v1", "daemonsets")
        out = []
        for pool in self.list(API, "nodepools"):
            spec = pool.get("spec") or {}
            if pool["metadata"].get("deletionTimestamp") or spec.get("replicas") is not None:
                continue
            if not condition_true(pool, "Ready"):
                continue
            name = pool["metadata"]["name"]
            template = spec.get("template") or {}
            tspec = template.get("spec") or {}
            reqs = [dict(r) for r in tspec.get("requirements") or []]
            types = matching_instance_types(reqs, instance_types())
            if not types:
                self._publish(
                    pool,
                    "Warning",
                    "NoCompatibleInstanceTypes",
                    "NodePool requirements filtered out all compatible available instance types",
                    NO_COMPATIBLE_DEDUPE,
                )
                continue
            options = sorted(
                ((it, parse_map(capacity_for(it.name)[1])) for it in types),
                key=lambda pair: (offering_price(pair[0].name, "on-demand"), pair[0].name),
            )
            limits = scheduling.parse_limits(spec.get("limits"))
            remaining = None
            if limits is not None:
                used = pool_usage(
                    [c for c in claims if (c["metadata"].get("labels") or {}).get(LABEL_NODEPOOL) == name]
                )
                if self.ctx.faults.is_active(Fault.NAP_LIMITS_EXHAUSTED):
                    used = {**used, **limits}
                remaining = {k: v - used.get(k, Decimal(0)) for k, v in limits.items()}
            labels = {**(template.get("metadata") or {}).get("labels", {}), LABEL_NODEPOOL: name}
            for req in reqs:
                if req.get("operator") == "In" and len(req.get("values") or []) == 1:
                    labels.setdefault(str(req["key"]), str(req["values"][0]))
            tmpl = scheduling.PoolTemplate(
                name=name,
                weight=int(spec.get("weight") or 0),
                requirements=reqs,
                taints=[dict(t) for t in tspec.get("taints") or []],
                labels=labels,
                instance_types=options,
                remaining=remaining,
            )
            tmpl.daemon_overhead = daemon_overhead(daemonsets, tmpl)
            out.append(tmpl)
        return out

    def provision(self) -> bool:
        """One provisioning pass; True when some pods could not be provisioned (retried later)."""
        claims = {c["metadata"]["name"]: c for c in self.list(NODECLAIM_API, "nodeclaims")}
        pods = [p for p in self.list("v1", "pods") if provisionable(p) and not self._waiting(p, claims)]
        if not pods or not self.list(API, "nodepools"):
            return False
        results = scheduling.schedule(pods, self.templates())
        for claim in results.claims:
            created = self._create_claim(claim)
            for pod in claim.pods:
                self._nominated[pod["metadata"]["uid"]] = created["metadata"]["name"]
                self.event(
                    pod,
                    "Normal",
                    "Nominated",
                    f"Pod should schedule on: nodeclaim/{created['metadata']['name']}",
                    "karpenter",
                )
        by_key = {scheduling.pod_key(p): p for p in pods}
        for key, error in results.errors.items():
            self._publish(
                by_key[key],
                "Warning",
                "FailedScheduling",
                f"Failed to schedule pod, {error}",
                FAILED_SCHEDULING_DEDUPE,
            )
        return bool(results.errors)

    def _publish(self, obj: Obj, type_: str, reason: str, message: str, dedupe: float) -> None:
        """Karpenter's recorder drops a repeat of the same event within its dedupe window."""
        now = self.clock.elapsed()
        key = (obj["metadata"].get("uid", obj["metadata"]["name"]), reason + message)
        last = self._published.get(key)
        if last is not None and now - last < dedupe:
            return
        self._published[key] = now
        self.event(obj, type_, reason, message, "karpenter")

    def _create_claim(self, claim: scheduling.NewClaim) -> Obj:
        pool = self.get(API, "nodepools", claim.pool.name) or {}
        template = (pool.get("spec") or {}).get("template") or {}
        tspec = template.get("spec") or {}
        meta = template.get("metadata") or {}
        digest = hashlib.sha256(f"{claim.pool.name}{self.clock.elapsed()}{id(claim)}".encode()).hexdigest()
        manifest: Obj = {
            "apiVersion": NODECLAIM_API,
            "kind": "NodeClaim",
            "metadata": {
                "name": f"{claim.pool.name}-{digest[:5]}",
                "labels": {**(meta.get("labels") or {}), LABEL_NODEPOOL: claim.pool.name},
                "annotations": {
                    **(meta.get("annotations") or {}),
                    "karpenter.sh/nodepool-hash-version": "v3",
                    "karpenter.azure.com/aksnodeclass-hash-version": "v3",
                },
                "ownerReferences": [
                    {
                        "apiVersion": API,
                        "kind": "NodePool",
                        "name": claim.pool.name,
                        "uid": pool.get("metadata", {}).get("uid", ""),
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "nodeClassRef": tspec.get("nodeClassRef") or {},
                "requirements": scheduling.claim_requirements(claim),
                "resources": {
                    "requests": {k: _format(k, v) for k, v in sorted(claim.requests.items()) if v > 0}
                },
                **({"taints": tspec["taints"]} if tspec.get("taints") else {}),
                **({"startupTaints": tspec["startupTaints"]} if tspec.get("startupTaints") else {}),
                "expireAfter": tspec.get("expireAfter", "720h"),
                **(
                    {"terminationGracePeriod": tspec["terminationGracePeriod"]}
                    if tspec.get("terminationGracePeriod")
                    else {}
                ),
            },
        }
        return self.store.create(self.rt(NODECLAIM_API, "nodeclaims"), manifest)
