"""Karpenter's provisioning decision, as a pure function: which NodeClaims a batch of pending pods needs.

Follows kubernetes-sigs/karpenter `pkg/controllers/provisioning/scheduling/` (scheduler.go, nodeclaim.go):
NodePools by weight (then name); a NodePool whose requirements leave no instance type is dropped with
`NoCompatibleInstanceTypes`; each pod goes to an in-flight NodeClaim of this batch if it fits there, else
to a new NodeClaim of the first NodePool that tolerates it, whose requirements are compatible with the
pod's, and that still has an instance type with room for the pod's requests plus daemonset overhead
within the NodePool's remaining limits. A pod that fits nowhere gets Karpenter's error, the NodePools'
errors joined with "; ". The launch (the cloud provider) then picks the cheapest offering among the
NodeClaim's instance types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pytest_aksai.sim._core._predicates import tolerates
from pytest_aksai.sim._core._resources import Resources, parse_map, pod_requests
from pytest_aksai.sizing import WELL_KNOWN, InstanceType, compatible, requirement_matches

Obj = dict[str, Any]
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_NODEPOOL = "karpenter.sh/nodepool"
MAX_INSTANCE_TYPES = 60
"""Karpenter truncates a NodeClaim's instance-type requirement to the 60 cheapest options."""


@dataclass
class PoolTemplate:
    """A NodePool as the scheduler sees it."""

    name: str
    weight: int
    requirements: list[Obj]
    taints: list[Obj]
    labels: dict[str, str]
    instance_types: list[tuple[InstanceType, Resources]]
    """Compatible instance types with their allocatable (after AKS reservations), cheapest first."""
    remaining: Resources | None
    """limits minus what its NodeClaims already hold; None without limits."""
    daemon_overhead: Resources = field(default_factory=dict)


@dataclass
class NewClaim:
    pool: PoolTemplate
    requirements: list[Obj]
    options: list[tuple[InstanceType, Resources]]
    pods: list[Obj] = field(default_factory=list)
    requests: Resources = field(default_factory=dict)


@dataclass
class Results:
    claims: list[NewClaim]
    errors: dict[str, str]
    """Pod key → Karpenter's error (without the "Failed to schedule pod, " prefix)."""


def _add(a: Mapping[str, Decimal], b: Mapping[str, Decimal]) -> Resources:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, Decimal(0)) + v
    return out


def _fits(requests: Mapping[str, Decimal], allocatable: Mapping[str, Decimal]) -> bool:
    return all(v <= allocatable.get(k, Decimal(0)) for k, v in requests.items() if v > 0 and k != "pods")


def _within(capacity: Mapping[str, Decimal], remaining: Mapping[str, Decimal] | None) -> bool:
    if remaining is None:
        return True
    return all(capacity.get(k, Decimal(0)) <= v for k, v in remaining.items() if k != "nodes")


def pod_key(pod: Mapping[str, Any]) -> str:
    return f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"


def pod_requirements(pod: Mapping[str, Any]) -> list[Obj]:
    """nodeSelector and the first required node-affinity term, as NodeSelectorRequirements."""
    spec = pod.get("spec") or {}
    reqs: list[Obj] = [
        {"key": k, "operator": "In", "values": [str(v)]} for k, v in (spec.get("nodeSelector") or {}).items()
    ]
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms:
        reqs.extend(dict(e) for e in terms[0].get("matchExpressions") or [])
    return reqs


def format_requirements(reqs: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for r in reqs:
        values = r.get("values") or []
        parts.append(
            f"{r.get('key')} {r.get('operator')}" + (f" [{' '.join(map(str, values))}]" if values else "")
        )
    return ", ".join(parts)


def format_resources(res: Mapping[str, Decimal]) -> str:
    def quantity(name: str, v: Decimal) -> str:
        if name == "cpu":
            millis = int(v * 1000)
            return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
        if name in ("memory", "ephemeral-storage") and v >= 1024 * 1024 and v % (1024 * 1024) == 0:
            return f"{int(v) // (1024 * 1024)}Mi"
        return str(int(v)) if v == int(v) else str(v)

    inner = ",".join(f'"{k}":"{quantity(k, v)}"' for k, v in sorted(res.items()) if v > 0)
    return "{" + inner + "}"


def _taint_text(taint: Mapping[str, Any]) -> str:
    value = taint.get("value") or ""
    return (
        f"{taint.get('key')}={value}:{taint.get('effect')}"
        if value
        else f"{taint.get('key')}:{taint.get('effect')}"
    )


def _custom_incompatibility(pool: PoolTemplate, reqs: Sequence[Mapping[str, Any]]) -> str | None:
    """Custom (not well-known) labels must be defined by the NodePool (scheduling.Requirements.Compatible)."""
    defined = dict(pool.labels)
    pool_reqs = {str(r.get("key")): r for r in pool.requirements}
    for req in reqs:
        key = str(req.get("key"))
        if key in WELL_KNOWN:
            continue
        if key in defined:
            if not requirement_matches(req, defined):
                return f"incompatible requirements, key {key}, {format_requirements([req])} not in {key} In [{defined[key]}]"
            continue
        if key in pool_reqs:
            continue
        if req.get("operator") in ("NotIn", "DoesNotExist"):
            continue
        return f'incompatible requirements, label "{key}" does not have known values'
    return None


def _pool_error(
    pool: PoolTemplate, pod: Obj, requests: Resources, reqs: list[Obj]
) -> tuple[str | None, list[Any]]:
    """(error, compatible options) for a new NodeClaim of `pool` holding `pod`."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in pool.taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return f"did not tolerate taint (taint={_taint_text(taint)})", []
    custom = _custom_incompatibility(pool, reqs)
    if custom:
        return custom, []
    if (
        pool.remaining is not None
        and pool.remaining.get("nodes") is not None
        and pool.remaining["nodes"] <= 0
    ):
        return f"node limits have been exhausted for nodepool (NodePool={pool.name})", []
    within = [(it, alloc) for it, alloc in pool.instance_types if _within(_capacity_of(it), pool.remaining)]
    if not within:
        return f"all available instance types exceed limits for nodepool (NodePool={pool.name})", []
    wanted = _add(requests, pool.daemon_overhead)
    merged = [*pool.requirements, *reqs]
    met = [(it, alloc) for it, alloc in within if compatible(it, merged)]
    fit = [(it, alloc) for it, alloc in within if _fits(wanted, alloc)]
    both = [(it, alloc) for it, alloc in met if _fits(wanted, alloc)]
    if both:
        return None, both
    shown = format_requirements(
        [*pool.requirements, *reqs, {"key": LABEL_NODEPOOL, "operator": "In", "values": [pool.name]}]
    )
    tail = f"requirements={shown}, resources={format_resources(wanted)}"
    if not met and not fit:
        return f"no instance type met the scheduling requirements or had enough resources, {tail}", []
    if not met:
        return f"no instance type met all requirements, {tail}", []
    if not fit:
        return f"no instance type has enough resources, {tail}", []
    return f"no instance type met the requirements/resources/offering tuple, {tail}", []


def _capacity_of(it: InstanceType) -> Resources:
    caps: Resources = {"cpu": Decimal(it.vcpu), "memory": Decimal(it.memory_mib) * 1024 * 1024}
    if it.gpu_count:
        caps["nvidia.com/gpu"] = Decimal(it.gpu_count)
    return caps


def _subtract_max(
    remaining: Resources | None, options: Sequence[tuple[InstanceType, Resources]]
) -> Resources | None:
    """Karpenter reserves the largest option's capacity against the limits (subtractMax)."""
    if remaining is None:
        return None
    out = dict(remaining)
    for key in list(out):
        if key == "nodes":
            out[key] -= 1
            continue
        out[key] -= max((_capacity_of(it).get(key, Decimal(0)) for it, _ in options), default=Decimal(0))
    return out


def schedule(pods: Sequence[Obj], pools: Sequence[PoolTemplate]) -> Results:
    """Decide NodeClaims for `pods` (already filtered to pending, provisionable pods)."""
    ordered = sorted(pools, key=lambda p: (-p.weight, p.name))
    claims: list[NewClaim] = []
    errors: dict[str, str] = {}

    # Karpenter sorts pods by CPU then memory, largest first, so big pods get fresh NodeClaims.
    def size(pod: Obj) -> tuple[Decimal, Decimal]:
        r = pod_requests(pod)
        return (-r.get("cpu", Decimal(0)), -r.get("memory", Decimal(0)))

    for pod in sorted(pods, key=size):
        requests = pod_requests(pod)
        reqs = pod_requirements(pod)
        if _add_to_inflight(claims, pod, requests, reqs):
            continue
        if not ordered:
            errors[pod_key(pod)] = "nodepool requirements filtered out all available instance types"
            continue
        pool_errors = []
        for pool in ordered:
            error, options = _pool_error(pool, pod, requests, reqs)
            if error is None:
                claim = NewClaim(
                    pool, [*pool.requirements, *reqs], options, [pod], _add(requests, pool.daemon_overhead)
                )
                claims.append(claim)
                pool.remaining = _subtract_max(pool.remaining, options)
                break
            pool_errors.append(error)
        else:
            errors[pod_key(pod)] = "; ".join(pool_errors)
    return Results(claims, errors)


def _add_to_inflight(claims: list[NewClaim], pod: Obj, requests: Resources, reqs: list[Obj]) -> bool:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for claim in sorted(claims, key=lambda c: len(c.pods)):
        if any(
            t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, t)
            for t in claim.pool.taints
        ):
            continue
        if _custom_incompatibility(claim.pool, reqs):
            continue
        total = _add(claim.requests, requests)
        merged = [*claim.requirements, *reqs]
        options = [
            (it, alloc) for it, alloc in claim.options if compatible(it, merged) and _fits(total, alloc)
        ]
        if options:
            claim.options, claim.requests, claim.requirements = options, total, merged
            claim.pods.append(pod)
            return True
    return False


def claim_requirements(claim: NewClaim) -> list[Obj]:
    """The NodeClaim's spec.requirements: the NodePool's and the pods', plus the instance types it may be."""
    names = [it.name for it, _ in claim.options[:MAX_INSTANCE_TYPES]]
    kept = [r for r in claim.requirements if r.get("key") not in (LABEL_INSTANCE_TYPE, LABEL_NODEPOOL)]
    return [
        {"key": LABEL_NODEPOOL, "operator": "In", "values": [claim.pool.name]},
        {"key": LABEL_INSTANCE_TYPE, "operator": "In", "values": names},
        *kept,
    ]


def parse_limits(limits: Mapping[str, Any] | None) -> Resources | None:
    return parse_map(limits) if limits else None
