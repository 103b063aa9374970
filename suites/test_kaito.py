"""KAITO workspace readiness: is each Workspace Ready, and did KAITO build what it should for it?

Each check runs once per Workspace under test (the profile's `workspaces`, or every Workspace found).
See docs/reference/suites/kaito.md for what each check proves and how to fix a failure.
"""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any

import pytest

from pytest_aksai import (
    AksaiWarning,
    CheckReport,
    Cluster,
    Endpoint,
    ModelSpec,
    Settings,
    UnknownEntryError,
    WaitResult,
    Workspace,
    condition,
    expected_served_name,
    gpu_sku,
    inference_config,
    kinds,
    model_spec,
    vllm_engine_args,
)

pytestmark = pytest.mark.kaito


def _model_spec(preset: str | None, strict: bool) -> ModelSpec:
    if preset is None:
        pytest.skip(
            "the Workspace uses a custom inference template, not a preset: nothing to compare against"
        )
    try:
        return model_spec(preset)
    except UnknownEntryError:
        message = (
            f"preset {preset!r} is not in pytest-aksai's model catalog, so its published limits are "
            "unknown; add it to the profile's [sizing] models"
        )
        if strict:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.mark.explains("aksai_workspace", "aksai_ready_workspace")
def test_workspace_is_ready(aksai_ready_workspace: tuple[Workspace, WaitResult]) -> None:
    """ResourceReady, InferenceReady and WorkspaceSucceeded are True, with KAITO's success reasons."""
    workspace, _ = aksai_ready_workspace
    expected_reasons = {
        "ResourceReady": "workspaceResourceStatusSuccess",
        "InferenceReady": "WorkspaceInferenceStatusSuccess",
        "WorkspaceSucceeded": "workspaceSucceeded",
    }
    for type_, reason in expected_reasons.items():
        cond = workspace.status.condition(type_)
        assert cond is not None and cond.status == "True", f"{workspace.ref}: condition {type_} is not True"
        if cond.reason != reason:
            warnings.warn(
                AksaiWarning(
                    f"{workspace.ref}: {type_} is True with reason {cond.reason!r}, not KAITO's {reason!r}: "
                    "an older or patched KAITO?"
                ),
                stacklevel=1,
            )
    if workspace.status.state not in (None, "Ready"):
        warnings.warn(
            AksaiWarning(
                f"{workspace.ref}: all conditions are True but status.state is {workspace.status.state!r}"
            ),
            stacklevel=1,
        )


def _workload(cluster: Cluster, workspace: Workspace) -> dict[str, Any] | None:
    """KAITO runs a preset as a StatefulSet `<ws>` (newer releases, distributed inference) or a Deployment `<ws>`."""
    namespace, name = workspace.metadata.namespace, workspace.metadata.name
    return cluster.get(kinds.STATEFULSETS, name, namespace) or cluster.get(kinds.DEPLOYMENTS, name, namespace)


def test_workload_is_ready(
    aksai_cluster: Cluster, aksai_ready_workspace: tuple[Workspace, WaitResult]
) -> None:
    """KAITO runs the model in a StatefulSet (or, in older releases, a Deployment) named like the Workspace,
    all of whose replicas are ready, with pods labelled `kaito.sh/workspace=<ws>`."""
    workspace, _ = aksai_ready_workspace
    namespace, name = workspace.metadata.namespace, workspace.metadata.name
    workload = _workload(aksai_cluster, workspace)
    assert workload is not None, (
        f"no StatefulSet or Deployment {namespace}/{name}: KAITO runs the model in a workload named like the "
        f"Workspace (kubectl get sts,deploy -n {namespace} -l kaito.sh/workspace={name})"
    )
    kind = workload.get("kind") or ("StatefulSet" if "serviceName" in workload["spec"] else "Deployment")
    wanted = (workload.get("spec") or {}).get("replicas", 1)
    ready = (workload.get("status") or {}).get("readyReplicas", 0)
    assert wanted >= 1 and ready == wanted, f"{kind} {namespace}/{name}: {ready}/{wanted} replicas ready"
    pods = aksai_cluster.items(kinds.PODS, namespace, label_selector=f"kaito.sh/workspace={name}")
    assert pods, f"no pod labelled kaito.sh/workspace={name} in {namespace}"


def test_services_expose_the_model(
    aksai_cluster: Cluster, aksai_ready_workspace: tuple[Workspace, WaitResult]
) -> None:
    """Service `<ws>` maps port `http` 80 to 5000 and has a ready endpoint; `<ws>-headless` exists."""
    workspace, _ = aksai_ready_workspace
    namespace, name = workspace.metadata.namespace, workspace.metadata.name
    service = aksai_cluster.get(kinds.SERVICES, name, namespace)
    assert service is not None, f"no Service {namespace}/{name} for the Workspace"
    ports = {(p.get("name"), p.get("port"), p.get("targetPort")) for p in service["spec"].get("ports", [])}
    assert ("http", 80, 5000) in ports, (
        f"Service {namespace}/{name} ports are {sorted(ports)}, expected http 80→5000"
    )
    if aksai_cluster.get(kinds.STATEFULSETS, name, namespace) is not None:
        assert aksai_cluster.get(kinds.SERVICES, f"{name}-headless", namespace) is not None, (
            f"no headless Service {namespace}/{name}-headless (KAITO creates it for its StatefulSet)"
        )
    # KAITO publishes not-ready addresses, so readiness is read from the pods the Service selects.
    selector = ",".join(f"{k}={v}" for k, v in (service["spec"].get("selector") or {}).items())
    pods = aksai_cluster.items(kinds.PODS, namespace, label_selector=selector) if selector else []
    ready = [p["metadata"]["name"] for p in pods if (condition(p, "Ready") or {}).get("status") == "True"]
    assert ready, (
        f"Service {namespace}/{name} selects {len(pods)} pod(s) ({selector or 'no selector'}), none of them Ready"
    )


def test_served_name_matches_the_preset(
    aksai_settings: Settings,
    aksai_cluster: Cluster,
    aksai_endpoint: Endpoint,
    aksai_ready_workspace: tuple[Workspace, WaitResult],
) -> None:
    """/v1/models serves the preset's model under a name clients can rely on.

    An explicit `served-model-name` in the inference config wins; otherwise KAITO serves the preset under the
    preset's name or (for presets named after their Hugging Face card) the card's last segment, lowercased.
    """
    workspace, _ = aksai_ready_workspace
    _, vllm, _ = inference_config(aksai_cluster, workspace)
    configured = (vllm or {}).get("served-model-name")
    if configured:
        expected = {str(configured)}
    else:
        spec = _model_spec(workspace.preset, aksai_settings.strict)
        expected = {str(workspace.preset).lower(), expected_served_name(spec.hf_id)}
    with aksai_endpoint.http() as http:
        ids = [m["id"] for m in http.get("v1/models").json().get("data", []) if not m.get("parent")]
    assert expected & set(ids), (
        f"{workspace.ref} (preset {workspace.preset}) serves {ids}, expected one of {sorted(expected)}: clients that "
        "ask for the preset's model by name get 404. Check --served-model-name in the inference config"
    )


def test_inference_config_is_valid(
    aksai_settings: Settings, aksai_cluster: Cluster, aksai_workspace: Workspace
) -> None:
    """The inference ConfigMap's `vllm:` map is a command line vLLM accepts, coherent with the model and GPU.

    Every key is a flag of vLLM's server (the engine-argument catalog, with its vLLM version), each value has
    the flag's type, choices and range, and together they fit the model and the GPUs: `max-model-len` within
    the model's context, `dtype` the GPU supports, tensor x pipeline parallelism within the node's GPUs and
    dividing the model's attention heads.
    """
    if not (aksai_workspace.inference and aksai_workspace.inference.config):
        pytest.skip(f"{aksai_workspace.ref} names no inference ConfigMap; KAITO's defaults apply")
    _, vllm, problem = inference_config(aksai_cluster, aksai_workspace)
    assert not problem, f"{aksai_workspace.ref}: {problem}"
    assert vllm is not None
    where = f"ConfigMap {aksai_workspace.metadata.namespace}/{aksai_workspace.inference.config}"
    catalog = vllm_engine_args()
    problems = []
    for found in catalog.check(vllm):
        if found.problem == "unknown":
            hint = f"; did you mean `{found.closest}`?" if found.closest else ""
            problems.append(f"`{found.key}` is not a flag vLLM {catalog.version} knows{hint}")
        else:
            hint = f" (closest: {found.closest!r})" if found.closest else ""
            problems.append(f"`{found.key}`: {found.message}{hint}")
    spec = _model_spec(aksai_workspace.preset, aksai_settings.strict)
    problems += _incoherent(vllm, spec, aksai_workspace)
    assert not problems, (
        f"{aksai_workspace.ref}: vLLM will refuse the inference config of {where} and the model pod will "
        f"crash-loop: {'; '.join(problems)}. Fix the `vllm:` map of its {INFERENCE_CONFIG_KEY} (engine "
        f"arguments of vLLM {catalog.version}, from {catalog.source})"
    )


INFERENCE_CONFIG_KEY = "inference_config.yaml"


def _number(vllm: dict[str, Any], key: str) -> float | None:
    raw = vllm.get(key, vllm.get(key.replace("-", "_")))
    try:
        return float(str(raw)) if raw is not None else None
    except ValueError:
        return None  # the catalog check reports the type


def _incoherent(vllm: dict[str, Any], spec: ModelSpec, workspace: Workspace) -> list[str]:
    """What vLLM's engine refuses for this model on this GPU, though every flag parses."""
    problems = []
    max_model_len = _number(vllm, "max-model-len")
    if max_model_len is not None and max_model_len > spec.max_context:
        problems.append(
            f"max-model-len {max_model_len:.0f} exceeds {spec.hf_id}'s context limit of {spec.max_context} "
            f'tokens (vLLM: "User-specified max_model_len is greater than the derived max_model_len"); lower it '
            f"to at most {spec.max_context}"
        )
    instance_type = workspace.resource.instance_type
    try:
        sku = gpu_sku(instance_type) if instance_type else None
    except UnknownEntryError:
        sku = None
    dtype = str(vllm.get("dtype", "auto"))
    if sku is not None and dtype == "bfloat16" and not sku.bf16:
        problems.append(
            f"dtype bfloat16 on {sku.gpu_model} (compute capability {sku.compute_capability:g}): vLLM refuses "
            "bfloat16 below compute capability 8.0; use dtype float16 (or auto)"
        )
    tensor = _number(vllm, "tensor-parallel-size") or 1
    pipeline = _number(vllm, "pipeline-parallel-size") or 1
    if sku is not None:
        nodes = max(1, workspace.resource.count or 1)
        if tensor > sku.gpu_count or tensor * pipeline > sku.gpu_count * nodes:
            problems.append(
                f"tensor-parallel-size {tensor:.0f} x pipeline-parallel-size {pipeline:.0f} needs "
                f"{tensor * pipeline:.0f} GPUs, but {nodes} node(s) of {sku.name} have {sku.gpu_count} each"
            )
    if tensor > 0 and spec.attention_heads % int(tensor):
        problems.append(
            f"tensor-parallel-size {tensor:.0f} does not divide {spec.hf_id}'s {spec.attention_heads} attention "
            'heads (vLLM: "Total number of attention heads must be divisible by tensor parallel size")'
        )
    return problems


def test_gpu_node_matches_instance_type(
    aksai_cluster: Cluster, aksai_ready_workspace: tuple[Workspace, WaitResult]
) -> None:
    """The model pods run on nodes of the Workspace's `resource.instanceType`."""
    workspace, _ = aksai_ready_workspace
    wanted = workspace.resource.instance_type
    if not wanted:
        pytest.skip(f"{workspace.ref} sets no resource.instanceType")
    namespace, name = workspace.metadata.namespace, workspace.metadata.name
    pods = aksai_cluster.items(kinds.PODS, namespace, label_selector=f"kaito.sh/workspace={name}")
    node_names = sorted({p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName")})
    assert node_names, f"no pod of {workspace.ref} is bound to a node"
    for node_name in node_names:
        node = aksai_cluster.get(kinds.NODES, node_name) or {}
        actual = (node.get("metadata", {}).get("labels") or {}).get("node.kubernetes.io/instance-type", "?")
        assert actual.lower() == wanted.lower(), (
            f"{workspace.ref} runs on node {node_name} of type {actual}, expected {wanted} "
            "(resource.instanceType): KAITO reused a node its labelSelector matched but of another size"
        )


def test_network_policies_admit_the_clients(aksai_network_policy_blocks: list[str]) -> None:
    """The NetworkPolicies that select the model pods admit the client namespaces (the profile's
    `client_namespaces`, else the model's own) on the Service's target port."""
    assert not aksai_network_policy_blocks, (
        f"{'; '.join(aksai_network_policy_blocks)}: applications there cannot reach the model (connections "
        "time out). Add an ingress rule admitting them (a namespaceSelector on kubernetes.io/metadata.name, "
        "port 5000), or name the namespaces your clients really run in with the profile's client_namespaces"
    )


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def test_cold_start_by_phase(
    aksai_report: CheckReport,
    aksai_settings: Settings,
    aksai_ready_workspace: tuple[Workspace, WaitResult],
) -> None:
    """Cold start, from the Workspace's own timestamps: node provisioning, then model load."""
    workspace, _ = aksai_ready_workspace
    created = _time(workspace.metadata.creation_timestamp)
    resource_ready = _time(getattr(workspace.status.condition("ResourceReady"), "last_transition_time", None))
    inference_ready = _time(
        getattr(workspace.status.condition("InferenceReady"), "last_transition_time", None)
    )
    assert created and resource_ready and inference_ready, (
        f"{workspace.ref}: missing timestamps (creationTimestamp, ResourceReady and InferenceReady "
        "lastTransitionTime) — cannot measure cold start"
    )
    provisioning = (resource_ready - created).total_seconds()
    model_load = (inference_ready - resource_ready).total_seconds()
    if provisioning < 0 or model_load < 0:
        pytest.skip(
            f"{workspace.ref}: its conditions moved since it was created (ResourceReady at {resource_ready}, "
            f"InferenceReady at {inference_ready}); cold start can only be read from a fresh Workspace"
        )
    aksai_report.measure("cold_start_node_provisioning_s", provisioning, clock="cluster")
    aksai_report.measure("cold_start_model_load_s", model_load, clock="cluster")
    waterfall = aksai_report.timeline(f"kaito/{workspace.ref}/cold-start", f"{workspace.ref}: cold start")
    waterfall.phase("node provisioning (created → ResourceReady)", 0.0, provisioning)
    waterfall.phase("model load (ResourceReady → InferenceReady)", provisioning, provisioning + model_load)
    budget = aksai_settings.timeout("workspace_ready")
    if provisioning + model_load > budget:
        warnings.warn(
            AksaiWarning(
                f"{workspace.ref}: cold start took {provisioning + model_load:.0f} s (node {provisioning:.0f} s, model "
                f"{model_load:.0f} s), over the workspace_ready budget of {budget:.0f} s"
            ),
            stacklevel=1,
        )
