"""The states of a KAITO Workspace that will not heal by themselves, read from the objects that show them.

The readiness wait aborts on each of these as soon as it sees it (a few need a short grace, written next to
them), with the reason KAITO, the scheduler, the kubelet or Karpenter gives and the fix; every reason string
matched here is listed in docs/reference/suites/kaito.md. Functions here are pure: they read objects (dicts
as the API server sends them), so the wait evaluates them on its informers' caches without API calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_aksai.sizing import UnknownEntryError, gpu_sku

GPU_RESOURCE = "nvidia.com/gpu"

KAITO_TERMINAL_REASONS: dict[str, str] = {
    # KAITO's InferenceReady / ResourceReady / WorkspaceSucceeded reasons that do not heal by themselves
    "InvalidInferenceConfig": "Fix the inference ConfigMap the Workspace names (inference.config)",
    "InvalidInstanceType": "Set resource.instanceType to a GPU VM size KAITO supports",
    "ImagePullError": "Fix the image reference or the registry access (imagePullSecrets, AcrPull)",
    "ContainerCrashLoopBackOff": "Read the model pod's previous log (kubectl logs --previous) for why it exits",
    "ContainerOOMKilled": "Choose a larger resource.instanceType or a smaller model",
    "ContainerStartError": "Read the model pod's events (kubectl describe pod) for why the container cannot start",
    "PodEvicted": "Read the eviction message; free the node's memory or disk, or choose a larger instanceType",
    "BenchmarkFailed": "Read the benchmark's log, or annotate the Workspace kaito.sh/disable-benchmark=true",
    "workspaceFailed": "Read the Workspace's conditions and events (kubectl describe workspace)",
}
IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CREATE_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
UNSCHEDULABLE_GRACE_S = 10.0
"""Cluster seconds a model pod stays unschedulable, with no node on its way, before the wait gives up."""
GPU_PLUGIN_GRACE_S = 90.0
"""Cluster seconds a Ready GPU node may advertise no `nvidia.com/gpu`: the device plugin's DaemonSet pod has to
be scheduled, pulled and registered first (tens of seconds on AKS; the sim's Karpenter takes 20 s)."""
NODECLAIM_PENDING_REASONS = frozenset({"", "AwaitingReconciliation"})


@dataclass(frozen=True)
class Terminal:
    """A state that will not heal by itself: what it is, where to look, and the fix."""

    state: str
    """The state's name in docs/reference/suites/kaito.md (`image-pull`, `crash-loop`, ...)."""
    what: str
    where: str
    fix: str
    details: tuple[str, ...] = ()


def _conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((obj.get("status") or {}).get("conditions") or [])


def _condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in _conditions(obj) if c.get("type") == type_), None)


def workspace_terminal(ws: Mapping[str, Any]) -> Terminal | None:
    """A terminal reason KAITO itself reports on the Workspace's conditions."""
    meta = ws.get("metadata") or {}
    for cond in _conditions(ws):
        reason = str(cond.get("reason") or "")
        if cond.get("status") == "False" and reason in KAITO_TERMINAL_REASONS:
            message = str(cond.get("message") or "")
            return Terminal(
                "kaito-reason",
                f"KAITO reports {cond.get('type')}=False, reason {reason}"
                + (f": {message}" if message else ""),
                f"kubectl describe workspace {meta.get('name')} -n {meta.get('namespace')}",
                KAITO_TERMINAL_REASONS[reason],
            )
    return None


PreviousLog = Callable[[str, str], str]
"""(pod name, container name) → the tail of the previous (crashed) container's log, or ""."""

_ARGPARSE_ERROR = re.compile(r"error: (unrecognized arguments: .*|argument [^\n]*)")


def pod_terminal(
    pod: Mapping[str, Any], previous_log: PreviousLog, *, config_ref: str = ""
) -> Terminal | None:
    """A model pod that cannot become Ready: image pull, container config, OOM, crash loop, eviction."""
    meta = pod.get("metadata") or {}
    name, namespace = str(meta.get("name")), str(meta.get("namespace"))
    describe = f"kubectl describe pod {name} -n {namespace}"
    status = pod.get("status") or {}
    if status.get("phase") == "Failed" and status.get("reason") == "Evicted":
        return Terminal(
            "evicted",
            f"model pod {namespace}/{name} was evicted: {status.get('message', '')}".rstrip(": "),
            describe,
            KAITO_TERMINAL_REASONS["PodEvicted"],
        )
    for cs in status.get("containerStatuses") or []:
        container = str(cs.get("name"))
        where = f"pod {namespace}/{name} container {container}"
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        message = str(waiting.get("message") or "")
        if reason in IMAGE_PULL_REASONS:
            return Terminal(
                "image-pull",
                f"{where} cannot pull image {cs.get('image')!r}: {reason}"
                + (f": {message}" if message else ""),
                describe + " (its Failed events carry the registry's answer)",
                "Fix the image name or tag, or the registry access: the pull secret (imagePullSecrets) or the "
                "kubelet identity's AcrPull role on the registry",
            )
        if reason in CREATE_REASONS:
            return Terminal(
                "container-config",
                f"{where} cannot be created: {reason}" + (f": {message}" if message else ""),
                describe,
                "Create what the pod references (the ConfigMap, Secret or volume the message names)",
            )
        restarts = int(cs.get("restartCount") or 0)
        last = (cs.get("lastState") or {}).get("terminated") or {}
        current = (cs.get("state") or {}).get("terminated") or {}
        for terminated in (current, last):
            if terminated.get("reason") == "OOMKilled":
                return Terminal(
                    "oom-killed",
                    f"{where} was OOMKilled (exit code {terminated.get('exitCode')}) and restarted {restarts} "
                    "time(s): the model does not fit the memory it gets",
                    describe,
                    KAITO_TERMINAL_REASONS["ContainerOOMKilled"],
                )
        if reason == "CrashLoopBackOff":
            log = previous_log(name, container)
            exit_code = last.get("exitCode")
            details = tuple(f"previous log: {line}" for line in log.strip().splitlines()[-5:])
            argparse = _ARGPARSE_ERROR.search(log)
            if argparse is not None:
                fix = (
                    f"vLLM refused its command line ({argparse.group(0)}): fix that engine argument in the "
                    f"inference config{' ' + config_ref if config_ref else ''}; the kaito suite's "
                    "test_inference_config_is_valid names the closest known flag"
                )
            else:
                fix = KAITO_TERMINAL_REASONS["ContainerCrashLoopBackOff"]
            return Terminal(
                "crash-loop",
                f"{where} is crash-looping (CrashLoopBackOff, {restarts} restart(s)); it last exited with code "
                f"{exit_code} ({last.get('reason', 'Error')})",
                f"kubectl logs {name} -n {namespace} -c {container} --previous",
                fix,
                details,
            )
    return None


def unschedulable_message(pod: Mapping[str, Any]) -> str | None:
    """The scheduler's message while the pod is `PodScheduled=False/Unschedulable`."""
    cond = _condition(pod, "PodScheduled")
    if cond is not None and cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
        return str(cond.get("message") or "")
    return None


_SCHEDULER_CAUSES: tuple[tuple[str, str, str], ...] = (
    # (substring of the kube-scheduler message, the cause, the fix)
    (
        f"Insufficient {GPU_RESOURCE}",
        "no node has a free GPU",
        "Add GPU capacity of the Workspace's instanceType (a NodeClaim or NodePool that can launch it), or "
        "free the GPUs other pods hold",
    ),
    (
        "untolerated taint",
        "the nodes carry taints the model pod does not tolerate",
        "Remove the taint from the GPU nodes, or use nodes with KAITO's taint sku=gpu:NoSchedule only",
    ),
    (
        "didn't match Pod's node affinity/selector",
        "no node carries the labels the pod requires (the Workspace's labelSelector)",
        "Label the GPU nodes with the Workspace's resource.labelSelector, or fix the labelSelector",
    ),
    (
        "were unschedulable",
        "the nodes are cordoned",
        "Uncordon the GPU nodes (kubectl uncordon)",
    ),
    (
        "Insufficient cpu",
        "no node has the CPU the pod requests",
        "Choose a larger instanceType or lower the pod's CPU request",
    ),
    (
        "Insufficient memory",
        "no node has the memory the pod requests",
        "Choose a larger instanceType or lower the pod's memory request",
    ),
)


def unschedulable_terminal(pod: Mapping[str, Any], message: str, seconds: float) -> Terminal:
    meta = pod.get("metadata") or {}
    causes = [(cause, fix) for needle, cause, fix in _SCHEDULER_CAUSES if needle in message]
    cause = "; ".join(c for c, _ in causes) or "the scheduler found no node that fits"
    fix = (
        " ".join(f for _, f in causes[:2]) or "Read the scheduler's message and give the pod a node that fits"
    )
    return Terminal(
        "unschedulable",
        f"model pod {meta.get('namespace')}/{meta.get('name')} has been unschedulable for {seconds:.0f} cluster "
        f"seconds with no node on its way: {cause}. The scheduler says: {message}",
        f"kubectl describe pod {meta.get('name')} -n {meta.get('namespace')} (FailedScheduling events)",
        fix,
    )


def quota_terminal(workload: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> Terminal | None:
    """The StatefulSet cannot create its pods: a FailedCreate event (a ResourceQuota, a LimitRange, admission)."""
    meta = workload.get("metadata") or {}
    failed = [e for e in events if e.get("reason") == "FailedCreate"]
    if not failed:
        return None
    message = str(failed[-1].get("message") or "")
    quota = "exceeded quota" in message
    return Terminal(
        "quota" if quota else "pod-create-refused",
        f"StatefulSet {meta.get('namespace')}/{meta.get('name')} cannot create its pods: {message}",
        f"kubectl describe statefulset {meta.get('name')} -n {meta.get('namespace')}"
        + (f"; kubectl describe resourcequota -n {meta.get('namespace')}" if quota else ""),
        "Raise the namespace's ResourceQuota for the GPU request (requests.nvidia.com/gpu) or free quota"
        if quota
        else "Fix what the API server refused (the message names the admission plugin or policy)",
    )


def nodeclaim_in_flight(claim: Mapping[str, Any]) -> bool:
    """A NodeClaim still on its way to a Ready node (not Ready, not failed, not being deleted)."""
    if (claim.get("metadata") or {}).get("deletionTimestamp"):
        return False
    ready = _condition(claim, "Ready")
    return not (ready is not None and ready.get("status") == "True") and nodeclaim_terminal(claim) is None


def nodeclaim_terminal(claim: Mapping[str, Any]) -> Terminal | None:
    """Karpenter could not launch the NodeClaim: `Launched=False` (or `Unknown`) with a reason such as
    `LaunchFailed` and the cloud provider's message."""
    launched = _condition(claim, "Launched")
    if launched is None or launched.get("status") == "True":
        return None
    reason = str(launched.get("reason") or "")
    if reason in NODECLAIM_PENDING_REASONS:
        return None
    name = (claim.get("metadata") or {}).get("name")
    message = str(launched.get("message") or "")
    capacity = "insufficient capacity" in message.lower() or "quota" in message.lower()
    return Terminal(
        "nodeclaim-launch-failed",
        f"NodeClaim {name} failed to launch: Launched={launched.get('status')}, reason {reason}"
        + (f": {message}" if message else ""),
        f"kubectl describe nodeclaim {name} (and the Karpenter/NAP events)",
        "Request a VM size the region offers and the subscription has quota for (az vm list-usage), or raise "
        "the quota"
        if capacity
        else "Fix what the cloud provider refused (the message says), then delete the NodeClaim so KAITO "
        "creates a new one",
    )


def gpu_count_of(instance_type: str) -> int:
    try:
        return gpu_sku(instance_type).gpu_count
    except UnknownEntryError:
        return 0


def node_ready(node: Mapping[str, Any]) -> bool:
    cond = _condition(node, "Ready")
    return cond is not None and cond.get("status") == "True"


def gpu_node_problem(node: Mapping[str, Any], instance_type: str) -> str | None:
    """What a Ready node of a GPU size lacks for GPU pods: the `nvidia.com/gpu` allocatable (device plugin)."""
    if not node_ready(node) or gpu_count_of(instance_type) <= 0:
        return None
    labels = (node.get("metadata") or {}).get("labels") or {}
    if labels.get("node.kubernetes.io/instance-type", "").lower() != instance_type.lower():
        return None
    allocatable = str(((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE, "0"))
    if allocatable in ("", "0"):
        return f"advertises no allocatable {GPU_RESOURCE} (capacity {((node.get('status') or {}).get('capacity') or {}).get(GPU_RESOURCE, 'none')})"
    return None


def gpu_node_terminal(node: Mapping[str, Any], problem: str, seconds: float) -> Terminal:
    name = (node.get("metadata") or {}).get("name")
    return Terminal(
        "gpu-not-advertised",
        f"GPU node {name} has been Ready for {seconds:.0f} cluster seconds but {problem}: the NVIDIA device "
        "plugin is not running on it (or the GPU driver is missing), so no model pod can be scheduled there",
        f"kubectl describe node {name}; kubectl get pods -A -o wide --field-selector spec.nodeName={name}",
        "Install the NVIDIA device plugin DaemonSet (or the GPU Operator) so that it runs on the GPU nodes "
        "(it must tolerate sku=gpu:NoSchedule); on AKS do not create GPU pools with the GPU driver skipped",
    )
