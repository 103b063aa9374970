"""The HorizontalPodAutoscaler controller (kube-controller-manager's `podautoscaler`), for External, Resource
and ContainerResource metrics.

As `pkg/controller/podautoscaler/horizontal.go` and `replica_calculator.go`: every 15 s (the
`--horizontal-pod-autoscaler-sync-period` default) each HPA reads its target's `/scale`; a target at 0
replicas disables scaling (`ScalingActive=False/ScalingDisabled`); otherwise each External metric with an
AverageValue target proposes `ceil(value / target)` replicas (no change while `value / (target × current)`
is within the 0.1 tolerance), the largest proposal wins, then the behaviour applies: stabilization windows
(scale-up 0 s, scale-down 300 s by default) and rate policies (default scale-up max(4 pods, 100 %) per 15 s,
scale-down 100 % per 15 s), then `minReplicas`/`maxReplicas`. External metric values come from
`Shared.external_metrics` (KEDA's metrics server in this cluster).

Resource and ContainerResource metrics (KEDA's `cpu`/`memory` triggers, or any HPA) are read from the
`metrics.k8s.io` API (the `metrics-server` add-on) as `replica_calculator.go` reads them: the target's pods by
its scale selector; pods that are terminating or Failed are ignored, Pending ones count as unready, and, for
CPU, pods within the 5-minute initialization period whose newest sample predates their readiness (or that
are not Ready) too; utilization is `sum(usage) × 100 / sum(requests)` over the pods with metrics (a container
without a request fails as upstream: `missing request for cpu in container …`); within the tolerance nothing
changes; otherwise pods missing metrics count as 100 % of their request on a scale-down and 0 % on a scale-up,
unready pods 0 % on a scale-up, and a result that flips direction keeps the current count.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from pytest_aksai.sim._addons.keda import _targets
from pytest_aksai.sim._addons.keda._shared import MetricUnavailable, shared
from pytest_aksai.sim._apiserver import ApiError
from pytest_aksai.sim._core import _resources
from pytest_aksai.sim._core._framework import Controller, Obj, Watch
from pytest_aksai.sim._core._podutil import get_condition

API = "autoscaling/v2"
SYNC_SECONDS = 15.0
TOLERANCE = 0.1
DOWNSCALE_STABILIZATION = 300
CPU_INITIALIZATION_PERIOD = 300.0
DELAY_OF_INITIAL_READINESS_STATUS = 30.0
METRICS_API = ("metrics.k8s.io", "v1beta1")
COMPONENT = "horizontal-pod-autoscaler"

DEFAULT_SCALE_UP: Obj = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
DEFAULT_SCALE_DOWN: Obj = {
    "stabilizationWindowSeconds": DOWNSCALE_STABILIZATION,
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def rules(behavior: Obj | None, direction: str) -> Obj:
    """The scaling rules of one direction with the upstream defaults filled in (`GenerateHPAScale*Rules`)."""
    default = DEFAULT_SCALE_UP if direction == "scaleUp" else DEFAULT_SCALE_DOWN
    given = (behavior or {}).get(direction) or {}
    return {key: given.get(key, value) for key, value in default.items()}


def _selector_text(labels: dict[str, str]) -> str:
    inner = ",".join(f"{k}: {v}" for k, v in sorted(labels.items()))
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{inner},}},"
        "MatchExpressions:[]LabelSelectorRequirement{},}"
    )


@dataclass
class _History:
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    scale_ups: list[tuple[float, int]] = field(default_factory=list)
    scale_downs: list[tuple[float, int]] = field(default_factory=list)


def stabilize(history: _History, now: float, desired: int, current: int, behavior: Obj | None) -> int:
    up_window = float(rules(behavior, "scaleUp")["stabilizationWindowSeconds"] or 0)
    down_window = float(rules(behavior, "scaleDown")["stabilizationWindowSeconds"] or 0)
    up, down = desired, desired
    for stamp, value in history.recommendations:
        if stamp > now - up_window:
            up = min(up, value)
        if stamp > now - down_window:
            down = max(down, value)
    history.recommendations = [
        (s, v) for s, v in history.recommendations if s > now - max(up_window, down_window)
    ]
    history.recommendations.append((now, desired))
    recommendation = current
    if recommendation < up:
        recommendation = up
    if recommendation > down:
        recommendation = down
    return recommendation


def rate_limit(history: _History, now: float, proposed: int, current: int, behavior: Obj | None) -> int:
    if proposed > current:
        rule = rules(behavior, "scaleUp")
        if rule["selectPolicy"] == "Disabled":
            return current
        limits = []
        for policy in rule["policies"]:
            added = sum(n for s, n in history.scale_ups if s > now - float(policy["periodSeconds"]))
            start = current - added
            if policy["type"] == "Pods":
                limits.append(start + int(policy["value"]))
            else:
                limits.append(math.ceil(start * (1 + float(policy["value"]) / 100)))
        limit = max(limits) if rule["selectPolicy"] == "Max" else min(limits)
        return min(proposed, limit)
    if proposed < current:
        rule = rules(behavior, "scaleDown")
        if rule["selectPolicy"] == "Disabled":
            return current
        limits = []
        for policy in rule["policies"]:
            removed = sum(n for s, n in history.scale_downs if s > now - float(policy["periodSeconds"]))
            start = current + removed
            if policy["type"] == "Pods":
                limits.append(start - int(policy["value"]))
            else:
                limits.append(math.ceil(start * (1 - float(policy["value"]) / 100)))
        limit = min(limits) if rule["selectPolicy"] == "Max" else max(limits)
        return max(proposed, limit)
    return proposed


def _set_condition(status: Obj, now: str, type_: str, value: str, reason: str, message: str) -> None:
    conditions = status.setdefault("conditions", [])
    for cond in conditions:
        if cond.get("type") == type_:
            if cond.get("status") != value:
                cond["lastTransitionTime"] = now
            cond.update(status=value, reason=reason, message=message)
            return
    conditions.append(
        {"type": type_, "status": value, "lastTransitionTime": now, "reason": reason, "message": message}
    )


class HorizontalPodAutoscalerController(Controller):
    name = "horizontal-pod-autoscaler"
    watches = (Watch(API, "horizontalpodautoscalers"),)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.history: dict[str, _History] = {}
        self.synced: dict[str, float] = {}

    async def reconcile(self, key: str) -> float | None:
        hpa = self.get(API, "horizontalpodautoscalers", key)
        if hpa is None:
            self.history.pop(key, None)
            self.synced.pop(key, None)
            return None
        now = self.clock.now()
        moment = now.timestamp()
        last = self.synced.get(key)
        if last is not None and moment - last < SYNC_SECONDS - 0.01:
            return SYNC_SECONDS - (moment - last)
        self.synced[key] = moment
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        spec = hpa.get("spec") or {}
        status: Obj = copy.deepcopy(hpa.get("status") or {})  # conditions are edited in place
        namespace = hpa["metadata"]["namespace"]
        try:
            target = _targets.resolve(self.store, spec.get("scaleTargetRef") or {}, namespace)
        except _targets.TargetError as exc:
            _set_condition(
                status,
                stamp,
                "AbleToScale",
                "False",
                "FailedGetScale",
                f"the HPA controller was unable to get the target's current scale: {exc}",
            )
            self._write(hpa, status)
            return SYNC_SECONDS
        current, _ = _targets.replicas(self.store, target)
        status["currentReplicas"] = current
        behavior = spec.get("behavior")
        min_r = int(spec.get("minReplicas") or 1)
        max_r = int(spec.get("maxReplicas") or 1)
        if current == 0 and min_r != 0:
            status["desiredReplicas"] = 0
            _set_condition(
                status,
                stamp,
                "AbleToScale",
                "True",
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale",
            )
            _set_condition(
                status,
                stamp,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
            self._write(hpa, status)
            return SYNC_SECONDS

        proposals: list[tuple[int, str]] = []
        current_metrics: list[Obj] = []
        provider = shared(self.ctx).external_metrics
        legacy_cpu = spec.get("targetCPUUtilizationPercentage")
        metrics_spec = list(spec.get("metrics") or [])
        if not metrics_spec and legacy_cpu is not None:
            # Written through autoscaling/v1 (`kubectl autoscale`): the sim stores it unconverted.
            metrics_spec = [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": legacy_cpu},
                    },
                }
            ]
        for metric in metrics_spec:
            if metric.get("type") in ("Resource", "ContainerResource"):
                try:
                    replicas, name, status_metric = self._resource_proposal(
                        metric, target, namespace, current, moment
                    )
                except ResourceMetricError as exc:
                    _set_condition(
                        status,
                        stamp,
                        "ScalingActive",
                        "False",
                        "FailedGetResourceMetric",
                        f"the HPA was unable to compute the replica count: {exc}",
                    )
                    self.event(hpa, "Warning", "FailedGetResourceMetric", str(exc), COMPONENT)
                    self.event(
                        hpa,
                        "Warning",
                        "FailedComputeMetricsReplicas",
                        f"invalid metrics (1 invalid out of {len(metrics_spec)}), first error "
                        f"is: failed to get {exc.resource} resource metric value: {exc}",
                        COMPONENT,
                    )
                    self._write(hpa, status)
                    return SYNC_SECONDS
                proposals.append((replicas, name))
                current_metrics.append(status_metric)
                continue
            if metric.get("type") != "External":
                continue
            ext = metric.get("external") or {}
            name = (ext.get("metric") or {}).get("name", "")
            labels = ((ext.get("metric") or {}).get("selector") or {}).get("matchLabels") or {}
            target_value = _quantity_value(((ext.get("target") or {}).get("averageValue")) or "1")
            try:
                if provider is None:
                    raise MetricUnavailable("no external metrics API is registered")
                value = await provider(namespace, name, labels)
            except MetricUnavailable as exc:
                _set_condition(
                    status,
                    stamp,
                    "ScalingActive",
                    "False",
                    "FailedGetExternalMetric",
                    f"the HPA was unable to compute the replica count: unable to get external metric "
                    f"{namespace}/{name}/{_selector_text(labels)}: {exc}",
                )
                self.event(
                    hpa,
                    "Warning",
                    "FailedGetExternalMetric",
                    f"unable to get external metric {namespace}/{name}/{_selector_text(labels)}: {exc}",
                    COMPONENT,
                )
                self._write(hpa, status)
                return SYNC_SECONDS
            ratio = value / (target_value * current) if target_value > 0 and current > 0 else 0.0
            replicas = current if abs(1.0 - ratio) <= TOLERANCE else math.ceil(value / target_value)
            proposals.append((replicas, f"external metric {name}({_selector_text(labels)})"))
            current_metrics.append(
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": name, "selector": {"matchLabels": labels}},
                        "current": {"averageValue": _quantity(value / max(current, 1))},
                    },
                }
            )
        if not proposals:
            self._write(hpa, status)
            return SYNC_SECONDS
        desired, reason_metric = max(proposals)
        _set_condition(
            status,
            stamp,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            f"the HPA was able to successfully calculate a replica count from {reason_metric}",
        )
        status["currentMetrics"] = current_metrics
        if legacy_cpu is not None and current_metrics and current_metrics[0].get("type") == "Resource":
            status["currentCPUUtilizationPercentage"] = current_metrics[0]["resource"]["current"].get(
                "averageUtilization"
            )
        history = self.history.setdefault(key, _History())
        stabilized = stabilize(history, moment, desired, current, behavior)
        limited = rate_limit(history, moment, stabilized, current, behavior)
        final = max(min(limited, max_r), min_r)
        if desired > max_r:
            _set_condition(
                status,
                stamp,
                "ScalingLimited",
                "True",
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        elif desired < min_r:
            _set_condition(
                status,
                stamp,
                "ScalingLimited",
                "True",
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        else:
            _set_condition(
                status,
                stamp,
                "ScalingLimited",
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            )
        status["desiredReplicas"] = final
        if final != current:
            _targets.scale(self.store, target, final)
            (history.scale_ups if final > current else history.scale_downs).append(
                (moment, abs(final - current))
            )
            status["lastScaleTime"] = stamp
            why = f"{reason_metric} above target" if final > current else "All metrics below target"
            self.event(hpa, "Normal", "SuccessfulRescale", f"New size: {final}; reason: {why}", COMPONENT)
            _set_condition(
                status,
                stamp,
                "AbleToScale",
                "True",
                "SucceededRescale",
                f"the HPA controller was able to update the target scale to {final}",
            )
        else:
            _set_condition(
                status,
                stamp,
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size",
            )
        self._write(hpa, status)
        return SYNC_SECONDS

    # ---- Resource / ContainerResource metrics --------------------------------------------------------
    def _resource_proposal(
        self, metric: Obj, target: _targets.Target, namespace: str, current: int, moment: float
    ) -> tuple[int, str, Obj]:
        kind = str(metric.get("type"))
        source = (metric.get("resource") if kind == "Resource" else metric.get("containerResource")) or {}
        resource = str(source.get("name") or "cpu")
        container = str(source.get("container") or "") if kind == "ContainerResource" else ""
        goal = source.get("target") or {}
        utilization = goal.get("averageUtilization")
        average_value = goal.get("averageValue")
        if average_value is not None:
            what = "usage"
        elif utilization is not None:
            what = "utilization"
        else:
            raise ResourceMetricError(
                resource,
                "invalid resource metric source: neither an average utilization target nor an average value "
                "(usage) target was set",
            )
        try:
            selector = _targets.selector(self.store, target)
            metrics = self._pod_metrics(namespace, selector, resource, container)
            pods = self.list("v1", "pods", namespace, label_selector=selector) if selector else []
            if not pods:
                raise _Failed("no pods returned by selector while calculating replica count")
            if average_value is not None:
                target_milli = int(_resources.parse(average_value) * 1000)
                replicas, raw = plain_replicas(pods, metrics, resource, current, target_milli, moment)
                value: Obj = {"averageValue": _milli_quantity(raw)}
                name = f"{resource} resource"
            else:
                replicas, percent, raw = utilization_replicas(
                    pods, metrics, resource, container, current, int(utilization or 0), moment
                )
                value = {"averageUtilization": percent, "averageValue": _milli_quantity(raw)}
                name = f"{resource} resource utilization (percentage of request)"
                if kind == "ContainerResource":
                    name = f"{resource} container resource utilization (percentage of request)"
        except _Failed as exc:
            raise ResourceMetricError(resource, f"failed to get {resource} {what}: {exc}") from None
        if kind == "Resource":
            status_metric: Obj = {"type": "Resource", "resource": {"name": resource, "current": value}}
        else:
            status_metric = {
                "type": "ContainerResource",
                "containerResource": {"name": resource, "container": container, "current": value},
            }
        return replicas, name, status_metric

    def _pod_metrics(
        self, namespace: str, selector: str, resource: str, container: str
    ) -> dict[str, _PodMetric]:
        """`metricsclient.GetResourceMetric`: the pods' PodMetrics from `metrics.k8s.io`, per pod the sum
        over its containers (or the one named) in milli-units; a pod missing a container's value is left out."""
        api = self.store.aggregated.get(METRICS_API)
        where = "unable to get metrics for resource " + resource
        if api is None:
            raise _Failed(
                f"{where}: unable to fetch metrics from resource metrics API: the server could not find the "
                "requested resource (get pods.metrics.k8s.io)"
            )
        if not api.available():
            raise _Failed(
                f"{where}: unable to fetch metrics from resource metrics API: the server is currently unable "
                "to handle the request (get pods.metrics.k8s.io)"
            )
        from pytest_aksai.sim._apiserver._selectors import parse_label_selector

        pods_rt = next(rt for rt in api.types() if rt.plural == "pods")
        try:
            matcher = parse_label_selector(selector)
        except ApiError as exc:
            raise _Failed(f"{where}: {exc}") from None
        items = [
            m
            for m in api.items(pods_rt, namespace)
            if matcher is None or matcher((m.get("metadata") or {}).get("labels") or {})
        ]
        if not items:
            raise _Failed(f"{where}: no metrics returned from resource metrics API")
        out: dict[str, _PodMetric] = {}
        for item in items:
            containers = item.get("containers") or []
            total = 0
            missing = not containers
            found = False
            for c in containers:
                if container and c.get("name") != container:
                    continue
                usage = (c.get("usage") or {}).get(resource)
                if usage is None:
                    missing = True
                    break
                found = True
                total += int(_resources.parse(usage) * 1000)
            if container and not found:
                continue
            if not missing:
                out[item["metadata"]["name"]] = _PodMetric(
                    _timestamp(item.get("timestamp")), _go_seconds(item.get("window")), total
                )
        return out

    def _write(self, hpa: Obj, status: Obj) -> None:
        if hpa.get("status") == status:
            return
        hpa = dict(hpa)
        hpa["status"] = status
        self.store.update_status(
            self.rt(API, "horizontalpodautoscalers"), hpa, namespace=hpa["metadata"]["namespace"]
        )


def _quantity_value(text: str) -> float:
    text = str(text)
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


def _quantity(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{math.ceil(value * 1000)}m"


class ResourceMetricError(Exception):
    def __init__(self, resource: str, message: str) -> None:
        super().__init__(message)
        self.resource = resource


class _Failed(Exception):
    pass


@dataclass(frozen=True)
class _PodMetric:
    timestamp: float
    window: float
    value: int
    """Milli-units (millicores, or bytes × 1000), as `resource.Quantity.MilliValue()`."""


def _timestamp(text: Any) -> float:
    from datetime import UTC, datetime

    if not text:
        return 0.0
    return datetime.strptime(str(text)[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()


def _go_seconds(text: Any) -> float:
    """A Go duration string (`15.158s`, `1m0.5s`) in seconds."""
    import re

    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(h|ms|m|s)", str(text or "")):
        total += float(number) * {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}[unit]
    return total


def _milli_quantity(milli: int) -> str:
    from pytest_aksai.sim._core._usage import canonical_decimal

    return canonical_decimal(milli, 3)


def _started(pod: Obj) -> float | None:
    start = (pod.get("status") or {}).get("startTime")
    return _timestamp(start) if start else None


def group_pods(
    pods: list[Obj], metrics: dict[str, _PodMetric], resource: str, now: float
) -> tuple[int, set[str], set[str], set[str]]:
    """`groupPods`: (ready count, unready, missing, ignored) as the replica calculator sorts the pods."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        name = pod["metadata"]["name"]
        phase = (pod.get("status") or {}).get("phase")
        if pod["metadata"].get("deletionTimestamp") or phase == "Failed":
            ignored.add(name)
            continue
        if phase == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu":
            condition = get_condition(pod, "Ready")
            start = _started(pod)
            if condition is None or start is None:
                is_unready = True
            else:
                transition = _timestamp(condition.get("lastTransitionTime"))
                if start + CPU_INITIALIZATION_PERIOD > now:
                    is_unready = (
                        condition.get("status") == "False" or metric.timestamp < transition + metric.window
                    )
                else:
                    is_unready = (
                        condition.get("status") == "False"
                        and start + DELAY_OF_INITIAL_READINESS_STATUS > transition
                    )
            if is_unready:
                unready.add(name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def pod_requests(pods: list[Obj], container: str, resource: str) -> dict[str, int]:
    """`calculateRequests`: per pod the milli-value of the resource's requests (its containers, restartable init
    containers too, or only `container`); raises as upstream when one is missing."""
    out: dict[str, int] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or []) + [
            c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
        ]
        total = 0
        for c in containers:
            if container and c.get("name") != container:
                continue
            request = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if request is None:
                raise _Failed(
                    f"missing request for {resource} in container {c.get('name')} of Pod "
                    f"{pod['metadata']['name']}"
                )
            total += int(_resources.parse(request) * 1000)
        out[pod["metadata"]["name"]] = total
    return out


def _utilization_ratio(
    metrics: dict[str, int], requests: dict[str, int], target: int
) -> tuple[float, int, int]:
    used = requested = count = 0
    for name, value in metrics.items():
        if name not in requests:
            continue
        used += value
        requested += requests[name]
        count += 1
    if requested == 0:
        raise _Failed("no metrics returned matched known pods")
    percent = used * 100 // requested
    return percent / target, percent, used // count


def utilization_replicas(
    pods: list[Obj],
    metrics: dict[str, _PodMetric],
    resource: str,
    container: str,
    current: int,
    target: int,
    now: float,
) -> tuple[int, int, int]:
    """`GetResourceReplicas`: (replicas, utilization %, average raw usage in milli-units)."""
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now)
    values = {n: m.value for n, m in metrics.items() if n not in ignored and n not in unready}
    requests = pod_requests(pods, container, resource)
    if not values:
        raise _Failed("did not receive metrics for targeted pods (pods might be unready)")
    ratio, percent, raw = _utilization_ratio(values, requests, target)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= TOLERANCE:
            return current, percent, raw
        return math.ceil(ratio * ready), percent, raw
    if missing:
        if ratio < 1.0:
            fallback = max(100, target)
            for name in missing:
                values[name] = requests.get(name, 0) * fallback // 100
        elif ratio > 1.0:
            for name in missing:
                values[name] = 0
    if scale_up_with_unready:
        for name in unready:
            values[name] = 0
    new_ratio, _, _ = _utilization_ratio(values, requests, target)
    if (
        abs(1.0 - new_ratio) <= TOLERANCE
        or (ratio < 1.0 and new_ratio > 1.0)
        or (ratio > 1.0 and new_ratio < 1.0)
    ):
        return current, percent, raw
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, percent, raw
    return replicas, percent, raw


def plain_replicas(
    pods: list[Obj], metrics: dict[str, _PodMetric], resource: str, current: int, target: int, now: float
) -> tuple[int, int]:
    """`GetRawResourceReplicas` (`calcPlainMetricReplicas`): (replicas, average usage in milli-units)."""
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now)
    values = {n: m.value for n, m in metrics.items() if n not in ignored and n not in unready}
    if not values:
        raise _Failed("did not receive metrics for targeted pods (pods might be unready)")

    def ratio_of(vals: dict[str, int]) -> tuple[float, int]:
        usage = sum(vals.values()) // len(vals)
        return usage / target, usage

    ratio, usage = ratio_of(values)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= TOLERANCE:
            return current, usage
        return math.ceil(ratio * ready), usage
    if missing:
        for name in missing:
            values[name] = target if ratio < 1.0 else 0
    if scale_up_with_unready:
        for name in unready:
            values[name] = 0
    new_ratio, _ = ratio_of(values)
    if (
        abs(1.0 - new_ratio) <= TOLERANCE
        or (ratio < 1.0 and new_ratio > 1.0)
        or (ratio > 1.0 and new_ratio < 1.0)
    ):
        return current, usage
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, usage
    return replicas, usage
