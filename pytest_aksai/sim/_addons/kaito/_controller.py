"""The simulated KAITO workspace controller (`kaito.sh/v1beta1` Workspace, inference presets).

It follows kaito-project/kaito `pkg/workspace/controllers/workspace_controller.go` on the default
(gpu-provisioner) path: the finalizer, NodeClaims for `resource.instanceType` (annotated
`karpenter.sh/do-not-disrupt`, labelled with the workspace, its namespace and the labelSelector; Ready
nodes that match labelSelector and instanceType without being Karpenter's count towards the target), the
Service `<ws>` (port `http` 80→5000 on pod `<ws>-0`) and the headless Service `<ws>-headless`, then the
StatefulSet `<ws>` running the preset; status is rebuilt on every reconcile as upstream's
`syncWorkspaceStatus` does: `NodesReady`, `NodeClaimReady`, `ResourceReady`, `InferenceReady`,
`WorkspaceSucceeded`, `state` and `workerNodes`, with upstream's reasons and messages.

Where upstream's status only says "Pending", `InferenceReady` names what the pods show (`ContainerOOMKilled`,
`ImagePullError`, `Unschedulable`). The inference ConfigMap is checked as KAITO's admission webhook checks it;
as the sim has no such webhook, a bad config turns into `InferenceReady=False` reason `InvalidInferenceConfig`
with the webhook's message, and no StatefulSet is created.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_aksai.sim._addons.kaito import _presets as presets
from pytest_aksai.sim._addons.karpenter._provisioner import (
    GPU_RESOURCE,
    NODECLAIM_API,
    known_instance_type,
    set_status_condition,
)
from pytest_aksai.sim._core._framework import Controller, Obj, Watch, owner_keys
from pytest_aksai.sizing import UnknownEntryError, gpu_sku

WORKSPACE_API = "kaito.sh/v1beta1"
FINALIZER = "workspace.finalizer.kaito.sh"
LABEL_WORKSPACE = "kaito.sh/workspace"
LABEL_WORKSPACE_NAMESPACE = "kaito.sh/workspacenamespace"
LABEL_NODEPOOL = "karpenter.sh/nodepool"
KAITO_NODEPOOL = "kaito"
NODECLASS_NAME = "image-family-ubuntu"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
REVISION_ANNOTATION = "workspace.kaito.io/revision"
HASH_ANNOTATION = "workspace.kaito.io/hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
STARTUP_TIMEOUT_SECONDS = 30 * 60

_IMAGE_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


# ---- event mapping -------------------------------------------------------------------------------------
def _workspace_of_labels(_self: Any, _event_type: str, obj: Obj) -> list[str]:
    labels = obj["metadata"].get("labels") or {}
    name = labels.get(LABEL_WORKSPACE)
    if not name:
        return []
    namespace = labels.get(LABEL_WORKSPACE_NAMESPACE) or obj["metadata"].get("namespace")
    return [f"{namespace}/{name}"] if namespace else []


def _all_workspaces(self: WorkspaceController, _event_type: str, _obj: Obj) -> list[str]:
    return [
        f"{w['metadata']['namespace']}/{w['metadata']['name']}"
        for w in self.list(WORKSPACE_API, "workspaces")
    ]


def _config_users(self: WorkspaceController, _event_type: str, cm: Obj) -> list[str]:
    namespace = cm["metadata"].get("namespace")
    return [
        f"{namespace}/{w['metadata']['name']}"
        for w in self.list(WORKSPACE_API, "workspaces", namespace)
        if ((w.get("inference") or {}).get("config")) == cm["metadata"]["name"]
    ]


def _owned(kind: str) -> Any:
    return lambda _self, _type, obj: owner_keys(obj, kind)


# ---- pure helpers ----------------------------------------------------------------------------------------
def match_labels(ws: Mapping[str, Any]) -> dict[str, str]:
    selector = (ws.get("resource") or {}).get("labelSelector") or {}
    return {str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()}


def target_node_count(ws: Mapping[str, Any]) -> int:
    count = (ws.get("resource") or {}).get("count")
    return int(count) if isinstance(count, int) and count > 0 else 1


def node_ready(node: Mapping[str, Any]) -> bool:
    if (node.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def nodeclaim_ready(claim: Mapping[str, Any]) -> bool:
    if (claim.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (claim.get("status") or {}).get("conditions") or []
    )


def nodeclaim_manifest(ws: Mapping[str, Any], instance_type: str, disk: str = "1024Gi") -> Obj:
    meta = ws["metadata"]
    digest = hashlib.sha256(f"{meta['namespace']}{meta['name']}{time.time_ns()}".encode()).hexdigest()
    labels = {
        LABEL_NODEPOOL: KAITO_NODEPOOL,
        LABEL_WORKSPACE: meta["name"],
        LABEL_WORKSPACE_NAMESPACE: meta["namespace"],
        **match_labels(ws),
    }
    return {
        "apiVersion": NODECLAIM_API,
        "kind": "NodeClaim",
        "metadata": {"name": "ws" + digest[:9], "labels": labels, "annotations": {DO_NOT_DISRUPT: "true"}},
        "spec": {
            "nodeClassRef": {"group": "karpenter.azure.com", "kind": "AKSNodeClass", "name": NODECLASS_NAME},
            "taints": [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}],
            "requirements": [
                {"key": LABEL_NODEPOOL, "operator": "In", "values": [KAITO_NODEPOOL]},
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [instance_type]},
                {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                {"key": "karpenter.azure.com/sku-name", "operator": "In", "values": [instance_type]},
            ],
            "resources": {"requests": {"ephemeral-storage": disk}},
        },
    }


def _owner_ref(ws: Mapping[str, Any]) -> Obj:
    meta = ws["metadata"]
    return {
        "apiVersion": WORKSPACE_API,
        "kind": "Workspace",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def service_manifest(ws: Mapping[str, Any]) -> Obj:
    name, namespace = ws["metadata"]["name"], ws["metadata"]["namespace"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": [_owner_ref(ws)]},
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_WORKSPACE: name, POD_NAME_LABEL: f"{name}-0"},
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": presets.INFERENCE_PORT},
                {"name": "ray", "protocol": "TCP", "port": 6379, "targetPort": 6379},
                {"name": "dashboard", "protocol": "TCP", "port": 8265, "targetPort": 8265},
            ],
            "publishNotReadyAddresses": True,
        },
    }


def headless_service_manifest(ws: Mapping[str, Any]) -> Obj:
    name, namespace = ws["metadata"]["name"], ws["metadata"]["namespace"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{name}-headless", "namespace": namespace, "ownerReferences": [_owner_ref(ws)]},
        "spec": {
            "selector": {LABEL_WORKSPACE: name},
            "clusterIP": "None",
            "ports": [],
            "publishNotReadyAddresses": True,
        },
    }


def _http_probe(**fields: int) -> Obj:
    return {"httpGet": {"path": "/health", "port": presets.INFERENCE_PORT, "scheme": "HTTP"}, **fields}


def statefulset_manifest(ws: Mapping[str, Any], entry: presets.Preset, gpu_count: int, revision: str) -> Obj:
    name, namespace = ws["metadata"]["name"], ws["metadata"]["namespace"]
    config = (ws.get("inference") or {}).get("config") or ""
    selector = {LABEL_WORKSPACE: name}
    mounts: list[Obj] = []
    volumes: list[Obj] = []
    if config:
        mounts.append({"name": "config-volume", "mountPath": presets.CONFIG_MOUNT_PATH})
        volumes.append({"name": "config-volume", "configMap": {"name": config}})
    mounts += [
        {"name": "model-weights-volume", "mountPath": "/workspace/weights"},
        {"name": "dshm", "mountPath": "/dev/shm"},
    ]
    volumes += [
        {"name": "model-weights-volume", "emptyDir": {}},
        {"name": "dshm", "emptyDir": {"medium": "Memory"}},
    ]
    gpus = str(gpu_count)
    container: Obj = {
        "name": name,
        "image": presets.KAITO_BASE_IMAGE,
        "command": presets.inference_command(entry, gpu_count, with_config=bool(config)),
        "ports": [{"name": "http", "containerPort": presets.INFERENCE_PORT, "protocol": "TCP"}],
        "resources": {"requests": {GPU_RESOURCE: gpus}, "limits": {GPU_RESOURCE: gpus}},
        "env": [
            {"name": "VLLM_USE_FLASHINFER_SAMPLER", "value": "0"},
            {"name": "VLLM_USE_DEEP_GEMM", "value": "0"},
        ],
        "startupProbe": _http_probe(
            initialDelaySeconds=0, periodSeconds=10, failureThreshold=STARTUP_TIMEOUT_SECONDS // 10
        ),
        "livenessProbe": _http_probe(initialDelaySeconds=0, periodSeconds=10, failureThreshold=3),
        "readinessProbe": _http_probe(initialDelaySeconds=30, periodSeconds=10),
        "volumeMounts": mounts,
        "imagePullPolicy": "IfNotPresent",
    }
    pod_spec: Obj = {
        "containers": [container],
        "tolerations": [
            {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
            {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
            {
                "key": "kubernetes.azure.com/scalesetpriority",
                "operator": "Equal",
                "value": "spot",
                "effect": "NoSchedule",
            },
        ],
        "volumes": volumes,
    }
    requirements = [{"key": k, "operator": "In", "values": [v]} for k, v in sorted(match_labels(ws).items())]
    if requirements:
        pod_spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": requirements}]
                }
            }
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {REVISION_ANNOTATION: revision},
            "ownerReferences": [_owner_ref(ws)],
        },
        "spec": {
            "replicas": 1,
            "podManagementPolicy": "Parallel",
            "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Retain", "whenDeleted": "Delete"},
            "selector": {"matchLabels": dict(selector)},
            "serviceName": f"{name}-headless",
            "template": {"metadata": {"labels": dict(selector)}, "spec": pod_spec},
        },
    }


def diagnose_pods(pods: Iterable[Mapping[str, Any]]) -> tuple[str, str] | None:
    """What keeps the inference pods from being ready, as (reason, message), or None when nothing is wrong."""
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for cs in status.get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
                "terminated"
            )
            if terminated and (terminated.get("reason") == "OOMKilled" or terminated.get("exitCode") == 137):
                return (
                    "ContainerOOMKilled",
                    f"container {cs.get('name')} of pod {pod_name} was OOMKilled (exit code "
                    f"{terminated.get('exitCode')}) while loading the model; restarts: {cs.get('restartCount', 0)}. "
                    "The model does not fit the node's memory: choose a larger instanceType or a smaller model.",
                )
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _IMAGE_PULL_REASONS:
                return (
                    "ImagePullError",
                    f"container {cs.get('name')} of pod {pod_name} cannot pull its image: {waiting.get('reason')}"
                    + (f": {waiting['message']}" if waiting.get("message") else ""),
                )
        for cond in status.get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
            ):
                return "Unschedulable", f"pod {pod_name} is unschedulable: {cond.get('message', '')}"
    return None


# ---- the controller --------------------------------------------------------------------------------------
class WorkspaceController(Controller):
    name = "kaito-workspace"
    watches = (
        Watch(WORKSPACE_API, "workspaces"),
        Watch(NODECLAIM_API, "nodeclaims", _workspace_of_labels),
        Watch("v1", "nodes", _all_workspaces),
        Watch("apps/v1", "statefulsets", _owned("Workspace")),
        Watch("v1", "services", _owned("Workspace")),
        Watch("v1", "pods", _workspace_of_labels),
        Watch("v1", "configmaps", _config_users),
    )

    async def reconcile(self, key: str) -> float | None:
        ws = self.get(WORKSPACE_API, "workspaces", key)
        if ws is None:
            return None
        rt = self.rt(WORKSPACE_API, "workspaces")
        if ws["metadata"].get("deletionTimestamp"):
            return self._delete(ws)
        if FINALIZER not in (ws["metadata"].get("finalizers") or []):
            ws["metadata"].setdefault("finalizers", []).append(FINALIZER)
            ws = self.store.update(rt, ws)
        ws = self._sync_revision(ws)
        failure: tuple[str, str] | None = None
        entry: presets.Preset | None = None
        instance_type = str((ws.get("resource") or {}).get("instanceType") or "")
        preset_name = (((ws.get("inference") or {}).get("preset")) or {}).get("name")
        try:
            if not preset_name:
                raise presets.InferenceConfigError(
                    "the simulated KAITO runs preset inference only: set `inference.preset.name`"
                )
            entry = presets.preset(str(preset_name))
            self._check_config(ws, entry)
        except (presets.InferenceConfigError, presets.UnknownPresetError) as exc:
            failure = ("InvalidInferenceConfig", str(exc))
        if instance_type and not known_instance_type(instance_type):
            failure = (
                "InvalidInstanceType",
                f"unsupported instance type {instance_type!r} in `resource.instanceType`; use a GPU SKU of "
                "the sizing catalog, e.g. Standard_NC4as_T4_v3",
            )
        resources_ready, snapshot = self._reconcile_nodes(ws, instance_type, create=failure is None)
        if failure is None and resources_ready and entry is not None:
            self._ensure_services(ws)
            self._ensure_statefulset(ws, entry, instance_type)
        return self._sync_status(key, snapshot, failure)

    # ---- revision ------------------------------------------------------------------------------------
    def _sync_revision(self, ws: Obj) -> Obj:
        spec = json.dumps(
            {"resource": ws.get("resource"), "inference": ws.get("inference"), "tuning": ws.get("tuning")},
            sort_keys=True,
        )
        digest = hashlib.sha256(spec.encode()).hexdigest()
        annotations = ws["metadata"].setdefault("annotations", {})
        if annotations.get(HASH_ANNOTATION) == digest:
            return ws
        previous = annotations.get(REVISION_ANNOTATION)
        annotations[HASH_ANNOTATION] = digest
        annotations[REVISION_ANNOTATION] = str(int(previous) + 1) if previous and previous.isdigit() else "1"
        return self.store.update(self.rt(WORKSPACE_API, "workspaces"), ws)

    # ---- config --------------------------------------------------------------------------------------
    def _check_config(self, ws: Obj, entry: presets.Preset) -> None:
        name = (ws.get("inference") or {}).get("config")
        if not name:
            return
        namespace = ws["metadata"]["namespace"]
        cm = self.get("v1", "configmaps", f"{namespace}/{name}")
        presets.engine_config(presets.parse_inference_config(cm, str(name), namespace), entry)

    # ---- nodes ---------------------------------------------------------------------------------------
    def _reconcile_nodes(self, ws: Obj, instance_type: str, *, create: bool) -> tuple[bool, dict[str, Any]]:
        meta = ws["metadata"]
        target = target_node_count(ws)
        selector = ",".join(f"{k}={v}" for k, v in sorted(match_labels(ws).items())) or None
        nodes = self.list("v1", "nodes", label_selector=selector)
        ready_nodes = [n for n in nodes if node_ready(n)]
        matching = [
            n
            for n in ready_nodes
            if (n["metadata"].get("labels") or {}).get("node.kubernetes.io/instance-type") == instance_type
        ]
        byo = sum(1 for n in ready_nodes if LABEL_NODEPOOL not in (n["metadata"].get("labels") or {}))
        claims = self.list(
            NODECLAIM_API,
            "nodeclaims",
            label_selector=f"{LABEL_WORKSPACE}={meta['name']},{LABEL_WORKSPACE_NAMESPACE}="
            f"{meta['namespace']}",
        )
        needed = max(0, target - byo)
        if create and instance_type:
            for _ in range(max(0, needed - len(claims))):
                claim = self.store.create(
                    self.rt(NODECLAIM_API, "nodeclaims"), nodeclaim_manifest(ws, instance_type)
                )
                claims.append(claim)
                self.event(
                    ws,
                    "Normal",
                    "NodeClaimCreated",
                    f"Successfully created NodeClaim "
                    f"{claim['metadata']['name']} for workspace {meta['namespace']}/{meta['name']}",
                    "kaito-workspace",
                )
        ready_claims = sum(1 for c in claims if nodeclaim_ready(c))
        nodes_ok = len(matching) >= target
        claims_ok = ready_claims >= needed
        snapshot = {
            "workerNodes": sorted(n["metadata"]["name"] for n in nodes),
            "nodes_ok": nodes_ok,
            "claims_ok": claims_ok,
            "target": target,
            "needed": needed,
            "ready_claims": ready_claims,
        }
        return nodes_ok and claims_ok, snapshot

    # ---- workloads -----------------------------------------------------------------------------------
    def _ensure_services(self, ws: Obj) -> None:
        rt = self.rt("v1", "services")
        namespace = ws["metadata"]["namespace"]
        for manifest in (service_manifest(ws), headless_service_manifest(ws)):
            if self.get("v1", "services", f"{namespace}/{manifest['metadata']['name']}") is None:
                self.store.create(rt, manifest)

    def _ensure_statefulset(self, ws: Obj, entry: presets.Preset, instance_type: str) -> None:
        namespace, name = ws["metadata"]["namespace"], ws["metadata"]["name"]
        revision = ws["metadata"]["annotations"][REVISION_ANNOTATION]
        existing = self.get("apps/v1", "statefulsets", f"{namespace}/{name}")
        try:
            gpu_count = gpu_sku(instance_type).gpu_count
        except UnknownEntryError:
            gpu_count = 1
        desired = statefulset_manifest(ws, entry, gpu_count, revision)
        if existing is None:
            self.store.create(self.rt("apps/v1", "statefulsets"), desired)
            return
        if (existing["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
            return
        # As upstream: only env, volume mounts, init containers and volumes follow a revision change.
        spec = existing["spec"]["template"]["spec"]
        new_spec = desired["spec"]["template"]["spec"]
        spec["containers"][0]["env"] = new_spec["containers"][0]["env"]
        spec["containers"][0]["volumeMounts"] = new_spec["containers"][0]["volumeMounts"]
        spec["volumes"] = new_spec["volumes"]
        spec.pop("initContainers", None)
        existing["metadata"].setdefault("annotations", {})[REVISION_ANNOTATION] = revision
        self.store.update(self.rt("apps/v1", "statefulsets"), existing)

    # ---- deletion ------------------------------------------------------------------------------------
    def _delete(self, ws: Obj) -> float | None:
        meta = ws["metadata"]
        rt = self.rt(WORKSPACE_API, "workspaces")
        fresh = self.store.get(rt, meta["name"], meta["namespace"])
        conditions: list[Obj] = fresh.setdefault("status", {}).setdefault("conditions", [])
        before = [dict(c) for c in conditions]
        set_status_condition(
            conditions,
            "WorkspaceDeleting",
            "True",
            "workspaceDeleted",
            "workspace is being deleted",
            int(meta.get("generation") or 1),
            self.clock.timestamp(),
        )
        if conditions != before:
            self.store.update_status(rt, fresh)
        claims = self.list(
            NODECLAIM_API,
            "nodeclaims",
            label_selector=f"{LABEL_WORKSPACE}={meta['name']},{LABEL_WORKSPACE_NAMESPACE}="
            f"{meta['namespace']}",
        )
        for claim in claims:
            if not claim["metadata"].get("deletionTimestamp"):
                self.store.delete(self.rt(NODECLAIM_API, "nodeclaims"), claim["metadata"]["name"])
        if claims:
            return 2.0
        fresh = self.store.get(rt, meta["name"], meta["namespace"])
        fresh["metadata"]["finalizers"] = [
            f for f in fresh["metadata"].get("finalizers") or [] if f != FINALIZER
        ]
        self.store.update(rt, fresh)
        return None

    # ---- status --------------------------------------------------------------------------------------
    def _sync_status(
        self, key: str, snap: Mapping[str, Any], failure: tuple[str, str] | None
    ) -> float | None:
        ws = self.get(WORKSPACE_API, "workspaces", key)
        if ws is None:
            return None
        meta = ws["metadata"]
        generation = int(meta.get("generation") or 1)
        now = self.clock.timestamp()
        status = ws.setdefault("status", {})
        before = repr(status)
        conditions: list[Obj] = status.setdefault("conditions", [])

        def cond(type_: str, ok: bool, reason: str, message: str) -> None:
            set_status_condition(
                conditions, type_, "True" if ok else "False", reason, message, generation, now
            )

        status["workerNodes"] = list(snap["workerNodes"])
        status["targetNodeCount"] = snap["target"]
        nodes_ok, claims_ok = bool(snap["nodes_ok"]), bool(snap["claims_ok"])
        cond(
            "NodesReady",
            nodes_ok,
            "NodesReady" if nodes_ok else "NodeNotReady",
            "Enough Nodes are ready" if nodes_ok else "Not enough Nodes are ready",
        )
        cond(
            "NodeClaimReady",
            claims_ok,
            "NodeClaimsReady" if claims_ok else "NodeClaimNotReady",
            "Enough NodeClaims are ready" if claims_ok else "Ready NodeClaims are not enough",
        )
        if nodes_ok and claims_ok:
            cond("ResourceReady", True, "workspaceResourceStatusSuccess", "workspace resource is ready")
        elif not claims_ok:
            cond("ResourceReady", False, "NodeClaimNotReady", "Ready NodeClaims are not enough")
        else:
            cond("ResourceReady", False, "NodeNotReady", "Not enough Nodes are ready")

        ss = self.get("apps/v1", "statefulsets", key)
        replicas = int(((ss or {}).get("spec") or {}).get("replicas", 1) or 0)
        inference_ready = (
            ss is not None and int((ss.get("status") or {}).get("readyReplicas") or 0) == replicas
        )
        established = status.get("state") in ("Ready", "NotReady")
        requeue: float | None = None
        if failure is not None:
            cond("InferenceReady", False, failure[0], failure[1])
            cond("WorkspaceSucceeded", False, "workspaceFailed", failure[1])
            status["state"] = "Failed"
        elif inference_ready and nodes_ok and claims_ok:
            cond(
                "InferenceReady",
                True,
                "WorkspaceInferenceStatusSuccess",
                "Inference has been deployed successfully",
            )
            cond("WorkspaceSucceeded", True, "workspaceSucceeded", "workspace succeeds")
            status["state"] = "Ready"
        else:
            pods = self.list(
                "v1", "pods", meta["namespace"], label_selector=f"{LABEL_WORKSPACE}={meta['name']}"
            )
            problem = diagnose_pods(pods) if ss is not None else None
            if problem is not None:
                cond("InferenceReady", False, problem[0], problem[1])
            else:
                cond(
                    "InferenceReady",
                    False,
                    "WorkspaceInferenceStatusPending",
                    "Inference workload is not ready",
                )
            cond(
                "WorkspaceSucceeded",
                False,
                "workspacePending",
                "workspace is waiting for inference workload readiness",
            )
            status["state"] = "NotReady" if established else "Pending"
            if ss is None and nodes_ok and claims_ok:
                requeue = 1.0
        if repr(status) != before:
            self.store.update_status(self.rt(WORKSPACE_API, "workspaces"), ws)
        return requeue
