"""KEDA's scalers, by trigger type: each reads its metric and says whether the trigger is active.

As upstream (`pkg/scalers/*.go`): a trigger is active when its value is strictly above its activation
threshold; the metric the HPA sees is named `s<index>-<scaler>` and targets an AverageValue. A type that
is not registered fails like KEDA's `no scaler found for type: <type>`. Trigger types register a factory with
`register_scaler` (`azure-servicebus`, in `_azure_servicebus.py`, at the end of this module); `build_scaler` hands
each scaler its trigger's `authenticationRef`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from pytest_aksai.sim._addons.keda._shared import DialError, service_http_port, shared
from pytest_aksai.sim._core import _resources


class ScalerError(Exception):
    """The scaler could not read its metric; the message is the scaler's own."""


@dataclass(frozen=True)
class Reading:
    value: float
    active: bool


class Scaler:
    type_name: str = ""
    resource_metric: bool = False
    """True for `cpu`/`memory`: the HPA reads metrics.k8s.io itself; KEDA neither polls nor activates on it."""
    authentication_ref: Mapping[str, Any] = MappingProxyType({})
    """The trigger's `authenticationRef` (a TriggerAuthentication or ClusterTriggerAuthentication)."""

    def __init__(self, ctx: Any, namespace: str, index: int, metadata: Mapping[str, str]) -> None:
        self.ctx = ctx
        self.namespace = namespace
        self.index = index
        self.metadata = dict(metadata)
        self.metric_type = ""

    def configure(self, trigger: Mapping[str, Any]) -> None:
        """Trigger-level settings beyond `metadata` (`metricType`); raises ScalerError on bad ones."""
        self.metric_type = str(trigger.get("metricType") or "")

    def hpa_metric(self, scaled_object: str) -> dict[str, Any]:
        """The metric of the generated HPA (`GetMetricSpecForScaling`): External, AverageValue."""
        return {
            "type": "External",
            "external": {
                "metric": {
                    "name": self.metric_name,
                    "selector": {"matchLabels": {"scaledobject.keda.sh/name": scaled_object}},
                },
                "target": {"type": "AverageValue", "averageValue": _quantity(self.target)},
            },
        }

    @property
    def metric_name(self) -> str:
        return f"s{self.index}-{_sanitize(self.scaler_metric_name())}"

    def scaler_metric_name(self) -> str:
        return self.type_name

    @property
    def target(self) -> float:
        raise NotImplementedError

    async def read(self) -> Reading:
        raise NotImplementedError


def _sanitize(name: str) -> str:
    return re.sub(r"[/.:%()]", "-", name)


def _float(metadata: Mapping[str, str], key: str, default: float | None = None) -> float:
    raw = metadata.get(key)
    if raw is None or raw == "":
        if default is None:
            raise ScalerError(f"no {key} given")
        return default
    try:
        return float(raw)
    except ValueError:
        raise ScalerError(f"error parsing {key}: {raw!r} is not a number") from None


class PrometheusScaler(Scaler):
    """`pkg/scalers/prometheus_scaler.go`: one instant query; an empty result reads 0 with
    `ignoreNullValues` (the default), else it is an error."""

    type_name = "prometheus"

    def __init__(self, ctx: Any, namespace: str, index: int, metadata: Mapping[str, str]) -> None:
        super().__init__(ctx, namespace, index, metadata)
        for key in ("serverAddress", "query"):
            if not self.metadata.get(key):
                raise ScalerError(f"no {key} given")
        self.threshold = _float(self.metadata, "threshold")
        self.activation = _float(self.metadata, "activationThreshold", 0.0)
        self.ignore_null = self.metadata.get("ignoreNullValues", "true").lower() != "false"

    @property
    def target(self) -> float:
        return self.threshold

    async def read(self) -> Reading:
        address = self.metadata["serverAddress"].rstrip("/")
        parts = urlsplit(address)
        url = f"{address}/api/v1/query"
        try:
            port = service_http_port(self.ctx.store, parts.hostname or "", self.namespace)
        except DialError as exc:
            raise ScalerError(f'error executing prometheus query: Get "{url}": {exc}') from None
        timeout = aiohttp.ClientTimeout(total=_float(self.metadata, "timeout", 3000.0) / 1000)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(
                    f"http://127.0.0.1:{port}/api/v1/query", params={"query": self.metadata["query"]}
                ) as r,
            ):
                body = await r.text()
                if r.status >= 300:
                    raise ScalerError(
                        f"prometheus query api returned error. status: {r.status} response: {body}"
                    )
                payload = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ScalerError(f'error executing prometheus query: Get "{url}": {exc}') from None
        result = ((payload or {}).get("data") or {}).get("result") or []
        if not result:
            if self.ignore_null:
                return Reading(0.0, self.activation < 0.0)
            raise ScalerError(
                f"prometheus metrics '{self.metric_name}' target may be lost, the result is empty"
            )
        if len(result) > 1:
            raise ScalerError(f"prometheus query {self.metadata['query']} returned multiple elements")
        raw = (result[0].get("value") or [None, "0"])[1]
        value = float(raw)
        if math.isinf(value) or math.isnan(value):
            if not self.ignore_null:
                raise ScalerError(f"promtheus query returns {raw}")
            value = 0.0
        return Reading(value, value > self.activation)


class ExternalPushScaler(Scaler):
    """`external-push` against the HTTP add-on's scaler: demand = pending + in-flight requests of the route."""

    type_name = "external-push"

    def __init__(self, ctx: Any, namespace: str, index: int, metadata: Mapping[str, str]) -> None:
        super().__init__(ctx, namespace, index, metadata)
        if not self.metadata.get("scalerAddress"):
            raise ScalerError("scaler address is mandatory")
        self.route = f"{namespace}/{self.metadata.get('httpScaledObject') or self.metadata.get('interceptorRoute', '')}"

    def scaler_metric_name(self) -> str:
        scaler = shared(self.ctx).push_scalers.get(self.route)
        return scaler.metric_name if scaler else self.route.rsplit("/", 1)[-1]

    def _scaler(self) -> Any:
        scaler = shared(self.ctx).push_scalers.get(self.route)
        if scaler is None:
            raise ScalerError(
                f'rpc error: code = NotFound desc = error getting HTTPScaledObject "{self.route}": not found'
            )
        return scaler

    @property
    def target(self) -> float:
        try:
            return float(self._scaler().target)
        except ScalerError:
            return 100.0

    async def read(self) -> Reading:
        value = float(self._scaler().value())
        return Reading(value, value > 0)


class CpuMemoryScaler(Scaler):
    """`pkg/scalers/cpu_memory_scaler.go` (KEDA 2.16): `metricType` Utilization (an integer percentage of the
    request) or AverageValue (a quantity), `metadata.value`, optional `containerName`; it becomes a Resource
    (or ContainerResource) metric of the HPA, which reads metrics.k8s.io."""

    resource_metric = True

    def __init__(self, ctx: Any, namespace: str, index: int, metadata: Mapping[str, str]) -> None:
        super().__init__(ctx, namespace, index, metadata)
        if not self.metadata.get("value"):
            raise ScalerError('missing required parameter "value" in [triggerMetadata]')
        self.container = self.metadata.get("containerName", "")

    def configure(self, trigger: Mapping[str, Any]) -> None:
        super().configure(trigger)
        deprecated = self.metadata.get("type", "")
        if deprecated and self.metric_type:
            raise ScalerError("only one of trigger.metadata.type or trigger.metricType should be defined")
        self.metric_type = self.metric_type or deprecated
        value = self.metadata["value"]
        if self.metric_type == "Utilization":
            try:
                self.utilization = int(value)
            except ValueError:
                raise ScalerError(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
        elif self.metric_type == "AverageValue":
            try:
                _resources.parse(value)
            except ValueError:
                raise ScalerError(f"quantities must match the regular expression '{_QUANTITY_RE}'") from None
        else:
            raise ScalerError(
                f"unknown metric type: {self.metric_type}, allowed values are 'Utilization' or 'AverageValue'"
            )

    def scaler_metric_name(self) -> str:
        return self.type_name

    @property
    def target(self) -> float:
        return float(self.metadata["value"]) if self.metric_type == "Utilization" else 1.0

    def hpa_metric(self, scaled_object: str) -> dict[str, Any]:
        if self.metric_type == "Utilization":
            goal: dict[str, Any] = {"type": "Utilization", "averageUtilization": self.utilization}
        else:
            goal = {"type": "AverageValue", "averageValue": self.metadata["value"]}
        if self.container:
            return {
                "type": "ContainerResource",
                "containerResource": {"name": self.type_name, "container": self.container, "target": goal},
            }
        return {"type": "Resource", "resource": {"name": self.type_name, "target": goal}}

    async def read(self) -> Reading:
        return Reading(0.0, False)


class CpuScaler(CpuMemoryScaler):
    type_name = "cpu"


class MemoryScaler(CpuMemoryScaler):
    type_name = "memory"


_QUANTITY_RE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


def _quantity(value: float) -> str:
    """A Kubernetes quantity as KEDA writes metric targets: whole numbers plain, else milli-units."""
    if float(value).is_integer():
        return str(int(value))
    return f"{math.ceil(value * 1000)}m"


ScalerFactory = Callable[[Any, str, int, Mapping[str, str]], Scaler]
SCALERS: dict[str, ScalerFactory] = {
    "prometheus": PrometheusScaler,
    "external-push": ExternalPushScaler,
    "cpu": CpuScaler,
    "memory": MemoryScaler,
}
"""Trigger type → scaler (`azure-servicebus` registers itself at the end of this module)."""


def register_scaler(type_name: str, factory: ScalerFactory) -> None:
    SCALERS[type_name] = factory


def build_scaler(ctx: Any, namespace: str, index: int, trigger: Mapping[str, Any]) -> Scaler:
    type_name = str(trigger.get("type") or "")
    factory = SCALERS.get(type_name)
    if factory is None:
        raise ScalerError(f"no scaler found for type: {type_name}")
    scaler = factory(
        ctx, namespace, index, {str(k): str(v) for k, v in (trigger.get("metadata") or {}).items()}
    )
    scaler.authentication_ref = dict(trigger.get("authenticationRef") or {})
    scaler.configure(trigger)
    return scaler


# ---- azure-servicebus ------------------------------------------------------------------------------------
def _azure_servicebus(ctx: Any, namespace: str, index: int, metadata: Mapping[str, str]) -> Scaler:
    from pytest_aksai.sim._addons.keda._azure_servicebus import AzureServiceBusScaler

    return AzureServiceBusScaler(ctx, namespace, index, metadata)


register_scaler("azure-servicebus", _azure_servicebus)
