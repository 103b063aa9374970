"""Resource quantities: what a pod requests and what a node can still give, as the scheduler computes them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

Resources = dict[str, Decimal]

GPU_RESOURCE = "nvidia.com/gpu"


def parse(value: object) -> Decimal:
    """A Kubernetes quantity (`100m`, `16Gi`, `1`) as a Decimal; raises ValueError on malformed input."""
    return Decimal(parse_quantity(value))


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
