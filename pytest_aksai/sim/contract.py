"""The wire contract between the simulated cluster and its clients (the plugin, kubectl users).

Every name a client may rely on lives here: the ConfigMaps the sim publishes and their keys, the annotation
that marks pods serving HTTP, the default time scale, and the registry of named faults. This module imports
only the standard library, so validating `--aksai-sim-fault` at configure time loads no server code.
Documented in docs/reference/sim-contract.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SIM_NAMESPACE = "kube-system"
SIM_CONFIGMAP = "aksai-sim"
"""`kube-system/aksai-sim`: what this simulated cluster is; its presence marks a cluster as simulated."""
KEY_TIME_SCALE = "timeScale"
"""Cluster seconds per wall second (a float, e.g. `60.0`)."""
KEY_SCENARIO = "scenario"
"""The scenario the cluster was started with (name or YAML path)."""
KEY_ADDONS = "addons"
"""The add-ons installed, comma-separated (e.g. `core,kaito,vllm,karpenter`)."""
KEY_EPOCH = "epoch"
"""The cluster time at start, RFC 3339 (`2026-01-01T00:00:00Z`)."""

FAULTS_CONFIGMAP = "aksai-sim-faults"
"""`kube-system/aksai-sim-faults`: data maps an active fault's name to its parameter ('' when none).
Editing it toggles faults at run time."""

HTTP_PORT_ANNOTATION = "sim.aksai.dev/http-port"
"""On a pod: the 127.0.0.1 port of the process playing its container ports (used by the service proxy)."""

KUBECONFIG_CONTEXT = "aksai-sim"
"""The context (and cluster) name of the kubeconfig the sim writes."""

DEFAULT_TIME_SCALE = 60.0
"""One cluster minute per wall second: a 10-minute NAP lifecycle takes ten seconds."""


class Fault(StrEnum):
    """The named faults; each breaks exactly one behaviour. The owner add-on is in `FAULTS[...].addon`."""

    NODE_NOT_READY = "node-not-ready"
    IMAGE_PULL_BACKOFF = "image-pull-backoff"
    API_FLAKY = "api-flaky"
    VLLM_NO_METRICS = "vllm-no-metrics"
    VLLM_BUFFERED_STREAM = "vllm-buffered-stream"
    VLLM_WRONG_SERVED_NAME = "vllm-wrong-served-name"
    VLLM_BROKEN_CHAT_TEMPLATE = "vllm-broken-chat-template"
    VLLM_LEGACY_METRICS = "vllm-legacy-metrics"
    KAITO_INFERENCE_OOM = "kaito-inference-oom"
    # --- nap ---
    NAP_SKU_FAMILY_MISMATCH = "nap-sku-family-mismatch"
    NAP_LIMITS_EXHAUSTED = "nap-limits-exhausted"
    NAP_QUOTA_EXCEEDED = "nap-quota-exceeded"
    NAP_GPU_NOT_ADVERTISED = "nap-gpu-not-advertised"
    NAP_NO_CONSOLIDATION = "nap-no-consolidation"
    NAP_PRICIER_SKU = "nap-pricier-sku"


@dataclass(frozen=True)
class FaultSpec:
    name: Fault
    addon: str
    """The add-on whose code consults the fault (`sim-core` for the API server, scheduler and kubelet)."""
    breaks: str
    parameter: str = ""
    """What the optional parameter means; empty when the fault takes none."""


FAULTS: dict[str, FaultSpec] = {
    spec.name.value: spec
    for spec in [
        FaultSpec(
            Fault.NODE_NOT_READY,
            "sim-core",
            "a node stops heartbeating and turns NotReady",
            "node name (default: every node)",
        ),
        FaultSpec(
            Fault.IMAGE_PULL_BACKOFF,
            "sim-core",
            "pods of an image never start (ErrImagePull, ImagePullBackOff)",
            "image (substring)",
        ),
        FaultSpec(
            Fault.API_FLAKY,
            "sim-core",
            "a share of API requests answer 500, 429 or a connection reset",
            "percent (default 20)",
        ),
        FaultSpec(Fault.VLLM_NO_METRICS, "vllm", "the model server answers 404 on /metrics"),
        FaultSpec(Fault.VLLM_BUFFERED_STREAM, "vllm", "streamed responses arrive all at once at the end"),
        FaultSpec(
            Fault.VLLM_WRONG_SERVED_NAME, "vllm", "the model server serves the model under a wrong name"
        ),
        FaultSpec(
            Fault.VLLM_BROKEN_CHAT_TEMPLATE, "vllm", "chat completions answer 500; completions still work"
        ),
        FaultSpec(
            Fault.VLLM_LEGACY_METRICS,
            "vllm",
            "model servers started from now on are an older vLLM: vllm:gpu_cache_usage_perc instead of "
            "vllm:kv_cache_usage_perc",
        ),
        FaultSpec(
            Fault.KAITO_INFERENCE_OOM, "vllm", "KAITO inference pods are OOMKilled while loading the model"
        ),
        # --- nap ---
        FaultSpec(
            Fault.NAP_SKU_FAMILY_MISMATCH,
            "karpenter",
            "the NodePools require karpenter.azure.com/sku-family In [NC] (the seed lab's bug): no SKU matches",
        ),
        FaultSpec(
            Fault.NAP_LIMITS_EXHAUSTED,
            "karpenter",
            "every NodePool's limits count as used up: pending pods get 'exceed limits for nodepool'",
        ),
        FaultSpec(
            Fault.NAP_QUOTA_EXCEEDED,
            "karpenter",
            "VM creates for NodePool NodeClaims fail with SubscriptionQuotaReached (KAITO's are spared)",
            "karpenter.sh/nodepool values (default: every NodePool; kaito: KAITO's NodeClaims)",
        ),
        FaultSpec(
            Fault.NAP_GPU_NOT_ADVERTISED,
            "karpenter",
            "NodePool GPU nodes register but nvidia.com/gpu is never advertised (Initialized=Unknown)",
            "karpenter.sh/nodepool values (default: every NodePool; kaito: KAITO's NodeClaims)",
        ),
        FaultSpec(Fault.NAP_NO_CONSOLIDATION, "karpenter", "empty nodes are never consolidated"),
        FaultSpec(
            Fault.NAP_PRICIER_SKU,
            "karpenter",
            "launches pick the most expensive instance type a NodeClaim allows instead of the cheapest",
            "karpenter.sh/nodepool values (default: every NodePool; kaito: KAITO's NodeClaims)",
        ),
    ]
}


class UnknownFaultError(ValueError):
    pass


def parse_fault(text: str) -> tuple[Fault, str]:
    """`name` or `name=value` → (fault, value); rejects names not in the registry."""
    name, _, value = text.partition("=")
    name = name.strip()
    if name not in FAULTS:
        known = ", ".join(sorted(FAULTS))
        # The plugin prefixes the knob and its source, so the message starts with the bad value.
        raise UnknownFaultError(f"unknown simulated-cluster fault {name!r}; known faults: {known}")
    return Fault(name), value.strip()
