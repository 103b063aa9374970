"""Typed views of KEDA scalers (ScaledObject, HTTPScaledObject, TriggerAuthentication) and their HPA, the
static judgments the `keda` suite makes on them, and the live lifecycle: a watch-based recorder of the
target's replicas, demand through the scaler's own channel, and the phases 0 → 1 → N → 0 measured in
cluster seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field

from pytest_aksai._errors import Finding
from pytest_aksai._public import public
from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._endpoint import Endpoint, service_port, service_proxy_endpoint
from pytest_aksai.kube._kaito import Condition, Metadata
from pytest_aksai.kube._nap import DISRUPTION_SLACK_S, LABEL_NODEPOOL, duration_seconds, read_nodepool
from pytest_aksai.kube._portforward import PortForward
from pytest_aksai.kube._rest import Kind, Obj
from pytest_aksai.kube._wait import WaitFailed, WaitResult, recent_events, wait_for

HPAS = Kind("autoscaling", "v2", "horizontalpodautoscalers", kind="HorizontalPodAutoscaler")
TRIGGERAUTHS = Kind("keda.sh", "v1alpha1", "triggerauthentications", kind="TriggerAuthentication")
INFERENCESETS = Kind("kaito.sh", "v1beta1", "inferencesets", kind="InferenceSet")
ENDPOINTSLICES = Kind("discovery.k8s.io", "v1", "endpointslices", kind="EndpointSlice")
DEFAULT_POLLING = 30
DEFAULT_COOLDOWN = 300
HTTP_POLLING = 15
"""The HTTP add-on writes `pollingInterval: 15` into the ScaledObjects it creates."""
INTERCEPTOR_SERVICES = ("keda-add-ons-http-interceptor-proxy", "interceptor-proxy")
COLD_START_HEADER = "X-KEDA-HTTP-Cold-Start"
WORKSPACE_LABEL = "kaito.sh/workspace"
_ACTIVATING_WITHOUT_PODS = frozenset(
    {"external-push", "external", "azure-servicebus", "azure-queue", "kafka", "rabbitmq", "cron", "redis"}
)


class _View(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class _Status(_View):
    conditions: list[Condition] = Field(default_factory=list)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


class ScaleTargetRef(_View):
    name: str = ""
    api_version: str | None = Field(default=None, alias="apiVersion")
    kind: str | None = None
    service: str | None = None
    port: int | None = None
    port_name: str | None = Field(default=None, alias="portName")


class Trigger(_View):
    type: str
    name: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    authentication_ref: dict[str, str] | None = Field(default=None, alias="authenticationRef")


class ScaledObjectSpec(_View):
    scale_target_ref: ScaleTargetRef = Field(alias="scaleTargetRef")
    polling_interval: int = Field(default=DEFAULT_POLLING, alias="pollingInterval")
    cooldown_period: int = Field(default=DEFAULT_COOLDOWN, alias="cooldownPeriod")
    initial_cooldown_period: int = Field(default=0, alias="initialCooldownPeriod")
    idle_replica_count: int | None = Field(default=None, alias="idleReplicaCount")
    min_replica_count: int = Field(default=0, alias="minReplicaCount")
    max_replica_count: int = Field(default=100, alias="maxReplicaCount")
    triggers: list[Trigger] = Field(default_factory=list)
    fallback: dict[str, Any] | None = None
    advanced: dict[str, Any] = Field(default_factory=dict)


class ScaledObjectStatus(_Status):
    scale_target_kind: str | None = Field(default=None, alias="scaleTargetKind")
    hpa_name: str | None = Field(default=None, alias="hpaName")
    external_metric_names: list[str] = Field(default_factory=list, alias="externalMetricNames")
    last_active_time: str | None = Field(default=None, alias="lastActiveTime")
    health: dict[str, Any] = Field(default_factory=dict)


@public
class ScaledObject(_View):
    """`keda.sh/v1alpha1` ScaledObject (defaults as KEDA applies them: polling 30 s, cooldown 300 s, min 0)."""

    metadata: Metadata
    spec: ScaledObjectSpec
    status: ScaledObjectStatus = Field(default_factory=ScaledObjectStatus)

    @property
    def ref(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"


class HTTPReplicas(_View):
    min: int = 0
    max: int = 100


class HTTPScaledObjectSpec(_View):
    hosts: list[str] = Field(default_factory=list)
    path_prefixes: list[str] = Field(default_factory=list, alias="pathPrefixes")
    scale_target_ref: ScaleTargetRef = Field(alias="scaleTargetRef")
    replicas: HTTPReplicas = Field(default_factory=HTTPReplicas)
    scaledown_period: int = Field(default=DEFAULT_COOLDOWN, alias="scaledownPeriod")
    scaling_metric: dict[str, Any] = Field(default_factory=dict, alias="scalingMetric")
    target_pending_requests: int | None = Field(default=None, alias="targetPendingRequests")

    @property
    def target_value(self) -> int:
        for kind in ("concurrency", "requestRate"):
            if kind in self.scaling_metric:
                return int((self.scaling_metric[kind] or {}).get("targetValue") or 100)
        return int(self.target_pending_requests or 100)


@public
class HTTPScaledObject(_View):
    """`http.keda.sh/v1alpha1` HTTPScaledObject: the HTTP add-on makes a ScaledObject of the same name."""

    metadata: Metadata
    spec: HTTPScaledObjectSpec
    status: _Status = Field(default_factory=_Status)


@public
class TriggerAuthentication(_View):
    metadata: Metadata
    spec: dict[str, Any] = Field(default_factory=dict)


@public
class HorizontalPodAutoscaler(_View):
    metadata: Metadata
    spec: dict[str, Any] = Field(default_factory=dict)
    status: _Status = Field(default_factory=_Status)

    @property
    def min_replicas(self) -> int:
        return int(self.spec.get("minReplicas") or 1)


@public
@dataclass(frozen=True)
class Scaler:
    """One scaler under test: a ScaledObject, or an HTTPScaledObject with the ScaledObject it owns."""

    namespace: str
    name: str
    source_kind: str
    """`ScaledObject` or `HTTPScaledObject`."""
    target_api_version: str
    target_kind: str
    """As KEDA resolves it: an empty kind means Deployment."""
    target_name: str
    kind_given: bool
    min_replicas: int
    max_replicas: int
    polling_interval: int
    cooldown: int
    triggers: tuple[Trigger, ...] = ()
    hosts: tuple[str, ...] = ()
    path_prefixes: tuple[str, ...] = ()
    service: str | None = None
    service_port: int | str | None = None
    target_value: int | None = None
    source: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_http(self) -> bool:
        return self.source_kind == "HTTPScaledObject"

    @property
    def scales_to_zero(self) -> bool:
        return self.min_replicas == 0

    def __str__(self) -> str:
        return f"{self.source_kind}/{self.ref}"


def _generated_by_http_addon(obj: Obj) -> bool:
    return any(
        r.get("kind") == "HTTPScaledObject" for r in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def _owned_scaled_object(
    objects: Sequence[tuple[str, Obj]], namespace: str, name: str
) -> ScaledObject | None:
    for _, obj in objects:
        meta = obj.get("metadata") or {}
        if (
            obj.get("kind") == "ScaledObject"
            and meta.get("name") == name
            and (meta.get("namespace") or namespace) == namespace
            and _generated_by_http_addon(obj)
        ):
            return ScaledObject.model_validate(obj)
    return None


def scalers_from_objects(objects: Sequence[tuple[str, Obj]]) -> list[Scaler]:
    """The scalers among `(source, object)` pairs: every HTTPScaledObject, and every ScaledObject the HTTP
    add-on did not generate (those are judged through their HTTPScaledObject)."""
    found: list[Scaler] = []
    for source, obj in objects:
        kind = obj.get("kind")
        group = str(obj.get("apiVersion", "")).split("/")[0]
        namespace = (obj.get("metadata") or {}).get("namespace") or "default"
        if kind == "ScaledObject" and group == "keda.sh" and not _generated_by_http_addon(obj):
            so = ScaledObject.model_validate(obj)
            ref = so.spec.scale_target_ref
            found.append(
                Scaler(
                    namespace,
                    so.metadata.name,
                    "ScaledObject",
                    ref.api_version or "apps/v1",
                    ref.kind or "Deployment",
                    ref.name,
                    bool(ref.kind),
                    so.spec.min_replica_count,
                    so.spec.max_replica_count,
                    so.spec.polling_interval,
                    so.spec.cooldown_period,
                    tuple(so.spec.triggers),
                    source=source,
                )
            )
        elif kind == "HTTPScaledObject" and group == "http.keda.sh":
            http = HTTPScaledObject.model_validate(obj)
            ref = http.spec.scale_target_ref
            owned = _owned_scaled_object(objects, namespace, http.metadata.name)
            if owned is not None:
                # What KEDA acts on is the generated ScaledObject's target, not the HTTPScaledObject's.
                generated = owned.spec.scale_target_ref
                ref = ref.model_copy(update={"api_version": generated.api_version, "kind": generated.kind})
            found.append(
                Scaler(
                    namespace,
                    http.metadata.name,
                    "HTTPScaledObject",
                    ref.api_version or "apps/v1",
                    ref.kind or "Deployment",
                    ref.name,
                    bool(ref.kind),
                    http.spec.replicas.min,
                    http.spec.replicas.max,
                    HTTP_POLLING,
                    http.spec.scaledown_period,
                    (Trigger(type="external-push", metadata={"httpScaledObject": http.metadata.name}),),
                    tuple(http.spec.hosts),
                    tuple(http.spec.path_prefixes),
                    ref.service,
                    ref.port if ref.port is not None else ref.port_name,
                    http.spec.target_value,
                    source=source,
                )
            )
    return found


KEDA_KINDS = (
    _rest.SCALEDOBJECTS,
    _rest.HTTPSCALEDOBJECTS,
    _rest.DEPLOYMENTS,
    _rest.STATEFULSETS,
    _rest.WORKSPACES,
    INFERENCESETS,
    _rest.SERVICES,
)


def keda_objects(cluster: Cluster, namespace: str | None) -> list[tuple[str, Obj]]:
    """The scalers, their possible targets and Services, and the Workspaces' inference ConfigMaps."""
    source = f"cluster:{cluster.profile}"
    found: list[Obj] = []
    for kind in KEDA_KINDS:
        if cluster.serves(kind.group, kind.version):
            try:
                found.extend(_rest.typed_items(cluster._api, kind, namespace))
            except ApiException as exc:
                if exc.status != 404:  # a group served without this resource (KAITO before InferenceSet)
                    raise
    for obj in list(found):
        config = (obj.get("inference") or {}).get("config") if obj.get("kind") == "Workspace" else None
        if config:
            cm = _rest.get(cluster._api, _rest.CONFIGMAPS, config, obj["metadata"].get("namespace"))
            if cm is not None:
                cm.setdefault("kind", "ConfigMap")
                found.append(cm)
    return [(source, o) for o in found]


# ---- static judgments --------------------------------------------------------------------------------------
@public
@dataclass(frozen=True)
class Judgment:
    ok: bool | None
    """True pass, False fail, None not applicable (the message says why)."""
    message: str


def _find(objects: Sequence[tuple[str, Obj]], kind: str, namespace: str, name: str) -> Obj | None:
    for _, obj in objects:
        meta = obj.get("metadata") or {}
        if (
            obj.get("kind") == kind
            and meta.get("name") == name
            and (meta.get("namespace") or namespace) == namespace
        ):
            return obj
    return None


def _workspace_running(objects: Sequence[tuple[str, Obj]], namespace: str, name: str) -> Obj | None:
    return _find(objects, "Workspace", namespace, name)


def target_judgment(scaler: Scaler, objects: Sequence[tuple[str, Obj]]) -> Judgment:
    """The target exists under the kind KEDA will look for, and that kind is what really runs."""
    where = f"{scaler} scaleTargetRef"
    given = f"{scaler.target_kind}/{scaler.target_name}" + (
        "" if scaler.kind_given else " (no kind: KEDA reads Deployment)"
    )
    if scaler.target_kind == "StatefulSet" and _workspace_running(
        objects, scaler.namespace, scaler.target_name
    ):
        return Judgment(
            True, f"{where} {given} is the StatefulSet KAITO runs for Workspace {scaler.target_name}"
        )
    if _find(objects, scaler.target_kind, scaler.namespace, scaler.target_name) is not None:
        if scaler.target_kind == "Deployment" and _workspace_running(
            objects, scaler.namespace, scaler.target_name
        ):
            return Judgment(
                False,
                f"{where} names {given}, but KAITO runs Workspace {scaler.target_name} as a StatefulSet",
            )
        return Judgment(True, f"{where} {given} exists")
    runs = next(
        (
            kind
            for kind in ("StatefulSet", "Deployment", "InferenceSet")
            if _find(objects, kind, scaler.namespace, scaler.target_name) is not None
        ),
        None,
    )
    if runs is None and _workspace_running(objects, scaler.namespace, scaler.target_name):
        runs = "StatefulSet"
    if runs is None:
        return Judgment(False, f"{where} names {given}, which does not exist in namespace {scaler.namespace}")
    api = "kaito.sh/v1beta1" if runs == "InferenceSet" else "apps/v1"
    via = (
        f"KAITO runs Workspace {scaler.target_name} as a StatefulSet"
        if _workspace_running(objects, scaler.namespace, scaler.target_name)
        else f"{scaler.target_name} is a {runs}"
    )
    return Judgment(
        False,
        f"{where} names {given}, but {via}: KEDA cannot find its target (Ready=False, "
        f"ScaledObjectCheckFailed). Set scaleTargetRef.apiVersion: {api} and kind: {runs}",
    )


def activation_judgment(scaler: Scaler) -> Judgment:
    """With minReplicaCount 0, some trigger's signal must exist while no pod of the target runs."""
    if not scaler.scales_to_zero:
        return Judgment(
            None, f"{scaler} keeps at least {scaler.min_replicas} replica(s): no activation from zero"
        )
    own_series = []
    for trigger in scaler.triggers:
        if trigger.type in _ACTIVATING_WITHOUT_PODS:
            return Judgment(True, f"{scaler} activates from zero on its {trigger.type} trigger")
        if trigger.type == "prometheus" and "vllm:" not in trigger.metadata.get("query", ""):
            return Judgment(
                True, f"{scaler} activates from zero on a Prometheus series outside the model pods"
            )
        if trigger.type == "prometheus":
            own_series.append(trigger.metadata.get("query", ""))
    if own_series:
        return Judgment(
            False,
            f"{scaler} has minReplicaCount 0 but its only Prometheus trigger queries the model pods' own vllm:* "
            f"series ({own_series[0]!r}): at zero there is no pod to scrape, the query is empty, KEDA reads 0 "
            "(ignoreNullValues) and the scaler can never activate. Add a trigger whose signal exists at zero "
            "(the HTTP add-on's interceptor, a Service Bus queue, a gateway metric) or set minReplicaCount: 1",
        )
    kinds = ", ".join(t.type for t in scaler.triggers) or "none"
    return Judgment(
        False,
        f"{scaler} has minReplicaCount 0 but no trigger that can activate it from zero (triggers: {kinds}); "
        "cpu and memory need running pods. Add an event trigger or set minReplicaCount: 1",
    )


def route_service_judgment(scaler: Scaler, objects: Sequence[tuple[str, Obj]]) -> Judgment:
    """An HTTPScaledObject's Service must not publish not-ready addresses (the KAITO Service does)."""
    if not scaler.is_http or not scaler.service:
        return Judgment(None, f"{scaler} is not routed by the HTTP add-on")
    service = _find(objects, "Service", scaler.namespace, scaler.service)
    if service is None and _workspace_running(objects, scaler.namespace, scaler.service):
        # Not in the YAML: KAITO creates Service <workspace> itself, with publishNotReadyAddresses: true.
        service = {"spec": {"publishNotReadyAddresses": True, "selector": {WORKSPACE_LABEL: scaler.service}}}
    if service is None:
        return Judgment(
            False, f"{scaler} routes to Service {scaler.namespace}/{scaler.service}, which does not exist"
        )
    if (service.get("spec") or {}).get("publishNotReadyAddresses"):
        kaito = (
            " (KAITO's own Service does this)"
            if (service.get("spec") or {}).get("selector", {}).get(WORKSPACE_LABEL)
            else ""
        )
        return Judgment(
            False,
            f"{scaler} routes to Service {scaler.namespace}/{scaler.service}, which sets publishNotReadyAddresses"
            f"{kaito}: the interceptor counts a pod that is still loading as ready, stops holding the cold start "
            "and forwards it to a server that refuses connections (504 after its dial retries). Route to a "
            "Service without publishNotReadyAddresses that selects the same pods",
        )
    return Judgment(
        True, f"{scaler} routes to Service {scaler.service}, which publishes only ready addresses"
    )


def max_num_seqs_of(scaler: Scaler, objects: Sequence[tuple[str, Obj]]) -> int | None:
    """`max-num-seqs` of the target's vLLM: its command line, or the Workspace's inference ConfigMap."""
    workload = _find(objects, scaler.target_kind, scaler.namespace, scaler.target_name)
    if workload is not None:
        for container in ((workload.get("spec") or {}).get("template") or {}).get("spec", {}).get(
            "containers"
        ) or []:
            argv = [*(container.get("command") or []), *(container.get("args") or [])]
            for i, arg in enumerate(argv):
                if arg.startswith("--max-num-seqs="):
                    return int(arg.split("=", 1)[1])
                if arg == "--max-num-seqs" and i + 1 < len(argv):
                    return int(argv[i + 1])
    workspace = _workspace_running(objects, scaler.namespace, scaler.target_name)
    config = (workspace or {}).get("inference", {}).get("config") if workspace else None
    cm = _find(objects, "ConfigMap", scaler.namespace, str(config)) if config else None
    if cm is not None:
        for text in (cm.get("data") or {}).values():
            with contextlib.suppress(yaml.YAMLError, AttributeError, TypeError, ValueError):
                vllm = (yaml.safe_load(text) or {}).get("vllm") or {}
                value = vllm.get("max-num-seqs", vllm.get("max_num_seqs"))
                if value is not None:
                    return int(value)
    return None


def threshold_judgment(scaler: Scaler, objects: Sequence[tuple[str, Obj]]) -> Judgment:
    """The per-replica target must not exceed what one replica admits (`max-num-seqs`): beyond it requests
    queue inside vLLM while the HPA sees no reason to add a replica."""
    seqs = max_num_seqs_of(scaler, objects)
    target = scaler.target_value
    if target is None:
        for trigger in scaler.triggers:
            if trigger.type == "prometheus" and "num_requests" in trigger.metadata.get("query", ""):
                with contextlib.suppress(ValueError):
                    target = math.ceil(float(trigger.metadata.get("threshold", "")))
    if target is None:
        return Judgment(None, f"{scaler} has no concurrency-like target to compare with max-num-seqs")
    if seqs is None:
        return Judgment(
            None, f"{scaler}: the target's max-num-seqs is not set (vLLM's default depends on the GPU)"
        )
    if target > seqs:
        return Judgment(
            False,
            f"{scaler} targets {target} concurrent requests per replica, but one replica runs at most "
            f"{seqs} sequences (max-num-seqs): {target - seqs} requests per replica wait inside vLLM before "
            f"KEDA adds a replica. Set the target to at most {seqs} (the sizing guide uses ~80 %, "
            f"{max(1, int(seqs * 0.8))})",
        )
    return Judgment(True, f"{scaler} targets {target} per replica ≤ max-num-seqs {seqs}")


def workspace_gpu_judgment(
    scaler: Scaler, objects: Sequence[tuple[str, Obj]], gpu_price_per_hour: Mapping[str, float]
) -> Judgment:
    """Scaling a KAITO Workspace's StatefulSet to zero frees no GPU: KAITO pins its node."""
    workspace = _workspace_running(objects, scaler.namespace, scaler.target_name)
    if workspace is None or scaler.target_kind != "StatefulSet":
        return Judgment(None, f"{scaler} does not scale a KAITO Workspace")
    if not scaler.scales_to_zero:
        return Judgment(
            True, f"{scaler} keeps Workspace {scaler.target_name} at ≥ {scaler.min_replicas} replica(s)"
        )
    resource = workspace.get("resource") or {}
    sku = str(resource.get("instanceType") or "")
    count = int(resource.get("count") or 1)
    price = gpu_price_per_hour.get(sku)
    cost = f" (${price * 24 * count:,.2f}/day for {count} × {sku})" if price else ""
    return Judgment(
        False,
        f"{scaler} scales Workspace {scaler.target_name}'s StatefulSet to zero, but KAITO keeps the GPU node "
        f"(its NodeClaim carries karpenter.sh/do-not-disrupt): zero replicas free no GPU{cost}. Use a KAITO "
        "InferenceSet (kind: InferenceSet, kaito.sh/v1beta1) or a vLLM Deployment on a NAP pool for scale "
        "to zero, or set minReplicaCount: 1",
    )


def cooldown_judgment(scaler: Scaler, longest_generation_s: float | None) -> Judgment:
    if longest_generation_s is None:
        return Judgment(
            None, "the profile sets no end-to-end latency SLO (slos.e2e_p99_ms) to bound a generation"
        )
    if scaler.cooldown <= longest_generation_s:
        return Judgment(
            False,
            f"{scaler} cools down after {scaler.cooldown} s, but a generation may take up to "
            f"{longest_generation_s:g} s under the profile's SLOs: a replica can be removed mid-generation and the "
            f"response is lost. Set the cooldown above {math.ceil(longest_generation_s)} s",
        )
    return Judgment(True, f"{scaler} cools down after {scaler.cooldown} s > {longest_generation_s:g} s")


@public
@dataclass(frozen=True)
class ScalerJudgments:
    """The static checks' verdicts on one scaler (each a `Judgment`: ok True/False, or None = n/a)."""

    target: Judgment
    activation: Judgment
    route_service: Judgment
    threshold: Judgment
    workspace_gpu: Judgment
    cooldown: Judgment


def judge_scaler(
    scaler: Scaler, objects: Sequence[tuple[str, Obj]], *, longest_generation_s: float | None = None
) -> ScalerJudgments:
    """Every static judgment of `scaler` against the objects around it (YAML or the cluster's)."""
    from pytest_aksai.sizing import UnknownEntryError, gpu_sku

    prices: dict[str, float] = {}
    for _, obj in objects:
        sku = (
            str((obj.get("resource") or {}).get("instanceType") or "")
            if obj.get("kind") == "Workspace"
            else ""
        )
        if sku:
            with contextlib.suppress(UnknownEntryError):
                price = gpu_sku(sku).price_per_hour
                if price is not None:
                    prices[sku] = price
    return ScalerJudgments(
        target_judgment(scaler, objects),
        activation_judgment(scaler),
        route_service_judgment(scaler, objects),
        threshold_judgment(scaler, objects),
        workspace_gpu_judgment(scaler, objects, prices),
        cooldown_judgment(scaler, longest_generation_s),
    )


# ---- live ----------------------------------------------------------------------------------------------
def read_scaled_object(cluster: Cluster, namespace: str, name: str) -> ScaledObject | None:
    obj = _rest.get(cluster._api, _rest.SCALEDOBJECTS, name, namespace)
    return ScaledObject.model_validate(obj) if obj is not None else None


def _ready_reason(obj: Obj | None) -> str | None:
    """KEDA's own verdict when the ScaledObject cannot work (Ready False)."""
    if obj is None:
        return None
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "False" and cond.get("reason"):
            return f"Ready=False, reason {cond['reason']}: {cond.get('message', '')}"
    return None


def _persistent(reason_of: Any, wall_grace: float) -> Any:
    """`reason_of`, once the same reason has held for `wall_grace` seconds: KEDA retries a failed check, so
    a verdict from just before the target appeared (KAITO creating its StatefulSet) is not final."""
    first_seen: dict[str, float] = {}

    def check(obj: Obj | None) -> str | None:
        reason = reason_of(obj)
        if reason is None:
            first_seen.clear()
            return None
        started = first_seen.setdefault(reason, time.monotonic())
        return reason if time.monotonic() - started >= wall_grace else None

    return check


def wait_scaler_ready(
    cluster: Cluster, scaler: Scaler, budget: float, *, workspace_budget: float
) -> WaitResult:
    """The scaler's ScaledObject Ready=True with its HPA and external metrics, within `budget` cluster s;
    KEDA's Ready=False reason ends the wait at once. A KAITO Workspace's StatefulSet is waited for first
    (KAITO creates it once the GPU node is there), within `workspace_budget`."""
    if scaler.target_kind == "StatefulSet" and _rest.get(
        cluster._api, _rest.WORKSPACES, scaler.target_name, scaler.namespace
    ):
        wait_for(
            cluster,
            _rest.STATEFULSETS,
            scaler.target_name,
            scaler.namespace,
            until=lambda o: o is not None,
            expected=f"KAITO to create the StatefulSet of Workspace {scaler.target_name}",
            timeout=workspace_budget,
        )
    result = wait_for(
        cluster,
        _rest.SCALEDOBJECTS,
        scaler.name,
        scaler.namespace,
        until=lambda o: (
            o is not None
            and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (o.get("status") or {}).get("conditions") or []
            )
            and bool(
                (o.get("status") or {}).get("externalMetricNames")
                or (o.get("status") or {}).get("resourceMetricNames")
            )
        ),
        expected="Ready=True (ScaledObjectReady) with its HPA's metrics",
        timeout=budget,
        abort_if=_persistent(_ready_reason, scaler.polling_interval / cluster.time_scale),
    )
    return result


def hpa_of(cluster: Cluster, so: ScaledObject) -> HorizontalPodAutoscaler | None:
    name = so.status.hpa_name or f"keda-hpa-{so.metadata.name}"
    obj = _rest.get(cluster._api, HPAS, name, so.metadata.namespace)
    return HorizontalPodAutoscaler.model_validate(obj) if obj is not None else None


# ---- the recorder ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One observation, at `t` cluster seconds after the recording began."""

    t: float
    replicas: int
    ready_replicas: int
    hpa_desired: int | None
    gpu_nodes: int
    active: str | None
    ready: str | None


def _kind_of(scaler: Scaler) -> Kind:
    if scaler.target_kind == "StatefulSet":
        return _rest.STATEFULSETS
    if scaler.target_kind == "InferenceSet":
        return INFERENCESETS
    return _rest.DEPLOYMENTS


def _condition_status(obj: Obj | None, type_: str) -> str | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return str(cond.get("status"))
    return None


def _gpu_nodes(nodes: Mapping[str, Obj]) -> int:
    return sum(
        1
        for n in nodes.values()
        if int(((n.get("status") or {}).get("allocatable") or {}).get("nvidia.com/gpu", 0) or 0) > 0
    )


class Recorder:
    """Watches the target, the ScaledObject, its HPA and the nodes, and keeps a sample per change."""

    def __init__(self, cluster: Cluster, scaler: Scaler) -> None:
        self.cluster = cluster
        self.scaler = scaler
        self.samples: list[Sample] = []
        self._state: dict[str, Obj | None] = {"target": None, "so": None, "hpa": None}
        self._nodes: dict[str, Obj] = {}
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._threads: list[threading.Thread] = []
        # A client of its own: the kubernetes client's port-forward swaps `request` on the ApiClient it uses,
        # which would hijack this recorder's concurrent watches.
        self._api = k8s.ApiClient(cluster._api.configuration)

    def now(self) -> float:
        return (time.monotonic() - self._started) * self.cluster.time_scale

    def __enter__(self) -> Recorder:
        s = self.scaler
        hpa = f"keda-hpa-{s.name}"
        for slot, kind, name in (
            ("target", _kind_of(s), s.target_name),
            ("so", _rest.SCALEDOBJECTS, s.name),
            ("hpa", HPAS, hpa),
        ):
            thread = threading.Thread(target=self._watch_one, args=(slot, kind, name), daemon=True)
            self._threads.append(thread)
        self._threads.append(threading.Thread(target=self._watch_nodes, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()

    def _record(self) -> None:
        target = self._state["target"] or {}
        hpa = self._state["hpa"] or {}
        so = self._state["so"]
        sample = Sample(
            round(self.now(), 3),
            int((target.get("spec") or {}).get("replicas") or 0),
            int((target.get("status") or {}).get("readyReplicas") or 0),
            (hpa.get("status") or {}).get("desiredReplicas"),
            _gpu_nodes(self._nodes),
            _condition_status(so, "Active"),
            _condition_status(so, "Ready"),
        )
        with self._lock:
            last = self.samples[-1] if self.samples else None
            if last is None or (
                last.replicas,
                last.ready_replicas,
                last.hpa_desired,
                last.gpu_nodes,
                last.active,
                last.ready,
            ) != (
                sample.replicas,
                sample.ready_replicas,
                sample.hpa_desired,
                sample.gpu_nodes,
                sample.active,
                sample.ready,
            ):
                self.samples.append(sample)
            self._lock.notify_all()

    def _watch_one(self, slot: str, kind: Kind, name: str) -> None:
        api = self._api
        field_selector = f"metadata.name={name}"
        while not self._stop.is_set():
            try:
                listed = _rest.list_(api, kind, self.scaler.namespace, field_selector=field_selector)
                items = listed.get("items") or []
                self._state[slot] = items[0] if items else None
                self._record()
                version = str((listed.get("metadata") or {}).get("resourceVersion") or "0")
                for event in _rest.watch(
                    api,
                    kind,
                    self.scaler.namespace,
                    resource_version=version,
                    timeout_seconds=5,
                    field_selector=field_selector,
                ):
                    if self._stop.is_set():
                        return
                    if event.get("type") == "BOOKMARK":
                        continue
                    self._state[slot] = None if event.get("type") == "DELETED" else event.get("object")
                    self._record()
            except (ApiException, OSError, ValueError):
                self._stop.wait(0.2)

    def _watch_nodes(self) -> None:
        api = self._api
        while not self._stop.is_set():
            try:
                listed = _rest.list_(api, _rest.NODES)
                self._nodes = {n["metadata"]["name"]: n for n in listed.get("items") or []}
                self._record()
                version = str((listed.get("metadata") or {}).get("resourceVersion") or "0")
                for event in _rest.watch(api, _rest.NODES, None, resource_version=version, timeout_seconds=5):
                    if self._stop.is_set():
                        return
                    obj = event.get("object") or {}
                    if event.get("type") == "BOOKMARK":
                        continue
                    if event.get("type") == "DELETED":
                        self._nodes.pop(obj["metadata"]["name"], None)
                    else:
                        self._nodes[obj["metadata"]["name"]] = obj
                    self._record()
            except (ApiException, OSError, ValueError):
                self._stop.wait(0.2)

    def wait(self, predicate: Any, cluster_seconds: float) -> Sample | None:
        """The first sample (from now on, or the latest) that satisfies `predicate`, or None at the deadline."""
        deadline = time.monotonic() + cluster_seconds / self.cluster.time_scale
        started = self.now()
        with self._lock:
            while True:
                if self.samples and predicate(self.samples[-1]):
                    # A state that already holds counts from now, not from when it was first seen.
                    latest = self.samples[-1]
                    return latest if latest.t >= started else dataclasses.replace(latest, t=round(started, 3))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(min(remaining, 0.5))

    def latest(self) -> Sample | None:
        with self._lock:
            return self.samples[-1] if self.samples else None

    def since(self, t: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if s.t >= t]


# ---- demand through the HTTP add-on's interceptor ---------------------------------------------------------
@dataclass
class HttpResult:
    status: int
    seconds: float
    """Cluster seconds from sending to the last byte."""
    cold_start: str | None
    body: str


def interceptor_service(cluster: Cluster) -> Obj | None:
    for name in INTERCEPTOR_SERVICES:
        for svc in _rest.items(cluster._api, _rest.SERVICES, None, field_selector=f"metadata.name={name}"):
            return svc
    return None


@contextlib.contextmanager
def interceptor(cluster: Cluster) -> Iterator[str]:
    """A port-forward to an interceptor pod (as `kubectl port-forward svc/keda-add-ons-http-interceptor-proxy`)."""
    svc = interceptor_service(cluster)
    if svc is None:
        raise Finding(
            "the KEDA HTTP add-on's interceptor Service was not found",
            expected=f"a Service named {' or '.join(INTERCEPTOR_SERVICES)}",
            where="kubectl get svc -A | grep interceptor",
            fix="Install the HTTP add-on (helm install http-add-on kedacore/keda-add-ons-http -n keda)",
        )
    namespace = svc["metadata"]["namespace"]
    selector = ",".join(f"{k}={v}" for k, v in ((svc.get("spec") or {}).get("selector") or {}).items())
    pods = [
        p
        for p in _rest.items(cluster._api, _rest.PODS, namespace, label_selector=selector)
        if _condition_status(p, "Ready") == "True"
    ]
    if not pods:
        raise Finding(
            f"no interceptor pod behind Service {namespace}/{svc['metadata']['name']} is Ready",
            where=f"kubectl get pods -n {namespace} -l {selector}",
            fix="Check the interceptor Deployment's pods and events",
        )
    # Its own client: a port-forward swaps `request` on its ApiClient while it opens a stream.
    forward = PortForward(
        k8s.ApiClient(cluster._api.configuration), namespace, pods[0]["metadata"]["name"], 8080
    )
    try:
        yield forward.url
    finally:
        forward.close()


CHAT_BODY = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}


def send(
    cluster: Cluster,
    base_url: str,
    host: str,
    path: str,
    body: Mapping[str, Any],
    timeout: float,
    client: httpx.Client | None = None,
) -> HttpResult:
    """One request through the interceptor with the route's Host header; `timeout` in cluster seconds."""
    started = time.monotonic()
    try:
        url = base_url.rstrip("/") + path
        wall_timeout = timeout / cluster.time_scale
        if client is None:
            response = httpx.post(url, json=dict(body), headers={"Host": host}, timeout=wall_timeout)
        else:
            response = client.post(url, json=dict(body), headers={"Host": host}, timeout=wall_timeout)
        status, header, text = (
            response.status_code,
            response.headers.get(COLD_START_HEADER),
            response.text[:300],
        )
    except httpx.HTTPError as exc:
        status, header, text = 0, None, f"{type(exc).__name__}: {exc}"
    return HttpResult(status, round((time.monotonic() - started) * cluster.time_scale, 3), header, text)


def _warm_clients(base_url: str, count: int) -> list[httpx.Client]:
    clients: list[httpx.Client] = []
    threads = [threading.Thread(target=lambda: clients.append(warm_client(base_url))) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return clients


def warm_client(base_url: str) -> httpx.Client:
    """A keep-alive client whose connection through the port-forward is already open (an unrouted Host gets
    the interceptor's 404 and counts as no demand), so the tunnel's set-up is not timed as KEDA's."""
    client = httpx.Client(timeout=30)
    with contextlib.suppress(httpx.HTTPError):
        client.get(base_url.rstrip("/") + "/", headers={"Host": "aksai-warm-up.invalid"})
    return client


def models_of(cluster: Cluster, scaler: Scaler, objects: Sequence[tuple[str, Obj]]) -> str:
    """The model name to ask for: `--served-model-name` of the target, else the KAITO preset's name."""
    workload = _find(objects, scaler.target_kind, scaler.namespace, scaler.target_name) or {}
    for container in ((workload.get("spec") or {}).get("template") or {}).get("spec", {}).get(
        "containers"
    ) or []:
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        for i, arg in enumerate(argv):
            if arg == "--served-model-name" and i + 1 < len(argv):
                return str(argv[i + 1])
            if arg.startswith("--served-model-name="):
                return str(arg.split("=", 1)[1])
    workspace = _workspace_running(objects, scaler.namespace, scaler.target_name) or {}
    return str(((workspace.get("inference") or {}).get("preset") or {}).get("name") or "default")


def chat_path(scaler: Scaler) -> str:
    for prefix in scaler.path_prefixes or ("/v1",):
        if "/v1/chat/completions".startswith(prefix) or prefix.startswith("/v1/chat"):
            return "/v1/chat/completions"
    return re.sub(r"/+$", "", (scaler.path_prefixes or ("/v1",))[0]) + "/chat/completions"


# ---- the lifecycle -----------------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    ok: bool
    seconds: float | None
    """Cluster seconds the phase took (None when it never completed)."""
    message: str


@public
@dataclass
class Lifecycle:
    """What one 0 → 1 → N → 0 run of a scaler showed, phase by phase."""

    scaler: Scaler
    phases: list[Phase] = field(default_factory=list)
    first_request: HttpResult | None = None
    expected_peak: int | None = None
    samples: list[Sample] = field(default_factory=list)
    demand_started: float | None = None
    """Cluster seconds (on the samples' clock) when the first request was sent."""
    demand_stopped: float | None = None
    """When the sustained demand's last request ended: the cooldown counts from here."""
    polling: float = 30.0
    cooldown: float = 300.0
    nap_nodes: dict[str, str] = field(default_factory=dict)
    """GPU node → its NodeClaim, for the nodes NAP (Karpenter) provisioned that ran the target at its peak."""

    @property
    def report_key(self) -> str:
        """The key of this lifecycle's timeline in the run report."""
        return f"keda/{self.scaler.ref}"

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)

    def fail(self, name: str, message: str) -> Lifecycle:
        """Record the phase `name` as failed, with `message`; the lifecycle ends there."""
        self.phases.append(Phase(name, False, None, message))
        return self

    def timeline(self) -> str:
        return "\n".join(
            f"  t={s.t:8.1f}s replicas={s.replicas} ready={s.ready_replicas} hpa_desired={s.hpa_desired} "
            f"gpu_nodes={s.gpu_nodes} Active={s.active} Ready={s.ready}"
            for s in self.samples[-40:]
        )


def _evidence(cluster: Cluster, scaler: Scaler) -> str:
    lines = recent_events(cluster, scaler.name, scaler.namespace, limit=6)
    lines += recent_events(cluster, scaler.target_name, scaler.namespace, limit=4)
    for pod in _rest.items(cluster._api, _rest.PODS, scaler.namespace):
        if not pod["metadata"]["name"].startswith(f"{scaler.target_name}-"):
            continue
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                lines.append(
                    f"pod {pod['metadata']['name']} is not scheduled: {cond.get('reason')}: {cond.get('message')}"
                )
    return "\n".join(lines)


def run_http_lifecycle(
    cluster: Cluster,
    scaler: Scaler,
    objects: Sequence[tuple[str, Obj]],
    *,
    slack: float,
    cold_start_budget: float,
) -> Lifecycle:
    """Idle at zero → a request through the interceptor activates the scaler → the first request succeeds →
    sustained demand scales out as the HPA formula predicts → demand stops → no scale-in before the
    cooldown → zero within cooldown + pollingInterval + slack. All times cluster seconds."""
    result = Lifecycle(scaler)
    polling, cooldown = float(scaler.polling_interval), float(scaler.cooldown)
    result.polling, result.cooldown = polling, cooldown
    host = scaler.hosts[0] if scaler.hosts else "localhost"
    body = {**CHAT_BODY, "model": models_of(cluster, scaler, objects)}
    path = chat_path(scaler)

    def fail(name: str, message: str, seconds: float | None = None) -> Lifecycle:
        result.phases.append(Phase(name, False, seconds, message))
        return result

    with Recorder(cluster, scaler) as recorder, interceptor(cluster) as base_url:
        try:
            if not _idle_at_zero(cluster, scaler, recorder, result, slack):
                return result

            target = scaler.target_value or 1
            peak = min(scaler.max_replicas, 2)
            concurrency = target * peak + max(1, target // 2)
            # Every connection through the port-forward is opened now, while nothing is timed: on a loaded
            # machine opening dozens of tunnels takes seconds of wall time, minutes of cluster time.
            clients = _warm_clients(base_url, concurrency + 1)
            holder: dict[str, HttpResult] = {}
            first_client = clients.pop()
            sent_at = recorder.now()
            result.demand_started = sent_at

            def first_request() -> None:
                holder["r"] = send(cluster, base_url, host, path, body, cold_start_budget, first_client)

            first = threading.Thread(target=first_request, daemon=True)
            first.start()
            activated = recorder.wait(lambda s: s.replicas >= 1, polling + slack)
            if activated is None:
                first.join(timeout=cold_start_budget / cluster.time_scale)
                return result.fail(
                    "activation",
                    f"a request through the interceptor (Host {host}) did not take the target off zero within "
                    f"pollingInterval + slack ({polling + slack:g} s)\n{_evidence(cluster, scaler)}",
                )
            result.phases.append(
                Phase("activation", True, round(activated.t - sent_at, 3), "0 → 1 after the first request")
            )
            ready = recorder.wait(lambda s: s.ready_replicas >= 1, cold_start_budget)
            if ready is None:
                return result.fail(
                    "pod-ready",
                    f"no replica became Ready within {cold_start_budget:g} s\n{_evidence(cluster, scaler)}",
                )
            result.phases.append(Phase("pod-ready", True, round(ready.t - sent_at, 3), "first replica Ready"))
            first.join(timeout=cold_start_budget / cluster.time_scale + 5)
            first_client.close()
            result.first_request = holder.get("r")

            result.expected_peak = min(scaler.max_replicas, math.ceil(concurrency / target))
            stop = threading.Event()
            load_started = recorder.now()

            last_done = [0.0]
            load = {**body, "max_tokens": 128}

            def worker(client: httpx.Client) -> None:
                try:
                    while not stop.is_set():
                        send(cluster, base_url, host, path, load, cold_start_budget, client)
                        last_done[0] = max(last_done[0], recorder.now())
                finally:
                    client.close()

            workers = [threading.Thread(target=worker, args=(c,), daemon=True) for c in clients]
            for w in workers:
                w.start()
            try:
                out = recorder.wait(
                    lambda s: s.ready_replicas >= (result.expected_peak or 1), 15 * 4 + cold_start_budget
                )
            finally:
                stop.set()
            for w in workers:
                w.join(timeout=60)
            # The demand stopped when the last request ended (the interceptor's count fell to zero).
            stopped = last_done[0] or recorder.now()
            result.demand_stopped = stopped
            if out is None:
                last = recorder.latest()
                result.phases.append(
                    Phase(
                        "scale-out",
                        False,
                        None,
                        f"{concurrency} concurrent requests against a target of {target} per replica should give "
                        f"ceil({concurrency}/{target}) = {result.expected_peak} replicas (max {scaler.max_replicas}); "
                        f"saw {last.replicas if last else '?'} (HPA desired {last.hpa_desired if last else '?'})",
                    )
                )
                return result
            else:
                result.phases.append(
                    Phase(
                        "scale-out", True, round(out.t - load_started, 3), f"1 → {out.ready_replicas} ready"
                    )
                )

            _scale_in(cluster, scaler, recorder, result, stopped, slack)
            return result
        finally:
            result.samples = list(recorder.samples)


# ---- demand through a Service Bus queue ---------------------------------------------------------------------
class QueueLoad(Protocol):
    """Messages on the trigger's queue (the fixture's, with the unchanged `azure-servicebus` SDK): `send(n)`
    puts n more on it, `drain()` removes what was sent and returns how many are still out."""

    sent: int
    drained_at: float | None
    """`time.monotonic()` when the last message was removed."""

    def open(self) -> None: ...

    def send(self, count: int) -> None: ...

    def drain(self) -> int: ...


def queue_trigger(scaler: Scaler) -> Trigger | None:
    return next((t for t in scaler.triggers if t.type == "azure-servicebus"), None)


def run_queue_lifecycle(
    cluster: Cluster, scaler: Scaler, demand: QueueLoad, *, slack: float, cold_start_budget: float
) -> Lifecycle:
    """Idle at zero → `activationMessageCount + 1` messages activate the scaler (0 → 1) → a replica Ready →
    messages up to `messageCount` × N scale out to N as the HPA formula predicts → the suite drains its messages →
    no scale-in before the cooldown → zero within cooldown + pollingInterval + slack. Cluster seconds."""
    trigger = queue_trigger(scaler)
    assert trigger is not None
    result = Lifecycle(scaler)
    polling, cooldown = float(scaler.polling_interval), float(scaler.cooldown)
    result.polling, result.cooldown = polling, cooldown
    per_replica = int(trigger.metadata.get("messageCount") or 5)
    activation = int(trigger.metadata.get("activationMessageCount") or 0)
    queue = trigger.metadata.get("queueName", "?")

    with Recorder(cluster, scaler) as recorder:
        try:
            if not _idle_at_zero(cluster, scaler, recorder, result, slack):
                return result
            try:
                # The connection and its claims-based security first: their set-up is not KEDA's to answer for.
                demand.open()
                sent_at = recorder.now()
                result.demand_started = sent_at
                demand.send(activation + 1)
            except Exception as exc:  # the SDK's ServiceBusError: this layer does not import azure
                return result.fail(
                    "activation", f"sending to queue {queue} failed: {type(exc).__name__}: {exc}"
                )
            activated = recorder.wait(lambda s: s.replicas >= 1, polling + slack)
            if activated is None:
                return result.fail(
                    "activation",
                    f"{activation + 1} message(s) on queue {queue} (activationMessageCount {activation}) did not take "
                    f"the target off zero within pollingInterval + slack ({polling + slack:g} s)\n"
                    f"{_evidence(cluster, scaler)}",
                )
            result.phases.append(
                Phase(
                    "activation",
                    True,
                    round(activated.t - sent_at, 3),
                    f"0 → 1 on {activation + 1} message(s)",
                )
            )
            ready = recorder.wait(lambda s: s.ready_replicas >= 1, cold_start_budget)
            if ready is None:
                return result.fail(
                    "pod-ready",
                    f"no replica became Ready within {cold_start_budget:g} s\n{_evidence(cluster, scaler)}",
                )
            result.phases.append(Phase("pod-ready", True, round(ready.t - sent_at, 3), "first replica Ready"))

            peak = min(scaler.max_replicas, 3)
            load_started = recorder.now()
            try:
                demand.send(max(0, per_replica * peak - demand.sent))
            except Exception as exc:  # the SDK's ServiceBusError
                return result.fail(
                    "scale-out", f"sending to queue {queue} failed: {type(exc).__name__}: {exc}"
                )
            # ceil(ActiveMessageCount / messageCount): the queue may hold others' messages too, so at least this.
            result.expected_peak = min(scaler.max_replicas, math.ceil(demand.sent / per_replica))
            out = recorder.wait(
                lambda s: s.ready_replicas >= (result.expected_peak or 1), 15 * 4 + cold_start_budget
            )
            left = demand.drain()
            stopped = recorder.now()
            if demand.drained_at is not None:
                # The queue emptied when the last message was completed, not when the receiver closed.
                stopped -= (time.monotonic() - demand.drained_at) * cluster.time_scale
            result.demand_stopped = stopped
            if left:
                return result.fail(
                    "scale-out",
                    f"{left} of the {demand.sent} messages this run sent to {queue} could not be drained; their time "
                    "to live removes them",
                )
            if out is None:
                last = recorder.latest()
                return result.fail(
                    "scale-out",
                    f"{demand.sent} messages on {queue} against messageCount {per_replica} should give "
                    f"ceil({demand.sent}/{per_replica}) = {result.expected_peak} replicas (max {scaler.max_replicas}); "
                    f"saw {last.replicas if last else '?'} (HPA desired {last.hpa_desired if last else '?'})",
                )
            result.phases.append(
                Phase("scale-out", True, round(out.t - load_started, 3), f"1 → {out.ready_replicas} ready")
            )
            _scale_in(cluster, scaler, recorder, result, stopped, slack)
            return result
        finally:
            result.samples = list(recorder.samples)


# ---- demand on the model's own series (a prometheus trigger) -----------------------------------------------
def prometheus_trigger(scaler: Scaler) -> Trigger | None:
    return next((t for t in scaler.triggers if t.type == "prometheus"), None)


def model_endpoint(cluster: Cluster, scaler: Scaler, objects: Sequence[tuple[str, Obj]]) -> Endpoint:
    """The model's Service (the one selecting the target's pods), through the API server's service proxy, so
    the load spreads over every ready replica as a client's would."""
    workload = _rest.get(cluster._api, _kind_of(scaler), scaler.target_name, scaler.namespace) or {}
    labels = (((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    for _, obj in objects:
        selector = (obj.get("spec") or {}).get("selector") or {}
        if (
            obj.get("kind") == "Service"
            and obj["metadata"].get("namespace") == scaler.namespace
            and selector
            and all(labels.get(k) == v for k, v in selector.items())
        ):
            port = service_port(obj)
            if port is not None:
                return service_proxy_endpoint(
                    cluster, scaler.target_name, scaler.namespace, obj["metadata"]["name"], port
                )
    raise Finding(
        f"{scaler}: no Service selects the pods of {scaler.target_kind} {scaler.namespace}/{scaler.target_name}",
        expected="a Service whose selector matches the target's pod labels, to send the demand to",
        where=f"kubectl get svc -n {scaler.namespace} -o wide",
        fix="Expose the model server with a Service selecting the target's pods",
    )


def run_prometheus_lifecycle(
    cluster: Cluster,
    scaler: Scaler,
    endpoint: Endpoint,
    objects: Sequence[tuple[str, Obj]],
    *,
    slack: float,
    cold_start_budget: float,
) -> Lifecycle:
    """For a `prometheus` trigger on the target's own vLLM series, which cannot wake it from zero: idle at
    minReplicaCount → concurrent chat requests at the model's Service (`endpoint`) make the query's value
    threshold × N → `Active=True` and min → N as `ceil(value / threshold)` predicts → demand stops → no
    scale-in before the HPA's scale-down stabilization window → minReplicaCount within it + polling + slack."""
    trigger = prometheus_trigger(scaler)
    assert trigger is not None and scaler.min_replicas >= 1
    floor = scaler.min_replicas
    result = Lifecycle(scaler)
    so = read_scaled_object(cluster, scaler.namespace, scaler.name)
    hpa = hpa_of(cluster, so) if so is not None else None
    window = ((hpa.spec if hpa else {}).get("behavior") or {}).get("scaleDown") or {}
    result.polling = float(scaler.polling_interval)
    result.cooldown = float(window.get("stabilizationWindowSeconds", 300))
    threshold = max(1, math.ceil(float(trigger.metadata.get("threshold") or 1)))
    query = trigger.metadata.get("query", "?")

    with Recorder(cluster, scaler) as recorder:
        try:
            if not _idle_at_zero(cluster, scaler, recorder, result, slack, floor):
                return result
            peak = min(scaler.max_replicas, floor + 1)
            concurrency = threshold * peak
            result.expected_peak = min(scaler.max_replicas, math.ceil(concurrency / threshold))
            stop = threading.Event()
            last_done = [0.0]
            errors: list[str] = []
            load = {**CHAT_BODY, "model": models_of(cluster, scaler, objects), "max_tokens": 128}

            def worker() -> None:
                with endpoint.http(timeout=120) as client:
                    while not stop.is_set():
                        try:
                            response = client.post("v1/chat/completions", json=load)
                            if response.status_code != 200:
                                errors.append(f"{response.status_code}: {response.text[:200]}")
                        except httpx.HTTPError as exc:
                            errors.append(f"{type(exc).__name__}: {exc}")
                        last_done[0] = max(last_done[0], recorder.now())
                        if len(errors) > concurrency:
                            return

            sent_at = recorder.now()
            result.demand_started = sent_at
            workers = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
            for w in workers:
                w.start()
            try:
                active = recorder.wait(lambda s: s.active == "True", 2 * result.polling + slack)
                if active is None:
                    return result.fail(
                        "activation",
                        f"{concurrency} concurrent requests at {endpoint.base_url} did not make {query} > "
                        f"activationThreshold within two polls + slack ({2 * result.polling + slack:g} s)"
                        + (f"; the requests failed: {errors[-1]}" if errors else "")
                        + f"\n{_evidence(cluster, scaler)}",
                    )
                result.phases.append(
                    Phase(
                        "activation", True, round(active.t - sent_at, 3), "Active=True on the query's value"
                    )
                )
                result.phases.append(
                    Phase("pod-ready", True, None, f"{floor} replica(s) Ready throughout (minReplicaCount)")
                )
                load_started = recorder.now()
                out = recorder.wait(
                    lambda s: s.ready_replicas >= (result.expected_peak or 1),
                    15 * 4 + cold_start_budget,
                )
            finally:
                stop.set()
            for w in workers:
                w.join(timeout=120 / cluster.time_scale + 5)
            stopped = last_done[0] or recorder.now()
            result.demand_stopped = stopped
            if out is None:
                last = recorder.latest()
                return result.fail(
                    "scale-out",
                    f"{concurrency} concurrent requests make {query} ≈ {concurrency} against threshold {threshold}: "
                    f"ceil({concurrency}/{threshold}) = {result.expected_peak} replicas (max {scaler.max_replicas}); "
                    f"saw {last.replicas if last else '?'} (HPA desired {last.hpa_desired if last else '?'})"
                    + (f"; requests failed: {errors[-1]}" if errors else ""),
                )
            result.phases.append(
                Phase(
                    "scale-out", True, round(out.t - load_started, 3), f"{floor} → {out.ready_replicas} ready"
                )
            )
            _scale_in(cluster, scaler, recorder, result, stopped, slack, floor)
            return result
        finally:
            result.samples = list(recorder.samples)


def _idle_at_zero(
    cluster: Cluster, scaler: Scaler, recorder: Recorder, result: Lifecycle, slack: float, floor: int = 0
) -> bool:
    """With no demand the target reaches `floor` (0, or minReplicaCount for a scaler that keeps replicas) and
    stays there for two polls; False (with the failed phase) if not."""
    polling, cooldown = result.polling, result.cooldown
    idle_budget = cooldown + polling + slack
    start = recorder.now()
    at_zero = recorder.wait(lambda s: s.replicas == floor and s.ready_replicas == floor, idle_budget)
    if at_zero is None:
        last = recorder.latest()
        result.phases.append(
            Phase(
                "idle-at-zero",
                False,
                None,
                f"{scaler.target_kind} {scaler.namespace}/{scaler.target_name} did not reach {floor} replicas "
                f"within cooldown + pollingInterval + slack ({idle_budget:g} s) with no demand; last seen "
                f"replicas={last.replicas if last else '?'}. KEDA holds minReplicaCount "
                f"{_so_min(cluster, scaler)} on it\n{_evidence(cluster, scaler)}",
            )
        )
        return False
    settled = recorder.now()
    woke = recorder.wait(lambda s: s.replicas > floor, 2 * polling)
    if woke is not None:
        result.phases.append(
            Phase(
                "idle-at-zero",
                False,
                None,
                f"the target was scaled to {woke.replicas} with no demand within 2 polls",
            )
        )
        return False
    result.phases.append(
        Phase("idle-at-zero", True, round(settled - start, 3), f"{floor} replicas and stable for 2 polls")
    )
    return True


def _scale_in(
    cluster: Cluster,
    scaler: Scaler,
    recorder: Recorder,
    result: Lifecycle,
    stopped: float,
    slack: float,
    floor: int = 0,
) -> None:
    """After the demand stopped at `stopped`: no scale-in before the cooldown (`result.cooldown`: KEDA's
    cooldownPeriod to zero, the HPA's scale-down window to a `floor` above zero), and `floor` within it +
    pollingInterval + slack."""
    polling, cooldown = result.polling, result.cooldown
    if floor == 0:
        result.nap_nodes = _nap_nodes_of(cluster, scaler)
    zero = recorder.wait(lambda s: s.replicas <= floor, stopped + cooldown + polling + slack - recorder.now())
    # KEDA's lastActiveTime is the last poll that saw demand, at most one poll before it stopped; half the
    # slack absorbs the harness's own timing (a scale-in on the first idle polls still falls before it).
    earliest = stopped + cooldown - polling - slack / 2
    if zero is None:
        last = recorder.latest()
        result.phases.append(
            Phase(
                "scale-to-zero",
                False,
                None,
                f"still {last.replicas if last else '?'} replica(s), not {floor}, {cooldown + polling + slack:g} s "
                f"after the demand stopped (cooldown {cooldown:g} + polling {polling:g} + slack {slack:g}); "
                f"ScaledObject Active={last.active if last else '?'}\n{_evidence(cluster, scaler)}",
            )
        )
        result.phases.append(Phase("no-early-scale-in", True, None, "did not reach zero early"))
    else:
        early = zero.t < earliest
        result.phases.append(
            Phase(
                "no-early-scale-in",
                not early,
                round(zero.t - stopped, 3),
                (
                    f"reached {floor} replica(s) {zero.t - stopped:.0f} s after the demand stopped, before the "
                    f"cooldown ({cooldown:g} s, less one poll): a replica may be killed mid-generation"
                )
                if early
                else f"{floor} after {zero.t - stopped:.0f} s ≥ cooldown − one poll",
            )
        )
        result.phases.append(
            Phase("scale-to-zero", True, round(zero.t - stopped, 3), f"N → {floor} after the cooldown")
        )
        _gpu_nodes_go(cluster, result, zero.t, recorder)


def _nap_nodes_of(cluster: Cluster, scaler: Scaler) -> dict[str, str]:
    """The GPU nodes with a NodePool label (NAP's) that run the target's pods now → their NodeClaims."""
    kind = _kind_of(scaler)
    workload = _rest.get(cluster._api, kind, scaler.target_name, scaler.namespace) or {}
    selector = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not selector:
        return {}
    label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
    nodes: dict[str, str] = {}
    for pod in _rest.items(cluster._api, _rest.PODS, scaler.namespace, label_selector=label_selector):
        name = (pod.get("spec") or {}).get("nodeName")
        node = _rest.get(cluster._api, _rest.NODES, name) if name else None
        labels = ((node or {}).get("metadata") or {}).get("labels") or {}
        gpus = int(((node or {}).get("status") or {}).get("allocatable", {}).get("nvidia.com/gpu", 0) or 0)
        if node is None or not gpus or LABEL_NODEPOOL not in labels:
            continue
        claim = next(
            (
                c["metadata"]["name"]
                for c in _rest.items(cluster._api, _rest.NODECLAIMS)
                if (c.get("status") or {}).get("nodeName") == name
            ),
            "",
        )
        nodes[str(name)] = claim
    return nodes


def _gpu_nodes_go(cluster: Cluster, result: Lifecycle, zero_at: float, recorder: Recorder) -> None:
    """Where NAP served the target: after the scale to zero, its GPU nodes and their NodeClaims are gone within
    the NodePool's consolidateAfter + Karpenter's slack (phase `gpu-node-gone`, measured from the zero)."""
    if not result.nap_nodes:
        return
    started = time.monotonic()
    scale = cluster.time_scale
    for node, claim in result.nap_nodes.items():
        obj = _rest.get(cluster._api, _rest.NODES, node)
        pool_name = (((obj or {}).get("metadata") or {}).get("labels") or {}).get(LABEL_NODEPOOL, "")
        pool = read_nodepool(cluster, pool_name) if pool_name else None
        after = duration_seconds(pool.consolidate_after) if pool is not None else None
        if obj is not None and after is None:
            result.phases.append(
                Phase(
                    "gpu-node-gone",
                    False,
                    None,
                    f"GPU node {node} (NodePool {pool_name or '?'}) stays after the scale to zero: consolidateAfter "
                    f"is {pool.consolidate_after if pool else 'unknown'}, so Karpenter never removes it. Fix: set "
                    "spec.disruption.consolidateAfter on the NodePool",
                )
            )
            return
        budget = (after or 0.0) + DISRUPTION_SLACK_S
        left = budget - (recorder.now() - zero_at)
        for kind, name in ((_rest.NODES, node), (_rest.NODECLAIMS, claim)):
            if not name:
                continue
            try:
                wait_for(
                    cluster,
                    kind,
                    name,
                    None,
                    until=lambda o: o is None,
                    expected=f"gone within consolidateAfter + {DISRUPTION_SLACK_S:g} s after the scale to zero",
                    timeout=max(left, 1.0),
                )
            except WaitFailed:
                still = _rest.get(cluster._api, kind, name) or {}
                conditions = ", ".join(
                    f"{c.get('type')}={c.get('status')}"
                    for c in (still.get("status") or {}).get("conditions") or []
                )
                result.phases.append(
                    Phase(
                        "gpu-node-gone",
                        False,
                        None,
                        f"{kind.kind} {name} (NodePool {pool_name}) is still there {budget:g} s after the target reached "
                        f"zero (consolidateAfter {after:g} s + Karpenter's slack {DISRUPTION_SLACK_S:g} s)"
                        + (f"; conditions {conditions}" if conditions else "")
                        + f"\n{chr(10).join(recent_events(cluster, name, None, limit=4))}",
                    )
                )
                return
            left = budget - (recorder.now() - zero_at)
    waited = (time.monotonic() - started) * scale
    result.phases.append(
        Phase(
            "gpu-node-gone",
            True,
            round(recorder.now() - zero_at, 3),
            f"{len(result.nap_nodes)} NAP GPU node(s) and NodeClaim(s) gone {waited:.0f} s after the scale to zero",
        )
    )


def _so_min(cluster: Cluster, scaler: Scaler) -> str:
    so = read_scaled_object(cluster, scaler.namespace, scaler.name)
    return str(so.spec.min_replica_count) if so else "?"
