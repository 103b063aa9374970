"""pytest-aksai: conformance checks for self-hosted LLM inference on AKS (KAITO, vLLM, KEDA, NAP, identity).

The public surface is what suites (yours or the bundled ones) may use; everything else is private.
"""

from __future__ import annotations

from pytest_aksai import kinds
from pytest_aksai._warnings import AksaiWarning
from pytest_aksai.kube import Cluster
from pytest_aksai.kube._endpoint import Endpoint
from pytest_aksai.kube._kaito import (
    Condition,
    NodeClaim,
    Workspace,
    expected_served_name,
    inference_config,
)
from pytest_aksai.kube._wait import Observation, WaitAborted, WaitResult, WaitTimeout, condition, wait_for
from pytest_aksai.load import MetricsSnapshot, parse_metrics
from pytest_aksai.sizing import AksaiSizingWarning, ModelSpec, UnknownEntryError, gpu_sku, model_spec

__version__ = "0.1.0"


__all__ = [
    "AksaiSizingWarning",
    "AksaiWarning",
    "Cluster",
    "Condition",
    "Endpoint",
    "MetricsSnapshot",
    "ModelSpec",
    "NodeClaim",
    "Observation",
    "UnknownEntryError",
    "WaitAborted",
    "WaitResult",
    "WaitTimeout",
    "Workspace",
    "__version__",
    "condition",
    "expected_served_name",
    "gpu_sku",
    "inference_config",
    "kinds",
    "model_spec",
    "parse_metrics",
    "wait_for",
]
