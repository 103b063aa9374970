"""What the KEDA, HTTP add-on and Prometheus add-ons share inside one simulated cluster.

Real KEDA reaches an external-push scaler over gRPC and the HPA reads `external.metrics.k8s.io` from KEDA's
metrics server; in the sim these hops are in-process calls through this registry (one per cluster, keyed
by its store), so the add-ons stay separate packages and the HPA controller stays generic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from pytest_aksai.sim._apiserver import HTTP_PORT_ANNOTATION, Store

ExternalMetric = Callable[[str, str, dict[str, str]], Awaitable[float]]
"""(namespace, metric name, selector labels) → the metric's value, or raises `MetricUnavailable`."""


class MetricUnavailable(Exception):
    """A metric the HPA asked for could not be read (the message is what the HPA's condition shows)."""


@dataclass
class ExternalPushScaler:
    """What the HTTP add-on's external scaler answers for one route (`IsActive`, `GetMetrics`)."""

    metric_name: str
    target: float
    value: Callable[[], float]
    """The current demand (pending + in-flight requests) of the route."""


@dataclass
class Shared:
    external_metrics: ExternalMetric | None = None
    push_scalers: dict[str, ExternalPushScaler] = field(default_factory=dict)
    """`<namespace>/<httpScaledObject>` → its scaler, registered by the HTTP add-on."""
    push_listeners: list[Callable[[str], None]] = field(default_factory=list)
    """Called with `<namespace>/<httpScaledObject>` the moment a route gets demand (KEDA's push stream)."""

    def push(self, route: str) -> None:
        for listener in list(self.push_listeners):
            listener(route)


_SHARED: WeakKeyDictionary[Store, Shared] = WeakKeyDictionary()


def shared(ctx: Any) -> Shared:
    store: Store = ctx.store
    found = _SHARED.get(store)
    if found is None:
        found = _SHARED[store] = Shared()
    return found


class DialError(Exception):
    """A URL inside the cluster could not be reached (no such Service, no ready endpoint)."""


def service_http_port(store: Store, host: str, namespace: str) -> int:
    """The 127.0.0.1 port playing `host` (`svc`, `svc.ns`, `svc.ns.svc[.cluster.local]`): a Ready pod of the
    Service with the sim's HTTP-port annotation; raises `DialError` as a client's dial would fail."""
    parts = host.split(".")
    name = parts[0]
    ns = parts[1] if len(parts) > 1 else namespace
    svc = store.try_get(store.resource("v1", "services"), name, ns)
    if svc is None:
        raise DialError(f"dial tcp: lookup {host}: no such host")
    selector = (svc.get("spec") or {}).get("selector") or {}
    for pod in store.list(store.resource("v1", "pods"), ns):
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        if (
            not selector
            or any(labels.get(k) != v for k, v in selector.items())
            or meta.get("deletionTimestamp")
        ):
            continue
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        )
        port = (meta.get("annotations") or {}).get(HTTP_PORT_ANNOTATION)
        if ready and port:
            return int(port)
    raise DialError(f"dial tcp {svc.get('spec', {}).get('clusterIP', host)}: connect: connection refused")
