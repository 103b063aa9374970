"""Node Auto-Provisioning (Karpenter on AKS): typed views of NodePools and AKSNodeClasses, what their
specs promise (judged against the sizing catalog's instance types), and a GPU probe's lifecycle, measured.

The NodePool judgements are pure functions of objects, so they run on a live cluster's objects and on YAML
alike (static mode). The probe's lifecycle is a chain of watch-based waits with deadlines that ends early,
with Karpenter's own reason and the fix, on every failure Karpenter or Azure reports.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field

from pytest_aksai._errors import Finding
from pytest_aksai._public import public
from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._evidence import evidence
from pytest_aksai.kube._kaito import Condition, Metadata, NodeClaim
from pytest_aksai.kube._rest import Kind, Obj
from pytest_aksai.kube._wait import (
    Observation,
    WaitAborted,
    WaitTimeout,
    describe_object,
    recent_events,
    wait_for,
)
from pytest_aksai.sizing import (
    InstanceType,
    do_not_disrupt_grace,
    family_hint,
    instance_type,
    matching_instance_types,
    requirement_matches,
    unknown_label_problems,
)

AKSNODECLASSES = Kind(
    "karpenter.azure.com", "v1beta1", "aksnodeclasses", namespaced=False, kind="AKSNodeClass"
)
GPU_RESOURCE = "nvidia.com/gpu"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
LABEL_NODEPOOL = "karpenter.sh/nodepool"
LABEL_CAPACITY_TYPE = "karpenter.sh/capacity-type"
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
SPOT_TAINT_KEY = "kubernetes.azure.com/scalesetpriority"
FAIL_FAST_LAUNCH_REASONS = frozenset(
    {
        "SubscriptionQuotaReached",
        "SKUNotAvailable",
        "AllocationFailure",
        "ZonalAllocationFailure",
        "OverconstrainedZonalAllocationFailure",
        "OverconstrainedAllocationFailure",
        "LaunchFailed",
        "InstanceTypeResolutionFailed",
        "NodeClassReadinessUnknown",
    }
)
"""NodeClaim `Launched` reasons (kubernetes-sigs/karpenter launch.go, Azure/karpenter-provider-azure
offerings/commonerrorhandlers.go) that mean the VM will not come without a change."""
QUOTA_FIX = (
    "request more vCPU quota for the VM family (https://aka.ms/quotas, or `az quota update`), or let the "
    "NodePool choose other families (karpenter.azure.com/sku-family or sku-name requirements)"
)
DISRUPTION_SLACK_S = 10 + 15 + 300
"""After consolidateAfter: one disruption poll (10 s), the 15 s re-validation, then drain and VM deletion
(up to 5 min on AKS)."""
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


class _View(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class _Status(_View):
    conditions: list[Condition] = Field(default_factory=list)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def is_true(self, type_: str) -> bool:
        cond = self.condition(type_)
        return cond is not None and cond.status == "True"


class NodePoolStatus(_Status):
    resources: dict[str, str] = Field(default_factory=dict)
    nodes: int | None = None


@public
class NodePool(_View):
    """`karpenter.sh/v1` NodePool (cluster-scoped)."""

    metadata: Metadata
    spec: dict[str, Any] = Field(default_factory=dict)
    status: NodePoolStatus = Field(default_factory=NodePoolStatus)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def template(self) -> dict[str, Any]:
        return dict((self.spec.get("template") or {}).get("spec") or {})

    @property
    def template_labels(self) -> dict[str, str]:
        return dict(((self.spec.get("template") or {}).get("metadata") or {}).get("labels") or {})

    @property
    def requirements(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.template.get("requirements") or []]

    @property
    def taints(self) -> list[dict[str, Any]]:
        return [dict(t) for t in self.template.get("taints") or []]

    @property
    def limits(self) -> dict[str, str]:
        return {k: str(v) for k, v in (self.spec.get("limits") or {}).items()}

    @property
    def consolidate_after(self) -> str | None:
        """`spec.disruption.consolidateAfter` as written (None when the NodePool omits it)."""
        value = (self.spec.get("disruption") or {}).get("consolidateAfter")
        return None if value is None else str(value)

    @property
    def node_class(self) -> str | None:
        return (self.template.get("nodeClassRef") or {}).get("name")

    @property
    def instance_types(self) -> list[InstanceType]:
        return matching_instance_types(self.requirements)

    @property
    def capacity_types(self) -> set[str]:
        if not self._on(LABEL_CAPACITY_TYPE):
            return {"on-demand"}  # Karpenter's default
        allowed = {"on-demand", "spot"}
        return {
            c
            for c in allowed
            if all(requirement_matches(r, {LABEL_CAPACITY_TYPE: c}) for r in self._on(LABEL_CAPACITY_TYPE))
        }

    def _on(self, key: str) -> list[dict[str, Any]]:
        return [r for r in self.requirements if r.get("key") == key]

    def requirement_problems(self) -> list[str]:
        """Requirements on labels NAP does not know, or matching no instance type of the catalog."""
        return requirement_problems(self)

    def taint_problems(self, objects: Sequence[Obj]) -> list[str]:
        return taint_problems(self, objects)

    def limit_problems(self, objects: Sequence[Obj]) -> list[str]:
        return limit_problems(self, objects)

    def consolidation_problems(self, budget_s: float) -> list[str]:
        return consolidation_problems(self, budget_s)

    def spot_problems(self, objects: Sequence[Obj]) -> list[str]:
        return spot_problems(self, objects)

    def nodeclass_problems(self, objects: Sequence[Obj], *, live: bool) -> list[str]:
        return nodeclass_problems(self, objects, live=live)

    def admits(self, labels: Mapping[str, str]) -> list[str]:
        """The requirements a node's labels violate (empty: the node is one this NodePool may create)."""
        return [
            f"{r.get('key')} {r.get('operator')} {r.get('values') or ''} (node has {labels.get(str(r.get('key')), 'no such label')})"
            for r in self.requirements
            if not requirement_matches(r, labels)
        ]

    @property
    def is_gpu(self) -> bool:
        if GPU_RESOURCE in self.limits or any(t.get("key") == GPU_RESOURCE for t in self.taints):
            return True
        types = self.instance_types
        return bool(types) and all(it.is_gpu for it in types)


@public
class AKSNodeClass(_View):
    """`karpenter.azure.com/v1beta1` AKSNodeClass (cluster-scoped)."""

    metadata: Metadata
    spec: dict[str, Any] = Field(default_factory=dict)
    status: _Status = Field(default_factory=_Status)


def duration_seconds(text: str | None) -> float | None:
    """A Go duration (`2m`, `1h30m`) in seconds; None for `Never`, None or anything else."""
    if text is None or text == "Never":
        return None
    match = _DURATION.match(text.strip())
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def nodepools(cluster: Cluster) -> list[NodePool]:
    return [NodePool.model_validate(o) for o in _rest.items(cluster._api, _rest.NODEPOOLS)]


def read_nodepool(cluster: Cluster, name: str) -> NodePool | None:
    obj = _rest.get(cluster._api, _rest.NODEPOOLS, name)
    return None if obj is None else NodePool.model_validate(obj)


def nap_objects(cluster: Cluster) -> list[Obj]:
    """What the NodePool judgements read from a live cluster: NodePools, AKSNodeClasses, GPU workloads."""
    objects: list[Obj] = []
    kinds = [_rest.NODEPOOLS, _rest.DEPLOYMENTS, _rest.STATEFULSETS, _rest.SERVICES]
    if cluster.serves(AKSNODECLASSES.group, AKSNODECLASSES.version):
        kinds.append(AKSNODECLASSES)
    if cluster.serves(_rest.SCALEDOBJECTS.group, _rest.SCALEDOBJECTS.version):
        kinds.append(_rest.SCALEDOBJECTS)
    for kind in kinds:
        objects.extend(_rest.typed_items(cluster._api, kind))
    return objects


# --- what a NodePool promises -----------------------------------------------------------------------------


def requirement_problems(pool: NodePool) -> list[str]:
    """Why NAP can provision nothing (or not what was meant) from this NodePool, one sentence each."""
    problems = [f"requirement on {p}" for p in unknown_label_problems(pool.requirements)]
    if pool.instance_types:
        return problems
    culprits = []
    for req in pool.requirements:
        if not matching_instance_types([req]):
            values = " ".join(str(v) for v in req.get("values") or [])
            culprits.append(
                f"{req.get('key')} {req.get('operator')} [{values}] matches no instance type of the catalog"
                + family_hint(req)
            )
    problems.append(
        "the requirements match no instance type, so NAP can provision nothing from this NodePool (its pods get "
        "'nodepool requirements filtered out all available instance types' and the NodePool "
        "NoCompatibleInstanceTypes): "
        + ("; ".join(culprits) or "no single requirement excludes every SKU, but together they do")
    )
    return problems


def _pod_template(workload: Mapping[str, Any]) -> Obj | None:
    template = ((workload.get("spec") or {}).get("template")) or None
    return dict(template) if template else None


def _gpus_per_pod(template: Mapping[str, Any]) -> int:
    total = 0
    for container in (template.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        value = (resources.get("limits") or {}).get(GPU_RESOURCE) or (resources.get("requests") or {}).get(
            GPU_RESOURCE
        )
        total += int(str(value)) if value is not None else 0
    return total


def _tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if (tol.get("operator") or "Equal") == "Exists":
            if not tol.get("key") or tol.get("key") == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _pod_requirements(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    reqs = [
        {"key": k, "operator": "In", "values": [str(v)]} for k, v in (spec.get("nodeSelector") or {}).items()
    ]
    terms = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    if terms:
        reqs.extend(dict(e) for e in terms[0].get("matchExpressions") or [])
    return reqs


def could_land_on(template: Mapping[str, Any], pool: NodePool, *, ignore_taints: bool = False) -> bool:
    """Whether Karpenter would provision a node of `pool` for a pod of this template."""
    spec = template.get("spec") or {}
    if not ignore_taints:
        tolerations = spec.get("tolerations") or []
        for taint in pool.taints:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
                return False
    from pytest_aksai.sizing import WELL_KNOWN

    pod_reqs = _pod_requirements(spec)
    defined = {**pool.template_labels, LABEL_NODEPOOL: pool.name}
    if any(r.get("key") == LABEL_NODEPOOL and not requirement_matches(r, defined) for r in pod_reqs):
        return False
    pool_keys = {str(r.get("key")) for r in pool.requirements}
    for req in pod_reqs:
        key = str(req.get("key"))
        if key in WELL_KNOWN:
            continue
        if key in defined and not requirement_matches(req, defined):
            return False
        if (
            key not in defined
            and key not in pool_keys
            and req.get("operator") not in ("NotIn", "DoesNotExist")
        ):
            return False
    return bool(
        matching_instance_types(
            [*pool.requirements, *[r for r in pod_reqs if str(r.get("key")) in WELL_KNOWN]]
        )
    )


def gpu_workloads(objects: Iterable[Obj]) -> list[tuple[str, Obj, Obj, int]]:
    """(name `Kind ns/name`, workload, pod template, GPUs per pod) of every Deployment/StatefulSet asking for GPUs."""
    out = []
    for obj in objects:
        if obj.get("kind") not in ("Deployment", "StatefulSet"):
            continue
        template = _pod_template(obj)
        if template is None:
            continue
        gpus = _gpus_per_pod(template)
        if gpus:
            meta = obj.get("metadata") or {}
            out.append(
                (f"{obj['kind']} {meta.get('namespace', 'default')}/{meta.get('name')}", obj, template, gpus)
            )
    return out


def taint_problems(pool: NodePool, objects: Sequence[Obj]) -> list[str]:
    """A GPU NodePool keeps other pods off with a NoSchedule taint, and a GPU workload that matches it but does
    not tolerate its taints has another NodePool to land on."""
    problems = []
    hard = [t for t in pool.taints if t.get("effect") in ("NoSchedule", "NoExecute")]
    if not hard:
        problems.append(
            "has no NoSchedule taint, so any pod Karpenter provisions for may land on a GPU node (and keep it from "
            f'being consolidated); add taints: [{{key: {GPU_RESOURCE}, value: "true", effect: NoSchedule}}]'
        )
    others = [NodePool.model_validate(o) for o in objects if o.get("kind") == "NodePool"]
    others = [other for other in others if other.name != pool.name]
    for name, _, template, _ in gpu_workloads(objects):
        if could_land_on(template, pool, ignore_taints=True) and not could_land_on(template, pool):
            if any(could_land_on(template, other) for other in others):
                continue  # kept off this pool on purpose (a spot taint, say): another NodePool serves it
            missing = [
                f"{t.get('key')}={t.get('value') or ''}:{t.get('effect')}"
                for t in hard
                if not _tolerates((template.get("spec") or {}).get("tolerations") or [], t)
            ]
            problems.append(
                f"{name} asks for GPUs and matches this NodePool but does not tolerate its taint(s) "
                f"{', '.join(missing)}: Karpenter never provisions a node for it; add the toleration(s)"
            )
    return problems


def _replicas(workload: Obj, objects: Sequence[Obj]) -> tuple[int, str]:
    """The most replicas the workload can run: a ScaledObject's maxReplicaCount, else spec.replicas."""
    meta = workload.get("metadata") or {}
    for obj in objects:
        if obj.get("kind") != "ScaledObject":
            continue
        ometa = obj.get("metadata") or {}
        target = (obj.get("spec") or {}).get("scaleTargetRef") or {}
        if ometa.get("namespace") == meta.get("namespace") and target.get("name") == meta.get("name"):
            return int(
                (obj.get("spec") or {}).get("maxReplicaCount", 100)
            ), f"ScaledObject {ometa.get('name')} maxReplicaCount"
    return int((workload.get("spec") or {}).get("replicas", 1)), "spec.replicas"


def limit_problems(pool: NodePool, objects: Sequence[Obj]) -> list[str]:
    """Limits exist, cap GPUs, allow one node of the largest SKU, and cover the demand of the workloads it serves."""
    limits = pool.limits
    if not limits:
        return ["has no spec.limits: nothing caps what NAP may spend on it; set limits with nvidia.com/gpu"]
    if GPU_RESOURCE not in limits:
        return [
            f"spec.limits ({', '.join(sorted(limits))}) do not cap {GPU_RESOURCE}; add {GPU_RESOURCE}: <GPUs>"
        ]
    try:
        cap = int(limits[GPU_RESOURCE])
    except ValueError:
        return [f"spec.limits[{GPU_RESOURCE}] is {limits[GPU_RESOURCE]!r}, not a whole number of GPUs"]
    problems = []
    types = pool.instance_types
    if types:
        smallest = min(it.gpu_count for it in types)
        if cap < smallest:
            problems.append(
                f"limits {GPU_RESOURCE}: {cap} is below the smallest SKU it can launch ({smallest} GPU(s)): NAP can "
                "launch nothing (all available instance types exceed limits for nodepool)"
            )
    demand, parts = 0, []
    for name, workload, template, gpus in gpu_workloads(objects):
        if could_land_on(template, pool):
            replicas, source = _replicas(workload, objects)
            demand += replicas * gpus
            parts.append(f"{name}: {replicas} ({source}) × {gpus} GPU")
    if demand > cap:
        problems.append(
            f"limits {GPU_RESOURCE}: {cap} is below the largest demand its workloads can make, {demand} GPUs "
            f"({'; '.join(parts)}): replicas beyond the limit stay Pending; raise the limit to {demand} or lower "
            "the replicas"
        )
    return problems


def consolidation_problems(pool: NodePool, budget_s: float) -> list[str]:
    value = pool.consolidate_after
    if value is None:
        return [
            "sets no spec.disruption.consolidateAfter (the AKS CRD requires it); set it, e.g. consolidateAfter: 2m, "
            "so an idle GPU node goes away"
        ]
    seconds = duration_seconds(value)
    if seconds is None:
        return [
            f"consolidateAfter is {value!r}: an empty GPU node is never removed and costs money all day; set a "
            f"duration within the idle budget ({budget_s:g} s, profile key consolidate_after_max)"
        ]
    if seconds > budget_s:
        return [
            f"consolidateAfter {value} ({seconds:g} s) exceeds the idle budget of {budget_s:g} s (profile key "
            "consolidate_after_max): an idle GPU node runs that long after its last pod; lower consolidateAfter"
        ]
    return []


def spot_problems(pool: NodePool, objects: Sequence[Obj]) -> list[str]:
    """A NodePool that may launch spot VMs must not be able to host synchronous inference (pods behind a Service)."""
    if "spot" not in pool.capacity_types:
        return []
    services = [o for o in objects if o.get("kind") == "Service"]
    problems = []
    for name, workload, template, _ in gpu_workloads(objects):
        labels = (template.get("metadata") or {}).get("labels") or {}
        namespace = (workload.get("metadata") or {}).get("namespace", "default")
        served = [
            s["metadata"]["name"]
            for s in services
            if (s.get("metadata") or {}).get("namespace", "default") == namespace
            and (sel := (s.get("spec") or {}).get("selector"))
            and all(labels.get(k) == v for k, v in sel.items())
        ]
        if served and could_land_on(template, pool):
            problems.append(
                f"{name} serves synchronous inference (Service {', '.join(served)}) and can land on this spot "
                "NodePool: an eviction drops its in-flight requests. Require karpenter.sh/capacity-type In "
                f"[on-demand] on it, or taint the spot pool ({SPOT_TAINT_KEY}=spot:NoSchedule) and keep the "
                "toleration off synchronous workloads"
            )
    return problems


def nodeclass_problems(pool: NodePool, objects: Sequence[Obj], *, live: bool) -> list[str]:
    """The NodePool's AKSNodeClass exists and has no placeholder subnet; on a live cluster both are Ready."""
    problems = []
    name = pool.node_class
    classes = {
        (o.get("metadata") or {}).get("name"): AKSNodeClass.model_validate(o)
        for o in objects
        if o.get("kind") == "AKSNodeClass"
    }
    nc = classes.get(name)
    if nc is None:
        problems.append(f"names AKSNodeClass {name!r} in nodeClassRef, which does not exist")
    else:
        subnet = str(nc.spec.get("vnetSubnetID") or "")
        if "<" in subnet or ">" in subnet:
            problems.append(
                f"AKSNodeClass {name} has a placeholder vnetSubnetID {subnet!r}; set your subnet's resource ID"
            )
        if live and not nc.status.is_true("Ready"):
            cond = nc.status.condition("Ready")
            problems.append(
                f"AKSNodeClass {name} is not Ready" + (f" ({cond.reason}: {cond.message})" if cond else "")
            )
    if live:
        for type_ in ("NodeClassReady", "Ready"):
            cond = pool.status.condition(type_)
            if cond is None or cond.status != "True":
                detail = f"{cond.status}, {cond.reason}: {cond.message}" if cond else "not reported"
                problems.append(f"condition {type_} is {detail}")
    return problems


# --- the GPU probe -----------------------------------------------------------------------------------------


@public
@dataclass
class ProbeRun:
    """A GPU probe's lifecycle: where it ran and when each phase happened (cluster seconds since the probe was
    created)."""

    pod: str
    namespace: str
    phases: dict[str, float] = field(default_factory=dict)
    nodeclaim: str | None = None
    node: str | None = None
    node_labels: dict[str, str] = field(default_factory=dict)
    gpu_allocatable: int | None = None
    log: str = ""
    nodepool: str | None = None
    deprovision_error: Finding | None = None
    """Set when the node did not go away after the probe (judged by its own check)."""

    @property
    def instance_type(self) -> str:
        return self.node_labels.get(LABEL_INSTANCE_TYPE, "?")

    def cheaper_fits(self, pool: NodePool) -> list[tuple[str, float]]:
        """Instance types the NodePool allows that also fit the probe (1 GPU) and cost less than the chosen one
        (catalog on-demand prices), cheapest first."""
        chosen = instance_type(self.instance_type)
        if chosen is None or chosen.price_per_hour is None:
            return []
        capacity = self.node_labels.get(LABEL_CAPACITY_TYPE, "on-demand")
        reqs = [*pool.requirements, {"key": LABEL_CAPACITY_TYPE, "operator": "In", "values": [capacity]}]
        return sorted(
            (it.name, it.price_per_hour)
            for it in matching_instance_types(reqs)
            if it.gpu_count >= 1
            and it.price_per_hour is not None
            and it.price_per_hour < chosen.price_per_hour
        )


def _stamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _since(start: datetime, value: str | None) -> float | None:
    when = _stamp(value)
    return None if when is None else (when - start).total_seconds()


def _claim_failure(claim: Obj) -> str | None:
    for cond in (claim.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") == "Launched"
            and cond.get("status") != "True"
            and cond.get("reason") in FAIL_FAST_LAUNCH_REASONS
        ):
            fix = (
                QUOTA_FIX
                if cond["reason"] == "SubscriptionQuotaReached"
                else (
                    "choose other SKUs, zones or capacity types in the NodePool's requirements "
                    "(https://aka.ms/azureskunotavailable)"
                )
            )
            return (
                f"Launched={cond.get('status')}, reason {cond['reason']}: {cond.get('message')}. Fix: {fix}"
            )
    return None


def _watch_events(
    cluster: Cluster, namespace: str, name: str, until: Callable[[Obj], str | None], timeout: float
) -> tuple[Obj | None, list[Obj]]:
    """Events about `name` until `until(event)` returns a verdict; (that event, every event seen)."""
    scale = cluster.time_scale
    deadline = time.monotonic() + timeout / scale
    selector = f"involvedObject.name={name}"
    seen: list[Obj] = []
    while True:
        listed = _rest.list_(cluster._api, _rest.EVENTS, namespace, field_selector=selector)
        for event in listed.get("items") or []:
            seen.append(event)
            if until(event):
                return event, seen
        version = str((listed.get("metadata") or {}).get("resourceVersion", ""))
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                for item in _rest.watch(
                    cluster._api,
                    _rest.EVENTS,
                    namespace,
                    resource_version=version,
                    timeout_seconds=max(1, min(60, int(remaining + 1))),
                    field_selector=selector,
                ):
                    obj = item.get("object") or {}
                    version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                    if item.get("type") in ("ADDED", "MODIFIED"):
                        seen.append(obj)
                        if until(obj):
                            return obj, seen
                    if time.monotonic() >= deadline:
                        break
            return None, seen
        except ApiException as exc:
            if exc.status != 410:
                raise


def _karpenter_verdict(event: Obj) -> str | None:
    message = str(event.get("message") or "")
    if event.get("reason") == "Nominated" and "nodeclaim/" in message:
        return "nominated"
    if event.get("reason") == "FailedScheduling" and message.startswith("Failed to schedule pod,"):
        return "failed"
    return None


def probe_manifest(
    template: Mapping[str, Any],
    name: str,
    labels: Mapping[str, str],
    sku: str | None,
    nodepool: str | None,
    tolerate: Sequence[Mapping[str, Any]] = (),
) -> Obj:
    """The probe pod from the packaged manifest, labelled with the run, pinned to the SKU/NodePool if given and
    tolerating the taints in `tolerate` (the pinned NodePool's)."""
    import copy

    pod = copy.deepcopy(dict(template))
    meta = pod.setdefault("metadata", {})
    meta["name"] = name
    meta.pop("generateName", None)
    meta.setdefault("labels", {}).update(labels)
    selector = pod.setdefault("spec", {}).setdefault("nodeSelector", {})
    if sku:
        selector[LABEL_INSTANCE_TYPE] = sku
    if nodepool:
        selector[LABEL_NODEPOOL] = nodepool
    tolerations = pod["spec"].setdefault("tolerations", [])
    for taint in tolerate:
        wanted = {
            "key": taint.get("key"),
            "operator": "Equal" if taint.get("value") else "Exists",
            **({"value": taint["value"]} if taint.get("value") else {}),
            "effect": taint.get("effect"),
        }
        if not _tolerates(tolerations, taint):
            tolerations.append(wanted)
    return pod


def run_gpu_probe(cluster: Cluster, namespace: str, manifest: Obj, budgets: Mapping[str, float]) -> ProbeRun:
    """Create the probe, follow it through NodeClaim created → Launched → Registered → Initialized → Succeeded.

    `budgets` (cluster seconds): `nominate`, `launch`, `register`, `initialize`, `run`. Fails early with
    Karpenter's reason on `FailedScheduling`, a failed launch or a NodeClaim deleted before it is Ready.
    """
    __tracebackhide__ = True
    name = manifest["metadata"]["name"]
    settle_empty_gpu_nodes(cluster)  # else the probe takes a leftover node and NAP provisions nothing
    created = _rest.create(cluster._api, _rest.PODS, manifest, namespace)
    start = _stamp(created["metadata"].get("creationTimestamp")) or datetime.now().astimezone()
    run = ProbeRun(pod=name, namespace=namespace)
    event, seen = _watch_events(cluster, namespace, name, _karpenter_verdict, budgets["nominate"])
    if event is None or _karpenter_verdict(event) == "failed":
        pod = _rest.get(cluster._api, _rest.PODS, name, namespace)
        details = [f"{e.get('reason')}: {e.get('message')}" for e in seen[-5:]]
        pools = ", ".join(p.name for p in nodepools(cluster)) or "none"
        if event is not None:
            message = str(event.get("message"))
            raise WaitAborted(
                timeline=[],
                what=f"Karpenter cannot provision a node for the GPU probe {namespace}/{name}: {message}",
                expected="a NodeClaim nominated for the probe within seconds",
                observed=describe_object(pod),
                where=f"kubectl describe pod {name} -n {namespace}; kubectl describe nodepools ({pools})",
                fix=_scheduling_fix(message),
                details=details,
            )
        raise WaitTimeout(
            timeline=[],
            what=f"no NodeClaim was nominated for the GPU probe {namespace}/{name} within {budgets['nominate']:g} "
            "cluster seconds, and Karpenter reported no reason",
            expected="a Nominated event (Pod should schedule on: nodeclaim/…) within seconds",
            observed=describe_object(pod),
            where=f"kubectl describe pod {name} -n {namespace}; kubectl get nodepools,nodeclaims",
            fix="Check that NAP is enabled on the cluster and that a NodePool is Ready",
            details=details,
        )
    run.nodeclaim = str(event["message"]).split("nodeclaim/", 1)[1].split(",")[0].strip()
    _label_as_the_runs(cluster, run.nodeclaim, manifest)
    claim_obj = _rest.get(cluster._api, _rest.NODECLAIMS, run.nodeclaim)
    run.phases["nodeclaim_created_s"] = (
        _since(start, (claim_obj or {}).get("metadata", {}).get("creationTimestamp")) or 0.0
    )

    def claim_abort(obj: Obj) -> str | None:
        return _claim_failure(obj)

    last_seen: dict[str, Obj] = {}

    def wait_claim(
        condition: str, budget: float, extra_abort: Callable[[Obj], str | None] | None = None
    ) -> Obj:
        def aborted(obj: Obj) -> str | None:
            return claim_abort(obj) or (extra_abort(obj) if extra_abort else None)

        def reached(obj: Obj | None) -> bool:
            if obj is not None:
                last_seen["claim"] = obj
            return obj is None or _true(obj, condition)

        result = wait_for(
            cluster,
            _rest.NODECLAIMS,
            run.nodeclaim or "",
            None,
            until=reached,
            abort_if=aborted,
            timeout=budget,
            expected=f"{condition}=True",
        )
        registered_node = ((last_seen.get("claim") or {}).get("status") or {}).get("nodeName")
        if result.obj is None and registered_node and _node_lost(cluster, registered_node):
            # The node registered, then went with its NodeClaim (e.g. a spot eviction) before this phase.
            claim_labels = (last_seen["claim"].get("metadata") or {}).get("labels") or {}
            run.node = run.node or registered_node
            run.node_labels = run.node_labels or dict(claim_labels)
            run.nodepool = run.nodepool or claim_labels.get(LABEL_NODEPOOL)
            raise _node_lost_finding(cluster, run, result.timeline)
        if result.obj is None:
            events = recent_events(cluster, run.nodeclaim or "", "default")
            raise WaitAborted(
                timeline=result.timeline,
                what=f"NodeClaim {run.nodeclaim} of the GPU probe was deleted before {condition}",
                expected=f"{condition}=True",
                observed="absent",
                where="kubectl get events -A --field-selector involvedObject.kind=NodeClaim",
                fix="Read the InsufficientCapacityError / timeout event below; " + QUOTA_FIX,
                details=[f"events: {' | '.join(events)}"] if events else [],
            )
        return result.obj

    obj = wait_claim("Launched", budgets["launch"])
    run.phases["launched_s"] = _since(start, _cond(obj, "Launched").get("lastTransitionTime")) or 0.0
    obj = wait_claim("Registered", budgets["register"])
    run.phases["registered_s"] = _since(start, _cond(obj, "Registered").get("lastTransitionTime")) or 0.0
    try:
        obj = wait_claim("Initialized", budgets["initialize"])
    except WaitTimeout as exc:
        cond = _cond(_rest.get(cluster._api, _rest.NODECLAIMS, run.nodeclaim) or {}, "Initialized")
        if cond.get("reason") == "ResourceNotRegistered":
            raise WaitTimeout(
                timeline=exc.timeline,
                what=f"the probe's node {(obj.get('status') or {}).get('nodeName')} registered but never advertised "
                f"{GPU_RESOURCE} within {budgets['initialize']:g} cluster seconds (NodeClaim {run.nodeclaim} "
                f"Initialized=Unknown, ResourceNotRegistered: {cond.get('message')})",
                expected=f"the NVIDIA device plugin advertising {GPU_RESOURCE} (Karpenter has no initialization timeout)",
                observed="Initialized=Unknown, reason ResourceNotRegistered",
                where="kubectl get pods -n kube-system -l name=nvidia-device-plugin-ds -o wide; kubectl describe node",
                fix="Check the NVIDIA device plugin DaemonSet on the node and the AKSNodeClass gpu.mode (Driver); "
                "a GPU driver that failed to install shows in the node's kubelet log",
            ) from None
        raise
    run.phases["initialized_s"] = _since(start, _cond(obj, "Initialized").get("lastTransitionTime")) or 0.0
    run.node = (obj.get("status") or {}).get("nodeName")
    node = _rest.get(cluster._api, _rest.NODES, run.node or "") or {}
    run.node_labels = dict((node.get("metadata") or {}).get("labels") or {})
    run.nodepool = run.node_labels.get(LABEL_NODEPOOL)
    alloc = ((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE)
    run.gpu_allocatable = int(alloc) if alloc is not None else None

    def pod_failed(pod: Obj) -> str | None:
        if (pod.get("status") or {}).get("phase") == "Failed" and not _node_lost(cluster, run.node):
            return "the probe pod Failed"
        if (pod.get("spec") or {}).get("nodeName") not in (None, run.node):
            return f"the probe ran on {pod['spec']['nodeName']}, not on the node of its NodeClaim"
        return None

    def done_or_lost(pod: Obj | None) -> bool:
        if pod is not None and (pod.get("status") or {}).get("phase") == "Succeeded":
            return True
        return pod is None or _node_lost(cluster, run.node)

    result = wait_for(
        cluster,
        _rest.PODS,
        name,
        namespace,
        until=done_or_lost,
        abort_if=pod_failed,
        timeout=budgets["run"],
        expected="Succeeded (nvidia-smi ran on the GPU node)",
    )
    if ((result.obj or {}).get("status") or {}).get("phase") != "Succeeded":
        raise _node_lost_finding(cluster, run, result.timeline)
    bound = ((result.obj or {}).get("spec") or {}).get("nodeName")
    if bound != run.node:
        raise WaitAborted(
            timeline=result.timeline,
            what=f"the GPU probe ran on node {bound}, not on {run.node}, the node NAP launched for it",
            expected=f"the probe bound to {run.node}",
            observed=f"bound to {bound}",
            where=f"kubectl get pod {name} -n {namespace} -o wide",
            fix="A GPU node with a free GPU took the probe: run the probe when no such node exists, or pin it to a "
            "NodePool whose nodes are all busy",
        )
    finished = [
        ((s.get("state") or {}).get("terminated") or {}).get("finishedAt")
        for s in ((result.obj or {}).get("status") or {}).get("containerStatuses") or []
    ]
    run.phases["probe_succeeded_s"] = _since(start, max((f for f in finished if f), default=None)) or 0.0
    try:
        run.log = _rest.raw_text(cluster._api, f"/api/v1/namespaces/{namespace}/pods/{name}/log")
    except ApiException as exc:
        run.log = f"(no log: {exc.status} {exc.reason})"
    return run


def _label_as_the_runs(cluster: Cluster, claim: str, probe: Obj) -> None:
    """The probe caused this NodeClaim: give it the probe's run and expiry labels, so that cleanup and the
    janitor find the GPU node even after the run was killed."""
    labels = {k: v for k, v in (probe["metadata"].get("labels") or {}).items() if k.startswith("aksai.dev/")}
    try:
        _rest.patch_merge(cluster._api, _rest.NODECLAIMS, claim, {"metadata": {"labels": labels}})
    except ApiException as exc:
        if exc.status != 404:  # already gone: nothing to find later
            raise


NODE_GONE_BUDGET_S = 120.0
"""After a node stops reporting: the node lifecycle controller's 40 s grace, then the cloud node lifecycle
controller deletes a Node whose VM is gone, within seconds."""
SPOT_FIX = (
    "Spot VMs can be evicted at any moment (about 30 s notice; NAP's eviction policy is Delete): run the GPU probe "
    "and synchronous inference on an on-demand NodePool (the profile's nodepools, or a karpenter.sh/capacity-type "
    "In [on-demand] requirement), keep spot for work that retries (batch, queue consumers) with on-demand "
    "capacity behind it, and run again if this eviction was a one-off"
)


def _node_lost(cluster: Cluster, node_name: str | None) -> bool:
    """The node is gone. A node that only stops reporting for a while (NotReady) may come back: the wait goes
    on, up to its budget."""
    return _rest.get(cluster._api, _rest.NODES, node_name or "") is None


def _node_lost_finding(cluster: Cluster, run: ProbeRun, timeline: list[Observation]) -> WaitAborted:
    """What a lost probe node means: on spot capacity, an eviction (its VM gone from Azure)."""
    try:
        wait_for(
            cluster,
            _rest.NODES,
            run.node or "",
            None,
            until=lambda o: o is None,
            timeout=NODE_GONE_BUDGET_S,
            expected="deleted (its VM no longer exists)",
        )
        gone = True
    except WaitTimeout:
        gone = False
    events = recent_events(cluster, run.node or "", "default", limit=8)
    deleting = next((e for e in events if "DeletingNode" in e), None)
    capacity = run.node_labels.get(LABEL_CAPACITY_TYPE, "on-demand")
    where = f"{run.instance_type}, capacity type {capacity}, NodePool {run.nodepool}"
    if capacity == "spot" and gone and deleting:
        what = (
            f"the GPU probe's node {run.node} ({where}) was evicted mid-run: Azure reclaimed the spot VM, the node "
            f"stopped reporting and was deleted ({deleting or 'Node deleted'}); the probe {run.namespace}/{run.pod} "
            f"and NodeClaim {run.nodeclaim} went with it"
        )
        fix = SPOT_FIX
    else:
        claim_events = recent_events(cluster, run.nodeclaim or "", "default", limit=8)
        events += [e for e in claim_events if e not in events]
        state = "was deleted" if gone else "stopped reporting (Ready not True)"
        what = (
            f"the GPU probe's node {run.node} ({where}) {state} while the probe {run.namespace}/{run.pod} ran"
            + (f" ({deleting})" if deleting else "")
        )
        fix = (
            SPOT_FIX
            if capacity == "spot"
            else "Look at the node's events and the VM in the node resource group (kubectl describe node; Azure "
            "activity log): a VM deleted or stopped under a running node takes its pods with it"
        )
    return WaitAborted(
        timeline=timeline,
        what=what,
        expected="the probe Succeeded on its node, which stays until consolidation removes it",
        observed=f"node {run.node} {'gone' if gone else 'NotReady'}, probe "
        f"{'gone' if _rest.get(cluster._api, _rest.PODS, run.pod, run.namespace) is None else 'not Succeeded'}",
        where=f"kubectl get events -A --field-selector involvedObject.name={run.node}; Azure activity log of the "
        "node resource group",
        fix=fix,
        details=[f"node events: {' | '.join(events)}"] if events else [],
    )


def _scheduling_fix(message: str) -> str:
    if "exceed limits for nodepool" in message or "limits have been exhausted" in message:
        return (
            "Raise the NodePool's spec.limits (nvidia.com/gpu, cpu, memory, nodes) or free capacity it holds"
        )
    if "filtered out all available instance types" in message or "no instance type" in message:
        return (
            "Fix the NodePool requirements so they match an instance type (karpenter.azure.com/sku-family takes "
            "one letter, N for every GPU size); see the NodePool's NoCompatibleInstanceTypes event"
        )
    if "did not tolerate taint" in message:
        return "Give the GPU workloads the tolerations for the NodePool's taints"
    return "Change the NodePool (requirements, taints, limits) or the pod so that they are compatible"


def _true(obj: Obj, type_: str) -> bool:
    return _cond(obj, type_).get("status") == "True"


def _cond(obj: Mapping[str, Any], type_: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def await_deprovision(cluster: Cluster, run: ProbeRun, budget: float) -> None:
    """After the probe is gone: Consolidatable, then NodeClaim and node gone; records the phases."""
    __tracebackhide__ = True
    if not run.nodeclaim:
        return
    deleted = time.monotonic()
    result = wait_for(
        cluster,
        _rest.NODECLAIMS,
        run.nodeclaim,
        None,
        until=lambda o: o is None or _true(o, "Consolidatable"),
        timeout=budget,
        expected="Consolidatable=True (consolidateAfter passed since the last pod left)",
    )
    run.phases["consolidatable_after_probe_s"] = result.elapsed
    wait_for(
        cluster,
        _rest.NODECLAIMS,
        run.nodeclaim,
        None,
        until=lambda o: o is None,
        timeout=max(budget - result.elapsed, 1.0),
        expected="deleted (Disrupting NodeClaim: Empty)",
    )
    if run.node:
        wait_for(
            cluster, _rest.NODES, run.node, None, until=lambda o: o is None, timeout=60, expected="deleted"
        )
    run.phases["node_gone_after_probe_s"] = (time.monotonic() - deleted) * cluster.time_scale


def deprovision_after_probe(cluster: Cluster, run: ProbeRun, timeout: float) -> None:
    """Delete the probe, then follow its node out: Consolidatable, NodeClaim and node gone within the NodePool's
    consolidateAfter plus the documented slack (at most `timeout`); a failure is kept in `run.deprovision_error`."""
    _rest.delete(cluster._api, _rest.PODS, run.pod, run.namespace)
    pool = read_nodepool(cluster, run.nodepool or "")
    after = duration_seconds(pool.consolidate_after) if pool is not None else None
    if after is None:
        run.deprovision_error = Finding(
            f"the probe's node {run.node} is never consolidated: its NodePool {run.nodepool} has consolidateAfter "
            f"{pool.consolidate_after if pool is not None else 'unknown (no NodePool)'}",
            expected="a NodePool with consolidateAfter set",
            where=f"kubectl get nodepool {run.nodepool} -o yaml",
            fix="Set spec.disruption.consolidateAfter on the NodePool",
        )
        return
    budget = min(after + DISRUPTION_SLACK_S, timeout)
    try:
        await_deprovision(cluster, run, budget)
    except Finding as exc:
        run.deprovision_error = exc
        # The probe caused this node: remove it now rather than let it bill (and count as idle) until teardown.
        cleanup_probe(cluster, run, run.namespace, 60.0)


def cleanup_probe(cluster: Cluster, run_or_name: ProbeRun | str, namespace: str, timeout: float) -> list[str]:
    """Delete the probe; if the node it caused is still there after `timeout`, delete its NodeClaim (a leaked GPU
    node costs money). Returns what had to be removed by force."""
    name = run_or_name.pod if isinstance(run_or_name, ProbeRun) else run_or_name
    _rest.delete(cluster._api, _rest.PODS, name, namespace)
    claim = run_or_name.nodeclaim if isinstance(run_or_name, ProbeRun) else None
    if claim is None:
        claim = _nominated_claim(cluster, namespace, name)
    if claim is None:
        return []
    try:
        wait_for(
            cluster,
            _rest.NODECLAIMS,
            claim,
            None,
            until=lambda o: o is None,
            timeout=timeout,
            expected="deleted",
        )
        return []
    except WaitTimeout:
        pass
    other = [
        p
        for p in _rest.items(
            cluster._api, _rest.PODS, None, field_selector=f"spec.nodeName={_node_of(cluster, claim)}"
        )
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        and not any(o.get("kind") == "DaemonSet" for o in p["metadata"].get("ownerReferences") or [])
    ]
    if other:
        return [f"NodeClaim {claim} still runs other pods; left in place"]
    _rest.delete(cluster._api, _rest.NODECLAIMS, claim)
    wait_for(
        cluster, _rest.NODECLAIMS, claim, None, until=lambda o: o is None, timeout=timeout, expected="deleted"
    )
    return [f"NodeClaim {claim} (not consolidated after the probe)"]


def _node_of(cluster: Cluster, claim: str) -> str:
    obj = _rest.get(cluster._api, _rest.NODECLAIMS, claim) or {}
    return str((obj.get("status") or {}).get("nodeName") or "-")


def _nominated_claim(cluster: Cluster, namespace: str, pod: str) -> str | None:
    from pytest_aksai.kube._wait import events_about

    for event in reversed(events_about(cluster, pod, namespace)):
        if _karpenter_verdict(event) == "nominated":
            return str(event["message"]).split("nodeclaim/", 1)[1].split(",")[0].strip()
    return None


def probe_evidence(cluster: Cluster, run_or_name: ProbeRun | str, namespace: str) -> str:
    name = run_or_name.pod if isinstance(run_or_name, ProbeRun) else run_or_name
    objects: list[Obj] = []
    claim = (
        run_or_name.nodeclaim
        if isinstance(run_or_name, ProbeRun)
        else _nominated_claim(cluster, namespace, name)
    )
    if claim:
        obj = _rest.get(cluster._api, _rest.NODECLAIMS, claim)
        if obj is not None:
            objects.append({"kind": "NodeClaim", **obj})
    for pool in _rest.items(cluster._api, _rest.NODEPOOLS):
        objects.append({"kind": "NodePool", **pool})
    pod = _rest.get(cluster._api, _rest.PODS, name, namespace)
    return evidence(cluster, objects, [{"kind": "Pod", **pod}] if pod else [])


# --- what idle GPUs cost ------------------------------------------------------------------------------------


@public
@dataclass(frozen=True)
class IdleNode:
    """A GPU node that runs with no inference traffic, why, and what it costs."""

    node: str
    instance_type: str
    capacity_type: str
    cost_per_day: float | None
    """USD/day at the catalog's on-demand price (spot nodes too: an upper bound); None when not in the catalog."""
    pinned_by: str


CONSOLIDATION_SLACK_S = 60.0
"""After `consolidateAfter`: Karpenter's 10 s disruption poll, its 15 s re-validation, the drain and the VM delete."""


def settle_empty_gpu_nodes(cluster: Cluster) -> list[str]:
    """Give every empty GPU node that only waits out its NodePool's `consolidateAfter` that time (plus the
    documented slack) to go, watching each; return the nodes that went.

    Nodes left by an earlier lifecycle (a KEDA scale-to-zero, a previous probe) would otherwise count in the
    idle floor, and take the GPU probe without NAP provisioning anything.
    """
    if not cluster.serves("karpenter.sh"):
        return []
    pools = {p.name: p for p in nodepools(cluster)}
    gone = []
    for idle in _idle_gpu_nodes(cluster):
        if not idle.pinned_by.startswith("empty, waiting for"):
            continue
        node = _rest.get(cluster._api, _rest.NODES, idle.node)
        pool = pools.get(((node or {}).get("metadata") or {}).get("labels", {}).get(LABEL_NODEPOOL, ""))
        wait = duration_seconds(pool.consolidate_after if pool else None)
        if node is None or wait is None:
            continue
        try:
            wait_for(
                cluster,
                _rest.NODES,
                idle.node,
                None,
                until=lambda o: o is None,
                expected=f"the empty node consolidated within consolidateAfter + {CONSOLIDATION_SLACK_S:g} s",
                timeout=wait + CONSOLIDATION_SLACK_S,
            )
            gone.append(idle.node)
        except WaitTimeout:
            continue  # still there: the idle floor reports it, with what keeps it
    return gone


def idle_gpu_nodes(cluster: Cluster) -> list[IdleNode]:
    """Every GPU node and the object that keeps it running: a do-not-disrupt pin (node, NodeClaim, pod),
    `consolidateAfter: Never`, pods on it, or no NodePool at all — once the empty nodes that only wait out
    `consolidateAfter` have had that time to go."""
    settle_empty_gpu_nodes(cluster)
    return _idle_gpu_nodes(cluster)


NODE_LEASES = Kind("coordination.k8s.io", "v1", "leases", kind="Lease")


def _cluster_now(cluster: Cluster) -> datetime:
    """The cluster's clock, within a kubelet heartbeat: the newest node Lease renewal (a simulated cluster's
    clock runs compressed, so the local clock would not do)."""
    renewals = [
        when
        for lease in _rest.items(cluster._api, NODE_LEASES, "kube-node-lease")
        if (when := _stamp((lease.get("spec") or {}).get("renewTime"))) is not None
    ]
    return max(renewals, default=None) or datetime.now().astimezone()


def _idle_gpu_nodes(cluster: Cluster) -> list[IdleNode]:
    now = _cluster_now(cluster)
    pools = {p.name: p for p in nodepools(cluster)} if cluster.serves("karpenter.sh") else {}
    claims = (
        {c["metadata"]["name"]: c for c in _rest.items(cluster._api, _rest.NODECLAIMS)}
        if cluster.serves("karpenter.sh")
        else {}
    )
    pods_by_node: dict[str, list[Obj]] = {}
    for pod in _rest.items(cluster._api, _rest.PODS):
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences") or []):
            continue
        pods_by_node.setdefault(node_name, []).append(pod)
    out = []
    for node in _rest.items(cluster._api, _rest.NODES):
        capacity = (node.get("status") or {}).get("capacity") or {}
        labels = (node.get("metadata") or {}).get("labels") or {}
        it_name = labels.get(LABEL_INSTANCE_TYPE, "?")
        it = instance_type(it_name)
        if not (capacity.get(GPU_RESOURCE) or (it is not None and it.is_gpu)):
            continue
        name = node["metadata"]["name"]
        claim_name = next(
            (
                o["name"]
                for o in node["metadata"].get("ownerReferences") or []
                if o.get("kind") == "NodeClaim"
            ),
            None,
        )
        claim = claims.get(claim_name or "")
        pods = pods_by_node.get(name, [])
        pool = pools.get(labels.get(LABEL_NODEPOOL, ""))
        reason = _pin_reason(node, claim, pods, pool, labels, now)
        price = it.price_per_hour if it is not None else None
        out.append(
            IdleNode(
                name,
                it_name,
                labels.get(LABEL_CAPACITY_TYPE, "on-demand"),
                None if price is None else price * 24,
                reason,
            )
        )
    return out


def _pod_pin(pod: Obj, now: datetime) -> tuple[str | None, str | None]:
    """(the pin a pod's `karpenter.sh/do-not-disrupt` holds now, or a note on why it holds none), as Karpenter
    reads the value: `"true"`, or a duration from the pod's start (v1.12 on); anything else is ignored."""
    value = (pod["metadata"].get("annotations") or {}).get(DO_NOT_DISRUPT)
    if value is None:
        return None, None
    who = f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']}"
    try:
        grace = do_not_disrupt_grace(value)
    except ValueError as exc:
        return None, (
            f'{who}\'s {DO_NOT_DISRUPT}: "{value}" is ignored by Karpenter ({exc}; it takes "true" or a positive '
            "duration such as 30m)"
        )
    started = _stamp((pod.get("status") or {}).get("startTime"))
    if math.isinf(grace) or started is None:
        return f'{who} has {DO_NOT_DISRUPT}: "{value}"', None
    until = started + timedelta(seconds=grace)
    if now < until:
        return (
            f'{who} has {DO_NOT_DISRUPT}: "{value}" (until {until:%Y-%m-%dT%H:%M:%SZ}, {value} after it started)',
            None,
        )
    return None, f'{who}\'s {DO_NOT_DISRUPT}: "{value}" elapsed at {until:%Y-%m-%dT%H:%M:%SZ}'


def _pin_reason(
    node: Obj,
    claim: Obj | None,
    pods: list[Obj],
    pool: NodePool | None,
    labels: Mapping[str, str],
    now: datetime,
) -> str:
    for obj, kind in ((claim, "NodeClaim"), (node, "Node")):
        if obj is not None and (obj["metadata"].get("annotations") or {}).get(DO_NOT_DISRUPT) == "true":
            owner = (obj["metadata"].get("labels") or {}).get("kaito.sh/workspace")
            ns = (obj["metadata"].get("labels") or {}).get("kaito.sh/workspacenamespace")
            by = f" (KAITO Workspace {ns}/{owner})" if owner else ""
            return f'{kind} {obj["metadata"]["name"]} has {DO_NOT_DISRUPT}: "true"{by}'
    notes: list[str] = []
    for p in pods:
        pin, note = _pod_pin(p, now)
        if pin:
            return pin
        if note:
            notes.append(note)
    if pods:
        names = ", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods[:3])
        return f"not empty: runs {len(pods)} pod(s) ({names})" + "".join(f"; {n}" for n in notes)
    if pool is None:
        return f"not managed by a NodePool (karpenter.sh/nodepool={labels.get(LABEL_NODEPOOL, 'none')}): nothing consolidates it"
    if duration_seconds(pool.consolidate_after) is None:
        return f"NodePool {pool.name} has consolidateAfter: {pool.consolidate_after or 'unset'}"
    return f"empty, waiting for NodePool {pool.name}'s consolidateAfter {pool.consolidate_after}"


__all__ = [
    "AKSNODECLASSES",
    "AKSNodeClass",
    "IdleNode",
    "NodeClaim",
    "NodePool",
    "ProbeRun",
]
