"""pytest-aksai: conformance checks for self-hosted LLM inference on AKS (KAITO, vLLM, KEDA, NAP, identity).

The public surface is what suites (yours or the bundled ones) may use; everything else is private. Names
are imported on first use (PEP 562), so loading the plugin in a project that never uses it costs little.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_aksai._errors import AksaiError, ConnectError, Finding
from pytest_aksai._lazy import lazy_getattr
from pytest_aksai._warnings import AksaiWarning

if TYPE_CHECKING:
    from pytest_aksai import kinds
    from pytest_aksai._fixtures._report import CheckReport
    from pytest_aksai._settings import Settings
    from pytest_aksai.azure import (
        AzureTarget,
        Exchange,
        IssuerDocuments,
        PodTemplate,
        ProviderClass,
        SecretRead,
        TokenClaims,
        WorkloadIdentity,
    )
    from pytest_aksai.kube import (
        AKSNodeClass,
        Cluster,
        Condition,
        Endpoint,
        HorizontalPodAutoscaler,
        HTTPScaledObject,
        IdleNode,
        Judgment,
        Lifecycle,
        NodeClaim,
        NodePool,
        Observation,
        ProbeRun,
        ScaledObject,
        Scaler,
        ScalerJudgments,
        TriggerAuthentication,
        WaitAborted,
        WaitFailed,
        WaitResult,
        WaitTimeout,
        Workspace,
        condition,
        expected_served_name,
        hpa_of,
        idle_gpu_nodes,
        inference_config,
        judge_scaler,
        read_scaled_object,
        wait_for,
    )
    from pytest_aksai.load import LoadRun, LoadVerdict, MetricsSnapshot, parse_metrics
    from pytest_aksai.report import Distribution, Table, Timeline
    from pytest_aksai.sizing import (
        AksaiSizingWarning,
        ModelSpec,
        SizingCheck,
        UnknownEntryError,
        gpu_sku,
        model_spec,
        vllm_engine_args,
    )
    from pytest_aksai.sizing import Finding as SizingFinding

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "kinds": "pytest_aksai.kinds:",
    "Settings": "pytest_aksai._settings",
    "CheckReport": "pytest_aksai._fixtures._report",
    "Distribution": "pytest_aksai.report",
    "Table": "pytest_aksai.report",
    "Timeline": "pytest_aksai.report",
    "Cluster": "pytest_aksai.kube",
    "AzureTarget": "pytest_aksai.azure",
    "Exchange": "pytest_aksai.azure",
    "IssuerDocuments": "pytest_aksai.azure",
    "PodTemplate": "pytest_aksai.azure",
    "ProviderClass": "pytest_aksai.azure",
    "SecretRead": "pytest_aksai.azure",
    "TokenClaims": "pytest_aksai.azure",
    "WorkloadIdentity": "pytest_aksai.azure",
    "Endpoint": "pytest_aksai.kube",
    "Condition": "pytest_aksai.kube",
    "NodeClaim": "pytest_aksai.kube",
    "AKSNodeClass": "pytest_aksai.kube",
    "IdleNode": "pytest_aksai.kube",
    "NodePool": "pytest_aksai.kube",
    "ProbeRun": "pytest_aksai.kube",
    "idle_gpu_nodes": "pytest_aksai.kube",
    "Workspace": "pytest_aksai.kube",
    "expected_served_name": "pytest_aksai.kube",
    "inference_config": "pytest_aksai.kube",
    "Observation": "pytest_aksai.kube",
    "WaitAborted": "pytest_aksai.kube",
    "WaitFailed": "pytest_aksai.kube",
    "WaitResult": "pytest_aksai.kube",
    "WaitTimeout": "pytest_aksai.kube",
    "condition": "pytest_aksai.kube",
    "wait_for": "pytest_aksai.kube",
    "LoadRun": "pytest_aksai.load",
    "LoadVerdict": "pytest_aksai.load",
    "HTTPScaledObject": "pytest_aksai.kube",
    "HorizontalPodAutoscaler": "pytest_aksai.kube",
    "Judgment": "pytest_aksai.kube",
    "Lifecycle": "pytest_aksai.kube",
    "ScaledObject": "pytest_aksai.kube",
    "Scaler": "pytest_aksai.kube",
    "ScalerJudgments": "pytest_aksai.kube",
    "TriggerAuthentication": "pytest_aksai.kube",
    "judge_scaler": "pytest_aksai.kube",
    "hpa_of": "pytest_aksai.kube",
    "read_scaled_object": "pytest_aksai.kube",
    "MetricsSnapshot": "pytest_aksai.load",
    "parse_metrics": "pytest_aksai.load",
    "AksaiSizingWarning": "pytest_aksai.sizing",
    "ModelSpec": "pytest_aksai.sizing",
    "UnknownEntryError": "pytest_aksai.sizing",
    "gpu_sku": "pytest_aksai.sizing",
    "model_spec": "pytest_aksai.sizing",
    "vllm_engine_args": "pytest_aksai.sizing",
    "SizingCheck": "pytest_aksai.sizing",
    "SizingFinding": "pytest_aksai.sizing:Finding",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AKSNodeClass",
    "AksaiError",
    "AksaiSizingWarning",
    "AksaiWarning",
    "AzureTarget",
    "CheckReport",
    "Cluster",
    "Condition",
    "ConnectError",
    "Distribution",
    "Endpoint",
    "Exchange",
    "Finding",
    "HTTPScaledObject",
    "HorizontalPodAutoscaler",
    "IdleNode",
    "IssuerDocuments",
    "Judgment",
    "Lifecycle",
    "LoadRun",
    "LoadVerdict",
    "MetricsSnapshot",
    "ModelSpec",
    "NodeClaim",
    "NodePool",
    "Observation",
    "PodTemplate",
    "ProbeRun",
    "ProviderClass",
    "ScaledObject",
    "Scaler",
    "ScalerJudgments",
    "SecretRead",
    "Settings",
    "SizingCheck",
    "SizingFinding",
    "Table",
    "Timeline",
    "TokenClaims",
    "TriggerAuthentication",
    "UnknownEntryError",
    "WaitAborted",
    "WaitFailed",
    "WaitResult",
    "WaitTimeout",
    "WorkloadIdentity",
    "Workspace",
    "__version__",
    "condition",
    "expected_served_name",
    "gpu_sku",
    "hpa_of",
    "idle_gpu_nodes",
    "inference_config",
    "judge_scaler",
    "kinds",
    "model_spec",
    "parse_metrics",
    "read_scaled_object",
    "vllm_engine_args",
    "wait_for",
]
