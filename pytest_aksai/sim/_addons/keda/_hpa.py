"""The HorizontalPodAutoscaler controller (kube-controller-manager's `podautoscaler`), for external metrics.

As `pkg/controller/podautoscaler/horizontal.go` and `replica_calculator.go`: every 15 s (the
`--horizontal-pod-autoscaler-sync-period` default) each HPA reads its target's `/scale`; a target at 0
replicas disables scaling (`ScalingActive=False/ScalingDisabled`); otherwise each External metric with an
AverageValue target proposes `ceil(value / target)` replicas (no change while `value / (target × current)`
is within the 0.1 tolerance), the largest proposal wins, then the behaviour applies: stabilization windows
(scale-up 0 s, scale-down 300 s by default) and rate policies (default scale-up max(4 pods, 100 %) per 15 s,
scale-down 100 % per 15 s), then `minReplicas`/`maxReplicas`. Metric values come from
`Shared.external_metrics` (KEDA's metrics server in this cluster).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pytest_aksai.sim._addons.keda import _targets
from pytest_aksai.sim._addons.keda._shared import MetricUnavailable, shared
from pytest_aksai.sim._core._framework import Controller, Obj, Watch

API = "autoscaling/v2"
SYNC_SECONDS = 15.0
TOLERANCE = 0.1
DOWNSCALE_STABILIZATION = 300
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
        status: Obj = dict(hpa.get("status") or {})
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
        for metric in spec.get("metrics") or []:
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
