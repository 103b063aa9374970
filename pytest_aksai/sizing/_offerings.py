"""The instance types Node Auto-Provisioning (Karpenter on AKS) can choose, with the labels it matches
NodePool requirements against, and the requirement semantics it uses.

One table for both sides: the simulated cluster's Karpenter provisions from it, and the `nap` suite judges a
NodePool's requirements and a provisioned node's SKU against it. Labels follow
Azure/karpenter-provider-azure `pkg/providers/instancetype/instancetype.go` (`sku-family` is the family's
first letter, `sku-memory` is MiB, `sku-version` drops the `v` and is `1` when the name has none).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pytest_aksai.sizing._catalog import VmSize, vm_sizes

LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_CAPACITY_TYPE = "karpenter.sh/capacity-type"
LABEL_ZONE = "topology.kubernetes.io/zone"
LABEL_NODEPOOL = "karpenter.sh/nodepool"
LABEL_SKU_FAMILY = "karpenter.azure.com/sku-family"
GPU_RESOURCE = "nvidia.com/gpu"

CORE_WELL_KNOWN = frozenset(
    {
        LABEL_NODEPOOL,
        LABEL_CAPACITY_TYPE,
        LABEL_INSTANCE_TYPE,
        "node.kubernetes.io/windows-build",
        LABEL_ZONE,
        "topology.kubernetes.io/region",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "kubernetes.io/hostname",
    }
)
"""Karpenter's well-known labels (`pkg/apis/v1/labels.go`)."""
AZURE_WELL_KNOWN = frozenset(
    "karpenter.azure.com/" + suffix
    for suffix in (
        "sku-name",
        "sku-family",
        "sku-series",
        "sku-version",
        "sku-cpu",
        "sku-memory",
        "sku-gpu-name",
        "sku-gpu-count",
        "sku-gpu-manufacturer",
        "sku-networking-accelerated",
        "sku-storage-premium-capable",
        "sku-storage-ephemeralos-maxsize",
        "sku-storage-ultra-ssd",
        "placement-scope",
        "aksnodeclass",
    )
)
"""The provider's labels (`pkg/apis/v1beta1/labels.go`); other `karpenter.azure.com/` keys are refused."""
AKS_ALLOWED = frozenset(
    "kubernetes.azure.com/" + suffix
    for suffix in (
        "mode",
        "scalesetpriority",
        "priority",
        "fips_enabled",
        "os-sku",
        "cluster",
        "sku-cpu",
        "sku-memory",
        "ebpf-dataplane",
        "ebpf-host-routing",
        "network-policy",
        "hostedvm",
    )
)
"""The `kubernetes.azure.com/` keys the AKS NodePool CRD's CEL rules allow."""
WELL_KNOWN = CORE_WELL_KNOWN | AZURE_WELL_KNOWN | AKS_ALLOWED
RESTRICTED_DOMAINS = ("karpenter.sh/", "karpenter.azure.com/", "kubernetes.azure.com/")
LATE_LABEL_DOMAINS = ("nvidia.com/", "feature.node.kubernetes.io/")
"""Labels agents put on a node after it joins (GPU feature discovery): no instance type carries them, so a
requirement on them can never be met at provisioning time (Azure/karpenter-provider-azure#1005)."""

NOT_OF_THE_INSTANCE = frozenset({LABEL_NODEPOOL, "kubernetes.io/hostname", "topology.kubernetes.io/region"})
"""Well-known labels an instance type does not carry: the NodePool, the node's name, the cluster's region."""
CAPACITY_TYPES = ("on-demand", "spot")
ZONES = ("1", "2", "3")


@dataclass(frozen=True)
class InstanceType:
    """One VM size NAP can launch: its labels (without capacity type and zone, which are per offering)."""

    name: str
    vcpu: int
    memory_mib: int
    gpu_count: int
    gpu_name: str | None
    price_per_hour: float | None
    """On-demand Linux USD/hour from the catalog (None: not listed)."""
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_gpu(self) -> bool:
        return self.gpu_count > 0

    @property
    def family(self) -> str:
        return self.labels[LABEL_SKU_FAMILY]


def sku_version(name: str) -> str:
    match = re.search(r"_v(\d+)$", name)
    return match.group(1) if match else "1"


def _instance_type(size: VmSize) -> InstanceType:
    gpu_name = size.gpu.key.split("-")[0] if size.gpu is not None else None
    memory_mib = int(size.ram_gib * 1024)
    labels = {
        LABEL_INSTANCE_TYPE: size.name,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "karpenter.azure.com/sku-name": size.name,
        LABEL_SKU_FAMILY: size.family[:1],
        "karpenter.azure.com/sku-series": size.series,
        "karpenter.azure.com/sku-version": sku_version(size.name),
        "karpenter.azure.com/sku-cpu": str(size.vcpu),
        "karpenter.azure.com/sku-memory": str(memory_mib),
        "kubernetes.azure.com/sku-cpu": str(size.vcpu),
        "kubernetes.azure.com/sku-memory": str(memory_mib),
    }
    if gpu_name is not None:
        labels.update(
            {
                "karpenter.azure.com/sku-gpu-name": gpu_name,
                "karpenter.azure.com/sku-gpu-count": str(size.gpu_count),
                "karpenter.azure.com/sku-gpu-manufacturer": "nvidia",
            }
        )
    return InstanceType(
        size.name, size.vcpu, memory_mib, size.gpu_count, gpu_name, size.price_per_hour, labels
    )


@cache
def instance_types() -> tuple[InstanceType, ...]:
    """Every VM size of the catalog as NAP sees it, by name."""
    return tuple(_instance_type(size) for size in sorted(vm_sizes().values(), key=lambda s: s.name))


def instance_type(name: str) -> InstanceType | None:
    lowered = name.lower()
    return next((it for it in instance_types() if it.name.lower() == lowered), None)


def offering_labels(it: InstanceType, capacity_type: str, zone: str) -> dict[str, str]:
    return {**it.labels, LABEL_CAPACITY_TYPE: capacity_type, LABEL_ZONE: zone}


def requirement_matches(req: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A NodeSelectorRequirement against a label set (a missing label is absent: `In` fails, `NotIn` holds)."""
    op = str(req.get("operator"))
    values = [str(v) for v in req.get("values") or []]
    value = labels.get(str(req.get("key")))
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt", "Gte", "Lte") and value is not None and values:
        try:
            left, right = int(value), int(values[0])
        except ValueError:
            return False
        return {"Gt": left > right, "Lt": left < right, "Gte": left >= right, "Lte": left <= right}[op]
    return False


def instance_type_keys(requirements: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The requirements an instance type must satisfy: those on well-known keys. A requirement on a custom
    key is a label the NodePool puts on its nodes itself, so it never excludes an instance type."""
    return [
        r for r in requirements if str(r.get("key")) in WELL_KNOWN and r.get("key") not in NOT_OF_THE_INSTANCE
    ]


def compatible(it: InstanceType, requirements: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The (capacity type, zone) offerings of `it` that satisfy every well-known requirement."""
    relevant = instance_type_keys(requirements)
    if not any(r.get("key") == LABEL_CAPACITY_TYPE for r in relevant):
        # Karpenter defaults a NodePool (and so its NodeClaims) without a capacity-type requirement to on-demand.
        relevant = [*relevant, {"key": LABEL_CAPACITY_TYPE, "operator": "In", "values": ["on-demand"]}]
    return [
        (ct, zone)
        for ct in CAPACITY_TYPES
        for zone in ZONES
        if all(requirement_matches(r, offering_labels(it, ct, f"{_REGION}-{zone}")) for r in relevant)
    ]


_REGION = "eastus2"


def matching_instance_types(
    requirements: Sequence[Mapping[str, Any]], candidates: Iterable[InstanceType] | None = None
) -> list[InstanceType]:
    """The instance types with at least one offering the requirements allow, honouring `minValues`."""
    found = [it for it in (candidates or instance_types()) if compatible(it, requirements)]
    for req in requirements:
        wanted = req.get("minValues")
        if wanted and len({it.labels.get(str(req.get("key"))) for it in found}) < int(wanted):
            return []
    return found


def unknown_label_problems(requirements: Iterable[Mapping[str, Any]]) -> list[str]:
    """Requirements on keys NAP refuses or can never satisfy at provisioning time, one sentence each."""
    problems = []
    for req in requirements:
        key = str(req.get("key"))
        if key in WELL_KNOWN:
            continue
        if key.startswith(RESTRICTED_DOMAINS):
            problems.append(
                f"{key} is not a label NAP knows (the AKS NodePool CRD allows only the well-known "
                f"karpenter.sh/, karpenter.azure.com/sku-* and a few kubernetes.azure.com/ keys)"
            )
        elif key.startswith(LATE_LABEL_DOMAINS):
            problems.append(
                f"{key} is set by an agent after the node joins (GPU feature discovery), so no instance type "
                "carries it when NAP chooses one; use karpenter.azure.com/sku-gpu-name or sku-gpu-count"
            )
    return problems


def family_hint(req: Mapping[str, Any]) -> str:
    """For a sku-family requirement whose values are no family letter: what AKS uses instead."""
    if str(req.get("key")) != LABEL_SKU_FAMILY:
        return ""
    letters = sorted({it.family for it in instance_types()})
    wrong = [str(v) for v in req.get("values") or [] if str(v) not in letters]
    if not wrong:
        return ""
    suggested = sorted({v[:1].upper() for v in wrong if v[:1].upper() in letters})
    return (
        f"; AKS labels {LABEL_SKU_FAMILY} with the family's first letter only ({', '.join(letters)}): "
        f"{', '.join(wrong)} is no family NAP knows"
        + (f", use [{', '.join(suggested)}]" if suggested else "")
    )


DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = re.compile(r"(\d*(?:\.\d*)?)([^\d.]*)")


def go_duration(text: str) -> float:
    """Go's `time.ParseDuration` in seconds (`300ms`, `1.5h`, `2h45m`, `-5m`, `0`); ValueError with Go's text."""
    value = text
    sign = -1.0 if value[:1] == "-" else 1.0
    if value[:1] in "+-" and value:
        value = value[1:]
    if value == "0":
        return 0.0
    if not value:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    while pos < len(value):
        match = _GO_PART.match(value, pos)
        assert match is not None  # the pattern also matches the empty string
        number, unit = match.groups()
        if number in ("", "."):
            raise ValueError(f'time: invalid duration "{text}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _GO_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(number) * _GO_UNITS[unit]
        pos = match.end()
    return sign * total


def do_not_disrupt_grace(value: str) -> float:
    """How long a pod's `karpenter.sh/do-not-disrupt` value protects it, in seconds from the pod's
    `status.startTime`, as Karpenter reads it (kubernetes-sigs/karpenter `pkg/utils/pod/scheduling.go`
    `IsDoNotDisruptActive`, v1.12 on): `"true"` protects for good (math.inf), a positive Go duration (`"5m"`,
    `"1h30m"`) until the pod has run that long. Anything else (`"false"` too) is ignored by Karpenter with a
    Warning `InvalidDoNotDisruptAnnotation` event: ValueError with its text. Only pods take a duration; on a
    Node or NodeClaim only `"true"` counts."""
    if value == "true":
        return math.inf
    try:
        seconds = go_duration(value)
    except ValueError as exc:
        raise ValueError(f'failed to parse "{value}" as a duration: {exc}') from None
    if seconds <= 0:
        raise ValueError(f'duration "{value}" must be positive')
    return seconds
