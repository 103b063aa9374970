"""The KEDA operator: ScaledObject → HPA `keda-hpa-<name>`, the polling loop, 0 ↔ 1 and N → 0.

Follows KEDA 2.x (`controllers/keda/scaledobject_controller.go`, `hpa.go`, `pkg/scaling/scale_handler.go`,
`pkg/scaling/executor/scale_scaledobjects.go`): every `pollingInterval` the triggers are read; an active
trigger (value strictly above its activation threshold) takes a target at 0 to `max(minReplicaCount, 1)`
and refreshes `lastActiveTime`; between 1 and N the HPA decides; when every trigger is inactive the target
goes straight from its current count to `idleReplicaCount` (or 0 with `minReplicaCount: 0`) once
`lastActiveTime + cooldownPeriod` (or `creationTimestamp + initialCooldownPeriod`) has passed. A scaler
error blocks scaling to zero (`Ready=False/TriggerError`) unless a `fallback` is set. Push scalers
(`external-push`) ask for a scale the moment they see demand. The HPA reads the triggers' metrics through
`Shared.external_metrics` (KEDA's metrics server).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pytest_aksai.sim._addons.keda import _targets
from pytest_aksai.sim._addons.keda._scalers import Scaler, ScalerError, build_scaler
from pytest_aksai.sim._addons.keda._shared import MetricUnavailable, shared
from pytest_aksai.sim._core._framework import Controller, Obj, Watch, object_key
from pytest_aksai.sim.contract import FAULTS_CONFIGMAP, SIM_NAMESPACE, Fault

API = "keda.sh/v1alpha1"
HPA_API = "autoscaling/v2"
COMPONENT = "keda-operator"
SO_NAME_LABEL = "scaledobject.keda.sh/name"
PAUSED = "autoscaling.keda.sh/paused"
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
PAUSED_SCALE_IN = "autoscaling.keda.sh/paused-scale-in"
PAUSED_SCALE_OUT = "autoscaling.keda.sh/paused-scale-out"
FORCE_ACTIVATION = "autoscaling.keda.sh/force-activation"
DEFAULT_POLLING = 30
DEFAULT_COOLDOWN = 300
DEFAULT_MAX = 100

READY_MSG = "ScaledObject is defined correctly and is ready for scaling"
CHECK_FAILED_MSG = "ScaledObject doesn't have correct scaleTargetRef specification"
TRIGGER_ERROR_MSG = "Triggers defined in ScaledObject are not working correctly"
PARTIAL_ERROR_MSG = "Some triggers defined in ScaledObject are not working correctly"
ACTIVE_MSG = "Scaling is performed because triggers are active"
NOT_ACTIVE_MSG = "Scaling is not performed because triggers are not active"
COOLDOWN_MSG = "Scaler cooling down because triggers are not active"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def _int(spec: dict[str, Any], key: str, default: int | None) -> int | None:
    value = spec.get(key)
    return default if value is None else int(value)


def initial_conditions() -> list[Obj]:
    return [
        {"type": "Ready", "status": "Unknown", "reason": "", "message": ""},
        {"type": "Active", "status": "Unknown", "reason": "", "message": ""},
        {"type": "Fallback", "status": "Unknown", "reason": "", "message": ""},
        {"type": "Paused", "status": "False", "reason": "", "message": ""},
    ]


def set_condition(status: Obj, type_: str, value: str, reason: str, message: str) -> None:
    conditions = status.setdefault("conditions", initial_conditions())
    for cond in conditions:
        if cond.get("type") == type_:
            cond.update(status=value, reason=reason, message=message)
            return
    conditions.append({"type": type_, "status": value, "reason": reason, "message": message})


def condition_status(status: Obj, type_: str) -> str | None:
    return next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == type_), None)


class _State:
    """What the operator keeps in memory per ScaledObject (its scalers, built once per generation)."""

    def __init__(self, generation: int, scalers: list[Scaler], build_errors: list[str]) -> None:
        self.generation = generation
        self.scalers = scalers
        self.build_errors = build_errors


class ScaledObjectController(Controller):
    name = "keda-operator"
    watches = (
        Watch(API, "scaledobjects"),
        Watch(
            "apps/v1",
            "deployments",
            lambda self, _t, obj: self.keys_targeting(obj),
        ),
        Watch(
            "apps/v1",
            "statefulsets",
            lambda self, _t, obj: self.keys_targeting(obj),
        ),
        Watch("v1", "configmaps", lambda self, _t, cm: self.keys_on_fault_change(cm)),
    )

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.states: dict[str, _State] = {}
        self.shared = shared(ctx)
        self.shared.external_metrics = self.external_metric
        self.shared.push_listeners.append(self._on_push)

    # ---- mapping ---------------------------------------------------------------------------------------
    def keys_targeting(self, obj: Obj) -> list[str]:
        meta = obj.get("metadata") or {}
        return [
            object_key(so)
            for so in self.list(API, "scaledobjects", meta.get("namespace"))
            if ((so.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == meta.get("name")
            and condition_status(so.get("status") or {}, "Ready") != "True"
        ]

    def keys_on_fault_change(self, cm: Obj) -> list[str]:
        meta = cm.get("metadata") or {}
        if (meta.get("namespace"), meta.get("name")) != (SIM_NAMESPACE, FAULTS_CONFIGMAP):
            return []
        return [object_key(so) for so in self.list(API, "scaledobjects")]

    def _on_push(self, route: str) -> None:
        namespace, _, name = route.partition("/")
        for so in self.list(API, "scaledobjects", namespace):
            for trigger in (so.get("spec") or {}).get("triggers") or []:
                meta = trigger.get("metadata") or {}
                if trigger.get("type") == "external-push" and name in (
                    meta.get("httpScaledObject"),
                    meta.get("interceptorRoute"),
                ):
                    self.queue.add(object_key(so))

    # ---- the metrics server (what the HPA reads) -------------------------------------------------------
    async def external_metric(self, namespace: str, metric: str, selector: dict[str, str]) -> float:
        so_name = selector.get(SO_NAME_LABEL, "")
        so = self.get(API, "scaledobjects", f"{namespace}/{so_name}")
        state = self.states.get(f"{namespace}/{so_name}")
        if so is None or state is None:
            raise MetricUnavailable(f'scaledobject.keda.sh "{so_name}" not found')
        scaler = next((s for s in state.scalers if s.metric_name == metric), None)
        if scaler is None:
            raise MetricUnavailable(f"no matching metrics found for {metric}")
        spec = so.get("spec") or {}
        fallback = spec.get("fallback")
        health = ((so.get("status") or {}).get("health") or {}).get(metric) or {}
        try:
            value = (await scaler.read()).value
        except ScalerError as exc:
            failures = int(health.get("numberOfFailures") or 0)
            if fallback and failures >= int(fallback.get("failureThreshold") or 3):
                return float(fallback.get("replicas") or 1) * scaler.target * max(self._current(so), 1)
            raise MetricUnavailable(str(exc)) from None
        return value

    def _current(self, so: Obj) -> int:
        try:
            target = _targets.resolve(
                self.store, (so.get("spec") or {}).get("scaleTargetRef") or {}, so["metadata"]["namespace"]
            )
            return _targets.replicas(self.store, target)[0]
        except _targets.TargetError:
            return 0

    # ---- reconcile -------------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        so = self.get(API, "scaledobjects", key)
        if so is None or so["metadata"].get("deletionTimestamp"):
            self.states.pop(key, None)
            return None
        namespace = so["metadata"]["namespace"]
        spec = so.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        if self.ctx.faults.is_active(Fault.KEDA_WRONG_TARGET_KIND) and ref.get("kind") == "StatefulSet":
            # The ScaledObject as the seed lab writes it: no kind, so KEDA looks for a Deployment.
            self.store.patch(
                self.rt(API, "scaledobjects"),
                so["metadata"]["name"],
                [{"op": "remove", "path": "/spec/scaleTargetRef/kind"}],
                "json",
                namespace=namespace,
            )
            return 0.0
        status: Obj = dict(so.get("status") or {})
        before = repr(status)
        status.setdefault("conditions", initial_conditions())
        polling = float(_int(spec, "pollingInterval", DEFAULT_POLLING) or DEFAULT_POLLING)

        try:
            target = _targets.resolve(self.store, spec.get("scaleTargetRef") or {}, namespace)
        except _targets.TargetError as exc:
            if condition_status(status, "Ready") != "False":
                self.event(so, "Warning", "ScaledObjectCheckFailed", f"{CHECK_FAILED_MSG}: {exc}", COMPONENT)
            set_condition(status, "Ready", "False", "ScaledObjectCheckFailed", f"{CHECK_FAILED_MSG}: {exc}")
            set_condition(status, "Active", "Unknown", "UnkownState", "ScaledObject check failed")
            self._write_status(so, status, before)
            return None

        state = self._state(key, so)
        status["scaleTargetKind"] = target.kind
        status["scaleTargetGVKR"] = target.gvkr()
        status["externalMetricNames"] = [s.metric_name for s in state.scalers if not s.resource_metric]
        if any(s.resource_metric for s in state.scalers):
            status["resourceMetricNames"] = [s.type_name for s in state.scalers if s.resource_metric]
        status["triggersTypes"] = ",".join(str(t.get("type")) for t in spec.get("triggers") or [])
        status["hpaName"] = self._hpa_name(so)
        current, _ = _targets.replicas(self.store, target)
        status.setdefault("originalReplicaCount", current)

        annotations = so["metadata"].get("annotations") or {}
        if annotations.get(PAUSED, "").lower() == "true" or PAUSED_REPLICAS in annotations:
            return self._paused(so, status, before, target, current, annotations, polling)
        if condition_status(status, "Paused") == "True":
            set_condition(
                status, "Paused", "False", "ScaledObjectUnpaused", "pause annotation removed for ScaledObject"
            )
            status.pop("pausedReplicaCount", None)

        self._ensure_hpa(so, target)
        if state.build_errors:
            set_condition(status, "Ready", "False", "ScaledObjectCheckFailed", "; ".join(state.build_errors))
            self._write_status(so, status, before)
            return polling

        is_active, is_error, errors = await self._check_scalers(so, state, status)
        if annotations.get(FORCE_ACTIVATION, "").lower() == "true":
            is_active = True
        self._execute(so, status, target, current, is_active, is_error, errors, annotations)
        self._write_status(so, status, before)
        return polling

    def _state(self, key: str, so: Obj) -> _State:
        generation = int(so["metadata"].get("generation") or 1)
        state = self.states.get(key)
        if state is None or state.generation != generation:
            scalers: list[Scaler] = []
            errors: list[str] = []
            for index, trigger in enumerate((so.get("spec") or {}).get("triggers") or []):
                try:
                    scalers.append(build_scaler(self.ctx, so["metadata"]["namespace"], index, trigger))
                except ScalerError as exc:
                    errors.append(f"error parsing {trigger.get('type')} metadata: {exc}")
            state = self.states[key] = _State(generation, scalers, errors)
        return state

    async def _check_scalers(self, so: Obj, state: _State, status: Obj) -> tuple[bool, bool, list[str]]:
        is_active = False
        errors: list[str] = []
        health: dict[str, Any] = dict(status.get("health") or {})
        activity: dict[str, Any] = {}
        for scaler in state.scalers:
            if scaler.resource_metric:  # cpu/memory: the HPA's, never KEDA's activity
                continue
            try:
                reading = await scaler.read()
            except ScalerError as exc:
                errors.append(str(exc))
                previous = health.get(scaler.metric_name) or {}
                health[scaler.metric_name] = {
                    "numberOfFailures": int(previous.get("numberOfFailures") or 0) + 1,
                    "status": "Failing",
                }
                self.event(so, "Warning", "KEDAScalerFailed", str(exc), COMPONENT)
                continue
            health[scaler.metric_name] = {"numberOfFailures": 0, "status": "Happy"}
            activity[scaler.metric_name] = {"isActive": reading.active}
            is_active = is_active or reading.active
        status["health"] = health
        status["triggersActivity"] = activity
        if state.scalers and all(s.resource_metric for s in state.scalers) and not errors:
            is_active = True  # only cpu/memory triggers: always active (scale_handler.go)
        return is_active, bool(errors), errors

    def _execute(
        self,
        so: Obj,
        status: Obj,
        target: _targets.Target,
        current: int,
        is_active: bool,
        is_error: bool,
        errors: list[str],
        annotations: dict[str, str],
    ) -> None:
        spec = so.get("spec") or {}
        min_replicas = _int(spec, "minReplicaCount", 0) or 0
        idle = _int(spec, "idleReplicaCount", None)
        fallback = spec.get("fallback")
        now = self.clock.now()
        if not is_error:
            set_condition(status, "Ready", "True", "ScaledObjectReady", READY_MSG)
        elif is_active:
            set_condition(status, "Ready", "Unknown", "PartialTriggerError", PARTIAL_ERROR_MSG)
        else:
            set_condition(status, "Ready", "False", "TriggerError", TRIGGER_ERROR_MSG)
        self._fallback_condition(so, status, fallback)

        if is_active:
            scale_out_paused = annotations.get(PAUSED_SCALE_OUT, "").lower() == "true"
            if (current == 0 or (idle is not None and current < min_replicas)) and not scale_out_paused:
                replicas = min_replicas if min_replicas > 0 else 1
                _targets.scale(self.store, target, replicas)
                triggered = ";".join(
                    name for name, a in (status.get("triggersActivity") or {}).items() if a.get("isActive")
                )
                self.event(
                    so,
                    "Normal",
                    "KEDAScaleTargetActivated",
                    f"Scaled {target.kind} {target.namespace}/{target.name} from {current} to {replicas}, "
                    f"triggered by {triggered or 'forced activation annotation'}",
                    COMPONENT,
                )
            status["lastActiveTime"] = _stamp(now)
            set_condition(status, "Active", "True", "ScalerActive", ACTIVE_MSG)
            return

        if is_error and not fallback:
            # An error must not look like "no demand": the target stays where it is.
            set_condition(status, "Active", "False", "ScalerNotActive", NOT_ACTIVE_MSG)
            return
        if is_error and fallback:
            set_condition(status, "Active", "False", "ScalerNotActive", NOT_ACTIVE_MSG)
            if current == 0:
                _targets.scale(self.store, target, int(fallback.get("replicas") or 1))
            return

        should_idle = (idle is not None and current > idle) or (current > 0 and min_replicas == 0)
        if should_idle:
            if annotations.get(PAUSED_SCALE_IN, "").lower() == "true":
                set_condition(status, "Active", "False", "ScalerNotActive", NOT_ACTIVE_MSG)
                return
            last_active = _parse(status.get("lastActiveTime"))
            if last_active is not None:
                due = last_active.timestamp() + float(_int(spec, "cooldownPeriod", DEFAULT_COOLDOWN) or 0)
            else:
                created = _parse(so["metadata"].get("creationTimestamp")) or now
                due = created.timestamp() + float(_int(spec, "initialCooldownPeriod", 0) or 0)
            if self.ctx.faults.is_active(Fault.KEDA_EARLY_SCALE_IN):
                due = now.timestamp()
            if self.ctx.faults.is_active(Fault.KEDA_STUCK_ACTIVE) or due > now.timestamp():
                set_condition(status, "Active", "False", "ScalerCooldown", COOLDOWN_MSG)
                return
            replicas = idle if idle is not None else 0
            _targets.scale(self.store, target, replicas)
            self.event(
                so,
                "Normal",
                "KEDAScaleTargetDeactivated",
                f"Deactivated {target.kind} {target.namespace}/{target.name} from {current} to {replicas}",
                COMPONENT,
            )
            set_condition(status, "Active", "False", "ScalerNotActive", NOT_ACTIVE_MSG)
            return
        if idle is None and current < min_replicas:
            _targets.scale(self.store, target, min_replicas)
        set_condition(status, "Active", "False", "ScalerNotActive", NOT_ACTIVE_MSG)

    def _fallback_condition(self, so: Obj, status: Obj, fallback: Obj | None) -> None:
        if not fallback:
            set_condition(
                status,
                "Fallback",
                "False",
                "NoFallbackFound",
                "No fallbacks are active on this scaled object",
            )
            return
        threshold = int(fallback.get("failureThreshold") or 3)
        failing = any(
            int(h.get("numberOfFailures") or 0) >= threshold for h in (status.get("health") or {}).values()
        )
        if failing:
            set_condition(
                status,
                "Fallback",
                "True",
                "FallbackExists",
                "At least one trigger is falling back on this scaled object",
            )
        else:
            set_condition(
                status,
                "Fallback",
                "False",
                "NoFallbackFound",
                "No fallbacks are active on this scaled object",
            )

    def _paused(
        self,
        so: Obj,
        status: Obj,
        before: str,
        target: _targets.Target,
        current: int,
        annotations: dict[str, str],
        polling: float,
    ) -> float:
        wanted = annotations.get(PAUSED_REPLICAS)
        if wanted is not None and wanted.isdigit():
            if current != int(wanted):
                _targets.scale(self.store, target, int(wanted))
            status["pausedReplicaCount"] = int(wanted)
        hpa_name = self._hpa_name(so)
        rt = self.rt(HPA_API, "horizontalpodautoscalers")
        if self.store.try_get(rt, hpa_name, so["metadata"]["namespace"]) is not None:
            self.store.delete(rt, hpa_name, namespace=so["metadata"]["namespace"])
        set_condition(status, "Paused", "True", "ScaledObjectPaused", "ScaledObject is paused")
        self._write_status(so, status, before)
        return polling

    # ---- the HPA ---------------------------------------------------------------------------------------
    @staticmethod
    def _hpa_name(so: Obj) -> str:
        config = (((so.get("spec") or {}).get("advanced") or {}).get("horizontalPodAutoscalerConfig")) or {}
        return str(config.get("name") or f"keda-hpa-{so['metadata']['name']}")

    def _ensure_hpa(self, so: Obj, target: _targets.Target) -> None:
        spec = so.get("spec") or {}
        meta = so["metadata"]
        state = self.states[object_key(so)]
        advanced = spec.get("advanced") or {}
        behavior = (advanced.get("horizontalPodAutoscalerConfig") or {}).get("behavior")
        metrics = [scaler.hpa_metric(meta["name"]) for scaler in state.scalers]
        hpa_spec: Obj = {
            "scaleTargetRef": {
                "apiVersion": target.rt.api_version,
                "kind": target.rt.kind,
                "name": target.name,
            },
            "minReplicas": max(_int(spec, "minReplicaCount", 0) or 0, 1),
            "maxReplicas": _int(spec, "maxReplicaCount", DEFAULT_MAX) or DEFAULT_MAX,
            "metrics": metrics,
        }
        if behavior:
            hpa_spec["behavior"] = behavior
        rt = self.rt(HPA_API, "horizontalpodautoscalers")
        name = self._hpa_name(so)
        existing = self.store.try_get(rt, name, meta["namespace"])
        if existing is None:
            self.store.create(
                rt,
                {
                    "apiVersion": HPA_API,
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {
                        "name": name,
                        "namespace": meta["namespace"],
                        "labels": {
                            "app.kubernetes.io/managed-by": "keda-operator",
                            "app.kubernetes.io/name": name,
                            "app.kubernetes.io/part-of": meta["name"],
                            "app.kubernetes.io/version": "2.16.1",
                            SO_NAME_LABEL: meta["name"],
                        },
                        "ownerReferences": [
                            {
                                "apiVersion": API,
                                "kind": "ScaledObject",
                                "name": meta["name"],
                                "uid": meta["uid"],
                                "controller": True,
                                "blockOwnerDeletion": True,
                            }
                        ],
                    },
                    "spec": hpa_spec,
                },
                namespace=meta["namespace"],
            )
            self.event(so, "Normal", "KEDAScalersStarted", "Started scalers watch", COMPONENT)
            self.event(so, "Normal", "ScaledObjectReady", "ScaledObject is ready for scaling", COMPONENT)
        elif existing.get("spec") != hpa_spec:
            existing["spec"] = hpa_spec
            self.store.update(rt, existing, namespace=meta["namespace"])

    def _write_status(self, so: Obj, status: Obj, before: str) -> None:
        if repr(status) == before:
            return
        so = dict(so)
        so["status"] = status
        self.store.update_status(self.rt(API, "scaledobjects"), so, namespace=so["metadata"]["namespace"])
