"""Resource quantities: what a pod requests and what a node can still give, as the scheduler computes them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

Resources = dict[str, Decimal]

GPU_RESOURCE = "nvidia.com/gpu"


_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIXES = {
    "": Decimal(1),
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
}


def parse(value: object) -> Decimal:
    """A Kubernetes quantity (`100m`, `16Gi`, `1`, `1e3`) as a Decimal; raises ValueError on malformed input."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return Decimal(str(value))
    match = _QUANTITY.match(str(value).strip())
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 100m, 16Gi, 2)")
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 100m, 16Gi, 2)") from None


def parse_map(values: Mapping[str, Any] | None) -> Resources:
    return {name: parse(v) for name, v in (values or {}).items()}


def _container_requests(container: Mapping[str, Any]) -> Resources:
    """Requests, defaulted from limits as the API server does when a container sets only limits."""
    resources = container.get("resources") or {}
    merged = parse_map(resources.get("limits"))
    merged.update(parse_map(resources.get("requests")))
    return merged


def _add(into: Resources, extra: Mapping[str, Decimal]) -> None:
    for name, value in extra.items():
        into[name] = into.get(name, Decimal(0)) + value


def pod_requests(pod: Mapping[str, Any]) -> Resources:
    """Effective requests of a pod: the sum over containers, at least the largest init container (sidecar
    init containers with `restartPolicy: Always` count towards the sum), plus `spec.overhead`."""
    spec = pod.get("spec") or {}
    total: Resources = {}
    for container in spec.get("containers") or []:
        _add(total, _container_requests(container))
    sidecars: Resources = {}
    for init in spec.get("initContainers") or []:
        requests = _container_requests(init)
        if init.get("restartPolicy") == "Always":
            _add(sidecars, requests)
            continue
        with_sidecars = dict(requests)
        _add(with_sidecars, sidecars)
        for name, value in with_sidecars.items():
            total[name] = max(total.get(name, Decimal(0)), value)
    _add(total, sidecars)
    _add(total, parse_map(spec.get("overhead")))
    return total


def sum_requests(pods: Iterable[Mapping[str, Any]]) -> Resources:
    total: Resources = {}
    for pod in pods:
        _add(total, pod_requests(pod))
    return total


def node_allocatable(node: Mapping[str, Any]) -> Resources:
    """`status.allocatable`, falling back to `status.capacity` for nodes created without it."""
    status = node.get("status") or {}
    return parse_map(status.get("allocatable") or status.get("capacity"))


def format_cpu(value: Decimal) -> str:
    millis = int(value * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
