"""Typed views of KAITO Workspaces and Karpenter NodeClaims, and where KAITO puts what it creates."""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field

from pytest_aksai._errors import ConnectError, Finding
from pytest_aksai._public import public
from pytest_aksai.kube import _rest, _terminal
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._evidence import evidence
from pytest_aksai.kube._informer import Informer
from pytest_aksai.kube._rest import Obj
from pytest_aksai.kube._terminal import Terminal
from pytest_aksai.kube._wait import (
    Observation,
    WaitAborted,
    WaitResult,
    WaitTimeout,
    _explain,
    describe_object,
    events_about,
)
from pytest_aksai.sizing import served_name_of

INFERENCE_CONFIG_KEY = "inference_config.yaml"
WORKSPACE_LABEL = "kaito.sh/workspace"
WORKSPACE_NAMESPACE_LABEL = "kaito.sh/workspacenamespace"
READY_CONDITIONS = ("ResourceReady", "InferenceReady", "WorkspaceSucceeded")


class _View(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


@public
class Condition(_View):
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = Field(default=None, alias="lastTransitionTime")


class Metadata(_View):
    name: str
    namespace: str | None = None
    uid: str | None = None
    creation_timestamp: str | None = Field(default=None, alias="creationTimestamp")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class _Status(_View):
    conditions: list[Condition] = Field(default_factory=list)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


class WorkspaceResource(_View):
    instance_type: str | None = Field(default=None, alias="instanceType")
    count: int | None = None
    label_selector: dict[str, Any] = Field(default_factory=dict, alias="labelSelector")
    preferred_nodes: list[str] = Field(default_factory=list, alias="preferredNodes")


class Preset(_View):
    name: str


class WorkspaceInference(_View):
    preset: Preset | None = None
    config: str | None = None
    template: dict[str, Any] | None = None


class WorkspaceStatus(_Status):
    state: str | None = None
    worker_nodes: list[str] = Field(default_factory=list, alias="workerNodes")


@public
class Workspace(_View):
    """`kaito.sh/v1beta1` Workspace: `resource` and `inference` sit at the top level (there is no `spec`)."""

    metadata: Metadata
    resource: WorkspaceResource = Field(default_factory=WorkspaceResource)
    inference: WorkspaceInference | None = None
    status: WorkspaceStatus = Field(default_factory=WorkspaceStatus)

    @property
    def ref(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"

    @property
    def preset(self) -> str | None:
        return self.inference.preset.name if self.inference and self.inference.preset else None

    @property
    def is_ready(self) -> bool:
        return all(
            (c := self.status.condition(t)) is not None and c.status == "True" for t in READY_CONDITIONS
        )

    def failure(self) -> str | None:
        """A terminal failure KAITO reports (e.g. `InferenceReady=False: ContainerOOMKilled`), if any."""
        for cond in self.status.conditions:
            if cond.status == "False" and cond.reason in _terminal.KAITO_TERMINAL_REASONS:
                return f"{cond.type}=False, reason {cond.reason}: {cond.message}".rstrip(": ")
        return None


class NodeClaimStatus(_Status):
    node_name: str | None = Field(default=None, alias="nodeName")
    provider_id: str | None = Field(default=None, alias="providerID")


@public
class NodeClaim(_View):
    metadata: Metadata
    spec: dict[str, Any] = Field(default_factory=dict)
    status: NodeClaimStatus = Field(default_factory=NodeClaimStatus)


def workspace_refs(cluster: Cluster, namespace: str | None) -> list[str]:
    """`namespace/name` of every Workspace (in one namespace, or all), sorted; a refused listing raises a
    `ConnectError` naming the permission."""
    try:
        found = _rest.items(cluster._api, _rest.WORKSPACES, namespace)
    except ApiException as exc:
        where = f"in namespace {namespace!r}" if namespace else "cluster-wide"
        raise ConnectError(
            f"Listing KAITO Workspaces {where} on cluster {cluster.profile!r} was refused ({exc.status} "
            f"{exc.reason}). Grant the identity list on workspaces.kaito.sh, or name the Workspaces to check in "
            "the profile's workspaces key, or narrow the search with --aksai-namespace.",
            configuration_problem=False,
        ) from None
    return sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in found)


def nothing_found(cluster: Cluster, namespace: str | None) -> Finding:
    """The finding for a search that found no Workspace: where it looked, and where Workspaces are."""
    where = f"namespace {namespace!r}" if namespace else "any namespace"
    elsewhere = workspace_refs(cluster, None) if namespace else []
    observed = "no Workspace"
    fix = (
        "Create the Workspaces (or fix --aksai-namespace / the profile's namespace), or, if this cluster has "
        'no KAITO workloads on purpose, add "kaito" to the profile\'s absent list'
    )
    if elsewhere:
        observed += f"; Workspaces exist elsewhere: {', '.join(elsewhere)}"
        fix = f"Point --aksai-namespace (or the profile's namespace) at {elsewhere[0].split('/')[0]!r}"
    return Finding(
        f"Found no KAITO Workspace to check in {where} of cluster {cluster.profile!r}: a run that checks "
        "nothing is not a pass",
        expected="at least one Workspace (kubectl get workspaces.kaito.sh -A)",
        observed=observed,
        fix=fix,
    )


def workspace_evidence(cluster: Cluster, ref: str) -> str:
    """Events of the Workspace, its workload, pods and NodeClaims, and the pods' log tails."""
    namespace, name = split_ref(ref)
    objects: list[Obj] = []
    workspace = _rest.get(cluster._api, _rest.WORKSPACES, name, namespace)
    if workspace is not None:
        objects.append({"kind": "Workspace", **workspace})
    for kind in (_rest.STATEFULSETS, _rest.DEPLOYMENTS):
        workload = _rest.get(cluster._api, kind, name, namespace)
        if workload is not None:
            objects.append({"kind": kind.kind, **workload})
    if cluster.serves(_rest.NODECLAIMS.group, _rest.NODECLAIMS.version):
        claims = _rest.items(cluster._api, _rest.NODECLAIMS, label_selector=f"{WORKSPACE_LABEL}={name}")
        objects.extend({"kind": "NodeClaim", **claim} for claim in claims)
    pods = _rest.items(cluster._api, _rest.PODS, namespace, label_selector=f"{WORKSPACE_LABEL}={name}")
    return evidence(cluster, objects, [{"kind": "Pod", **pod} for pod in pods])


def split_ref(ref: str) -> tuple[str, str]:
    namespace, sep, name = ref.partition("/")
    if not sep or not namespace or not name:
        raise ValueError(f"expected namespace/name, got {ref!r}")
    return namespace, name


def read_workspace(cluster: Cluster, ref: str) -> Workspace | None:
    namespace, name = split_ref(ref)
    obj = _rest.get(cluster._api, _rest.WORKSPACES, name, namespace)
    return None if obj is None else Workspace.model_validate(obj)


def inference_config(cluster: Cluster, workspace: Workspace) -> tuple[Obj | None, dict[str, Any] | None, str]:
    """(ConfigMap, parsed `vllm:` map, problem): the problem is "" when the config is usable."""
    name = workspace.inference.config if workspace.inference else None
    if not name:
        return (
            None,
            None,
            "the Workspace names no inference ConfigMap (inference.config); KAITO uses its defaults",
        )
    cm = _rest.get(cluster._api, _rest.CONFIGMAPS, name, workspace.metadata.namespace)
    if cm is None:
        return (
            None,
            None,
            f"ConfigMap {workspace.metadata.namespace}/{name} named by inference.config does not exist",
        )
    text = (cm.get("data") or {}).get(INFERENCE_CONFIG_KEY)
    if text is None:
        keys = ", ".join(sorted(cm.get("data") or {})) or "none"
        return cm, None, f"ConfigMap {name} has no key {INFERENCE_CONFIG_KEY!r} (keys: {keys})"
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return cm, None, f"{INFERENCE_CONFIG_KEY} of ConfigMap {name} is not valid YAML: {exc}"
    vllm = parsed.get("vllm") if isinstance(parsed, dict) else None
    if not isinstance(vllm, dict):
        return cm, None, f"{INFERENCE_CONFIG_KEY} of ConfigMap {name} has no `vllm:` map"
    return cm, vllm, ""


expected_served_name = served_name_of


def wait_workspace_ready(cluster: Cluster, ref: str, timeout: float) -> WaitResult:
    """Wait until the Workspace is Ready; abort as soon as it is in a state that will not heal by itself.

    The Workspace, its pods, its NodeClaims and the nodes of its instance type are watched at once, so the
    wait notices a crash loop or a failed launch within seconds even when KAITO's own status lags; the states
    and the reason strings matched are those of `_terminal` (docs/reference/suites/kaito.md).
    """
    __tracebackhide__ = True
    return _WorkspaceWait(cluster, ref).run(timeout)


class _WorkspaceWait:
    def __init__(self, cluster: Cluster, ref: str) -> None:
        self.cluster, self.ref = cluster, ref
        self.namespace, self.name = split_ref(ref)
        self.changed = threading.Event()
        self.first_seen: dict[str, float] = {}
        self._previous_logs: dict[tuple[str, str, int], str] = {}
        self._events_checked_at = -1e9
        self.informers: list[Informer] = []

    def _informer(self, kind: _rest.Kind, namespace: str | None, **selectors: str) -> Informer:
        informer = Informer(self.cluster, kind, namespace, on_change=self.changed.set, **selectors)
        self.informers.append(informer)
        return informer.start()

    def _optional_informer(
        self, kind: _rest.Kind, namespace: str | None, **selectors: str
    ) -> Informer | None:
        """An informer for what the identity may not be allowed to list (nodes, NodeClaims): without it, the
        states it shows are not looked for."""
        try:
            return self._informer(kind, namespace, **selectors)
        except ApiException as exc:
            if exc.status in (401, 403, 404):
                self.informers.pop()
                return None
            raise

    def run(self, timeout: float) -> WaitResult:
        __tracebackhide__ = True
        scale = self.cluster.time_scale
        started = time.monotonic()
        deadline = started + timeout / scale
        timeline: list[Observation] = []
        expected = "Ready (ResourceReady, InferenceReady and WorkspaceSucceeded all True)"
        # Wake at least every few cluster seconds (at most 100 times a wall second) for the graces.
        tick = min(1.0, max(0.01, 2.0 / scale))
        try:
            self.workspaces = self._informer(
                _rest.WORKSPACES, self.namespace, field_selector=f"metadata.name={self.name}"
            )
            self.pods = self._informer(
                _rest.PODS, self.namespace, label_selector=f"{WORKSPACE_LABEL}={self.name}"
            )
            self.claims = (
                self._optional_informer(
                    _rest.NODECLAIMS,
                    None,
                    label_selector=f"{WORKSPACE_LABEL}={self.name},{WORKSPACE_NAMESPACE_LABEL}={self.namespace}",
                )
                if self.cluster.serves(_rest.NODECLAIMS.group, _rest.NODECLAIMS.version)
                else None
            )
            self.nodes = self._optional_informer(_rest.NODES, None)
            while True:
                elapsed = (time.monotonic() - started) * scale
                obj = self.workspaces.get(self.name)
                state = describe_object(obj)
                if not timeline or timeline[-1].state != state:
                    timeline.append(Observation(round(elapsed, 3), "WATCH", state))
                if obj is not None and Workspace.model_validate(obj).is_ready:
                    return WaitResult(obj, elapsed, timeline)
                terminal = self._terminal(obj, elapsed) if obj is not None else None
                if terminal is not None:
                    parts = _explain(
                        self.cluster,
                        _rest.WORKSPACES,
                        self.name,
                        self.namespace,
                        expected,
                        obj,
                        timeline,
                        headline=f"Workspace {self.ref} will not become Ready: {terminal.what}",
                    )
                    parts.update(where=terminal.where, fix=terminal.fix)
                    parts["details"] = [*terminal.details, *parts["details"]]
                    raise WaitAborted(timeline=timeline, **parts)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    headline = (
                        f"Workspace {self.ref} did not become {expected} within {timeout:g} cluster seconds"
                    )
                    raise WaitTimeout(
                        timeline=timeline,
                        **_explain(
                            self.cluster,
                            _rest.WORKSPACES,
                            self.name,
                            self.namespace,
                            expected,
                            obj,
                            timeline,
                            headline=headline,
                        ),
                    )
                self.changed.wait(min(remaining, tick))
                self.changed.clear()
        finally:
            for informer in self.informers:
                informer.stop()

    def _since(self, key: str, elapsed: float) -> float:
        """Cluster seconds since the wait first saw the problem named `key`."""
        return elapsed - self.first_seen.setdefault(key, elapsed)

    def _previous_log(self, pod: str, container: str, restarts: int = 0) -> str:
        key = (pod, container, restarts)
        if key not in self._previous_logs:
            path = f"/api/v1/namespaces/{self.namespace}/pods/{pod}/log"
            try:
                text = _rest.raw_text(
                    self.cluster._api,
                    path,
                    query={"container": container, "previous": "true", "tailLines": 20},
                )
            except ApiException:
                try:
                    text = _rest.raw_text(
                        self.cluster._api, path, query={"container": container, "tailLines": 20}
                    )
                except ApiException:
                    text = ""
            self._previous_logs[key] = text
        return self._previous_logs[key]

    def _terminal(self, obj: Obj, elapsed: float) -> Terminal | None:
        """The pods' own state names the object and the registry's or the process's words, so it comes first;
        KAITO's reason, when it has one, rides along."""
        kaito = _terminal.workspace_terminal(obj)
        found = self._terminal_below(obj, elapsed)
        if found is not None and kaito is not None:
            reason = kaito.what.removeprefix("KAITO reports ").split(":", 1)[0]
            return dataclasses.replace(found, what=f"{found.what} (KAITO: {reason})")
        return found or kaito

    def _terminal_below(self, obj: Obj, elapsed: float) -> Terminal | None:
        claims = self.claims.items() if self.claims is not None else []
        for claim in claims:
            found = _terminal.nodeclaim_terminal(claim)
            if found is not None:
                return found
        workspace = Workspace.model_validate(obj)
        config_ref = (
            f"ConfigMap {self.namespace}/{workspace.inference.config}"
            if workspace.inference and workspace.inference.config
            else ""
        )
        pods = self.pods.items()
        for pod in pods:
            restarts = sum(
                int(cs.get("restartCount") or 0)
                for cs in (pod.get("status") or {}).get("containerStatuses") or []
            )
            found = _terminal.pod_terminal(
                pod, functools.partial(self._previous_log, restarts=restarts), config_ref=config_ref
            )
            if found is not None:
                return found
        instance_type = workspace.resource.instance_type or ""
        coming = any(_terminal.nodeclaim_in_flight(c) for c in claims) or any(
            not _terminal.node_ready(n)
            and ((n.get("metadata") or {}).get("labels") or {})
            .get("node.kubernetes.io/instance-type", "")
            .lower()
            == instance_type.lower()
            for n in (self.nodes.items() if self.nodes is not None else [])
        )
        for pod in pods:
            message = _terminal.unschedulable_message(pod)
            key = f"unschedulable:{pod['metadata']['name']}"
            if message is None or coming:
                self.first_seen.pop(key, None)
                continue
            seconds = self._since(key, elapsed)
            if seconds >= _terminal.UNSCHEDULABLE_GRACE_S:
                return _terminal.unschedulable_terminal(pod, message, seconds)
        if instance_type and self.nodes is not None:
            for node in self.nodes.items():
                problem = _terminal.gpu_node_problem(node, instance_type)
                key = f"gpu:{node['metadata']['name']}"
                if problem is None:
                    self.first_seen.pop(key, None)
                    continue
                seconds = self._since(key, elapsed)
                if seconds >= _terminal.GPU_PLUGIN_GRACE_S:
                    return _terminal.gpu_node_terminal(node, problem, seconds)
        return self._workload_refused(elapsed)

    def _workload_refused(self, elapsed: float) -> Terminal | None:
        """The StatefulSet exists but has created fewer pods than it wants (a quota or admission refusal)."""
        if len(self.pods.items()) > 0 or elapsed - self._events_checked_at < 5.0:
            return None
        self._events_checked_at = elapsed
        workload = _rest.get(self.cluster._api, _rest.STATEFULSETS, self.name, self.namespace)
        if workload is None or int((workload.get("spec") or {}).get("replicas", 1) or 0) == 0:
            return None
        return _terminal.quota_terminal(
            workload, events_about(self.cluster, self.name, self.namespace, "StatefulSet")
        )
