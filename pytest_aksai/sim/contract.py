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
RESTRICTED_CONTEXT = "aksai-sim-restricted"
"""A second context of the sim's kubeconfig whose user, `RESTRICTED_USER`, has only what RBAC grants it."""
RESTRICTED_USER = "aksai-restricted"
"""The context (and cluster) name of the kubeconfig the sim writes."""

AZURE_CONFIGMAP = "aksai-sim-azure"
"""`kube-system/aksai-sim-azure`: the simulated Azure tenant, key `tenant.yaml` (the scenario's `azure:`
schema). Editing it changes the tenant at run time (identities, federated credentials, roles, secrets)."""
KEY_TENANT = "tenant.yaml"
KEY_AZURE = "azure"
"""In `kube-system/aksai-sim`: the simulated Azure endpoints as JSON — `tenantId`, `authorityHost`
(Entra ID, `https://127.0.0.1:<port>/`), `oidcIssuer`, `keyVaults` (vault name → vault URL),
`serviceBus` (namespace → {`fullyQualifiedNamespace`, `amqpEndpoint`}), and `caBundle` (PEM of the CA
every simulated Azure endpoint's certificate chains to)."""
WEBHOOK_NAME = "mutation.azure-workload-identity.io"
"""The Workload Identity mutating webhook, as azure-workload-identity v1.6 names it."""

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
    # --- load ---
    VLLM_SLOW_TTFT = "vllm-slow-ttft"
    VLLM_ERRORS_UNDER_LOAD = "vllm-errors-under-load"
    VLLM_KV_SMALLER_THAN_CONFIGURED = "vllm-kv-smaller-than-configured"
    # --- nap ---
    NAP_SKU_FAMILY_MISMATCH = "nap-sku-family-mismatch"
    NAP_LIMITS_EXHAUSTED = "nap-limits-exhausted"
    NAP_QUOTA_EXCEEDED = "nap-quota-exceeded"
    NAP_GPU_NOT_ADVERTISED = "nap-gpu-not-advertised"
    NAP_NO_CONSOLIDATION = "nap-no-consolidation"
    NAP_PRICIER_SKU = "nap-pricier-sku"
    NAP_SPOT_EVICTION = "nap-spot-eviction"
    # --- identity (the azure add-on) ---
    WI_SUBJECT_MISMATCH = "wi-subject-mismatch"
    WI_ISSUER_MISMATCH = "wi-issuer-mismatch"
    WI_AUDIENCE_MISMATCH = "wi-audience-mismatch"
    WI_LABEL_ON_SERVICEACCOUNT = "wi-label-on-serviceaccount"
    WI_MISSING_CLIENT_ID = "wi-missing-client-id"
    WI_WEBHOOK_DOWN = "wi-webhook-down"
    OIDC_DISCOVERY_UNREACHABLE = "oidc-discovery-unreachable"
    KV_NO_ROLE = "kv-no-role"
    KV_SECRET_MISSING = "kv-secret-missing"
    SB_NO_SEND_CLAIM = "sb-no-send-claim"
    KEDA_IDENTITY_NOT_FEDERATED = "keda-identity-not-federated"
    SPC_WRONG_CLIENT_ID = "spc-wrong-client-id"
    WI_TOKEN_NOT_ROTATED = "wi-token-not-rotated"
    # --- keda ---
    KEDA_MIN_REPLICAS_ONE = "keda-min-replicas-one"
    KEDA_WRONG_TARGET_KIND = "keda-wrong-target-kind"
    KEDA_METRICS_UNAVAILABLE = "keda-metrics-unavailable"
    KEDA_STUCK_ACTIVE = "keda-stuck-active"
    KEDA_EARLY_SCALE_IN = "keda-early-scale-in"
    KEDA_INTERCEPTOR_TIMEOUT = "keda-interceptor-timeout"
    KEDA_NOT_READY_FORWARDING = "keda-not-ready-forwarding"
    # --- kaito/api depth (issue 18) ---
    GPU_DEVICE_PLUGIN_MISSING = "gpu-device-plugin-missing"
    VLLM_ENGINE_DIES = "vllm-engine-dies"


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
            "a share of API requests answer 429 (Retry-After 1), 500, 503 or a connection reset",
            "PERCENT[:KIND,...]: share of requests (default 20) and kinds among 429, 500, 503, reset "
            "(default all), e.g. 10:429,reset",
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
        # --- load ---
        FaultSpec(
            Fault.VLLM_SLOW_TTFT,
            "vllm",
            "every request waits before the scheduler sees it (a CPU-starved API server): TTFT well above the "
            "roofline, counted in the server's own TTFT histogram, not in num_requests_waiting",
            "milliseconds of delay (default 3000)",
        ),
        FaultSpec(
            Fault.VLLM_ERRORS_UNDER_LOAD,
            "vllm",
            "above some concurrency a share of requests answer 500",
            "CONCURRENCY:PERCENT, requests in the engine from which PERCENT % fail (default 4:20)",
        ),
        FaultSpec(
            Fault.VLLM_KV_SMALLER_THAN_CONFIGURED,
            "vllm",
            "model servers started from now on hold a KV cache of only one max-model-len sequence, far less "
            "than their gpu-memory-utilization implies, so requests queue early",
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
        FaultSpec(
            Fault.NAP_SPOT_EVICTION,
            "karpenter",
            "Azure evicts a spot VM (eviction policy Delete) as soon as a workload pod is bound to its node: the "
            "node goes NotReady and is deleted, its NodeClaim and pods go",
            "karpenter.sh/nodepool values (default: every NodePool)",
        ),
        # --- identity (the azure add-on) ---
        FaultSpec(
            Fault.WI_SUBJECT_MISMATCH,
            "azure",
            "the workload identity's federated credential names the ServiceAccount in namespace default "
            "(Entra answers AADSTS700213)",
        ),
        FaultSpec(
            Fault.WI_ISSUER_MISMATCH,
            "azure",
            "the workload identity's federated credential has the issuer without its trailing / "
            "(Entra answers AADSTS700211)",
        ),
        FaultSpec(
            Fault.WI_AUDIENCE_MISMATCH,
            "azure",
            "the workload identity's federated credential expects another audience (AADSTS700212)",
        ),
        FaultSpec(
            Fault.WI_LABEL_ON_SERVICEACCOUNT,
            "azure",
            "the seed lab's mistake: azure.workload.identity/use is on the ServiceAccount, not on the pods",
        ),
        FaultSpec(
            Fault.WI_MISSING_CLIENT_ID,
            "azure",
            "the ServiceAccount lacks the azure.workload.identity/client-id annotation",
        ),
        FaultSpec(
            Fault.WI_WEBHOOK_DOWN,
            "azure",
            "the Workload Identity webhook is unreachable: labelled pods are refused (failurePolicy Fail)",
        ),
        FaultSpec(
            Fault.OIDC_DISCOVERY_UNREACHABLE,
            "azure",
            "the cluster's OIDC issuer answers 404 on discovery and JWKS (Entra answers AADSTS50166)",
        ),
        FaultSpec(
            Fault.KV_NO_ROLE,
            "azure",
            "the workload identity has no Key Vault secrets role (403 ForbiddenByRbac)",
        ),
        FaultSpec(
            Fault.KV_SECRET_MISSING,
            "azure",
            "a secret is missing from the vault (404 SecretNotFound)",
            "secret name (default hf-token)",
        ),
        FaultSpec(
            Fault.SB_NO_SEND_CLAIM,
            "azure",
            "the workload identity may not send to Service Bus ('Send' claim(s) are required)",
        ),
        FaultSpec(
            Fault.KEDA_IDENTITY_NOT_FEDERATED,
            "azure",
            "the KEDA operator's identity has no federated credential (Entra answers AADSTS70025)",
        ),
        FaultSpec(
            Fault.SPC_WRONG_CLIENT_ID,
            "azure",
            "the SecretProviderClass's clientID names another identity than its pods' ServiceAccount",
        ),
        FaultSpec(
            Fault.WI_TOKEN_NOT_ROTATED,
            "sim-core",  # the kubelet rotates every projected token, whichever add-on asked for it
            "the kubelet never replaces a projected service-account token (upstream: at 80 % of its "
            "lifetime), so long-running pods present an expired assertion (AADSTS700024)",
        ),
        # --- keda ---
        FaultSpec(
            Fault.KEDA_MIN_REPLICAS_ONE,
            "keda-http-add-on",
            "HTTPScaledObjects get ScaledObjects with minReplicaCount 1: nothing scales to zero",
        ),
        FaultSpec(
            Fault.KEDA_WRONG_TARGET_KIND,
            "keda",
            "ScaledObjects on a StatefulSet lose their kind, as the seed lab writes them: KEDA looks for a "
            "Deployment",
        ),
        FaultSpec(
            Fault.KEDA_METRICS_UNAVAILABLE,
            "prometheus",
            "Prometheus answers 503: prometheus triggers fail with TriggerError",
        ),
        FaultSpec(Fault.KEDA_STUCK_ACTIVE, "keda", "KEDA never scales a target to zero after the cooldown"),
        FaultSpec(
            Fault.KEDA_EARLY_SCALE_IN,
            "keda",
            "KEDA scales to zero on the first idle poll, ignoring the cooldown",
        ),
        FaultSpec(
            Fault.KEDA_INTERCEPTOR_TIMEOUT,
            "keda-http-add-on",
            "the interceptor waits only 20 s for a cold start: the first request after scale-from-zero gets "
            "504",
        ),
        FaultSpec(
            Fault.KEDA_NOT_READY_FORWARDING,
            "keda-http-add-on",
            "HTTPScaledObject target Services publish not-ready addresses: the interceptor forwards a cold "
            "start to a pod still loading",
        ),
        # --- kaito/api depth (issue 18) ---
        FaultSpec(
            Fault.GPU_DEVICE_PLUGIN_MISSING,
            "sim-core",
            "GPU nodes advertise no nvidia.com/gpu (the NVIDIA device plugin is not running)",
        ),
        FaultSpec(
            Fault.VLLM_ENGINE_DIES,
            "vllm",
            "each model server's engine dies after some completions; the process exits 1 and the pod restarts",
            "completions served before the engine dies (default 12)",
        ),
    ]
}


API_FLAKY_KINDS = ("429", "500", "503", "reset")


def api_flaky_parameter(value: str) -> tuple[float, tuple[str, ...]]:
    """`api-flaky`'s parameter `PERCENT[:KIND,...]` → (percent, kinds); defaults for missing or bad parts."""
    percent_text, _, kinds_text = value.partition(":")
    try:
        percent = float(percent_text) if percent_text.strip() else 20.0
    except ValueError:
        percent = 20.0
    kinds = tuple(k for k in (p.strip() for p in kinds_text.split(",")) if k in API_FLAKY_KINDS)
    return max(0.0, min(100.0, percent)), kinds or API_FLAKY_KINDS


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
