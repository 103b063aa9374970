"""Typed views of KAITO Workspaces and Karpenter NodeClaims, and where KAITO puts what it creates."""

from __future__ import annotations

from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field

from pytest_aksai._errors import ConnectError, Finding
from pytest_aksai._public import public
from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._evidence import evidence
from pytest_aksai.kube._rest import Obj
from pytest_aksai.kube._wait import WaitResult, wait_for
from pytest_aksai.sizing import served_name_of

INFERENCE_CONFIG_KEY = "inference_config.yaml"
WORKSPACE_LABEL = "kaito.sh/workspace"
READY_CONDITIONS = ("ResourceReady", "InferenceReady", "WorkspaceSucceeded")
TERMINAL_FAILURE_REASONS = frozenset(
    {
        "ContainerOOMKilled",
        "OOMKilled",
        "ImagePullError",
        "ErrImagePull",
        "ImagePullBackOff",
        "CrashLoopBackOff",
    }
)


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
            if cond.status == "False" and cond.reason in TERMINAL_FAILURE_REASONS:
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


_POD_FAILURES = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError"}
)


def pod_failure(cluster: Cluster, namespace: str, workspace: str) -> str | None:
    """What KAITO's own status may not say: a model pod OOMKilled, crash-looping or unable to pull its image."""
    pods = _rest.items(cluster._api, _rest.PODS, namespace, label_selector=f"{WORKSPACE_LABEL}={workspace}")
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            where = f"pod {pod['metadata']['name']} container {status.get('name')}"
            last = (status.get("lastState") or {}).get("terminated") or {}
            if last.get("reason") == "OOMKilled" and status.get("restartCount", 0) >= 1:
                return (
                    f"{where} was OOMKilled (exit {last.get('exitCode')}) and restarted "
                    f"{status['restartCount']} time(s): the model does not fit the memory it gets"
                )
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _POD_FAILURES:
                return f"{where} is waiting: {waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
    return None


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
    """Wait until the Workspace is Ready; fails early on KAITO's terminal reasons or a broken model pod."""
    __tracebackhide__ = True
    namespace, name = split_ref(ref)

    def ready(obj: dict[str, Any] | None) -> bool:
        return obj is not None and Workspace.model_validate(obj).is_ready

    def failed(obj: dict[str, Any]) -> str | None:
        return Workspace.model_validate(obj).failure() or pod_failure(cluster, namespace, name)

    return wait_for(
        cluster,
        _rest.WORKSPACES,
        name,
        namespace,
        until=ready,
        abort_if=failed,
        timeout=timeout,
        expected="Ready (ResourceReady, InferenceReady and WorkspaceSucceeded all True)",
    )
