"""pytest-aksai: conformance checks for self-hosted LLM inference on AKS (KAITO, vLLM, KEDA, NAP, identity).

The public surface is what suites (yours or the bundled ones) may use; everything else is private. Names
are imported on first use (PEP 562), so loading the plugin in a project that never uses it costs little.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from pytest_aksai._errors import AksaiError, ConnectError, Finding
from pytest_aksai._warnings import AksaiWarning

if TYPE_CHECKING:
    from pytest_aksai import kinds
    from pytest_aksai._settings import Settings
    from pytest_aksai.kube import (
        Cluster,
        Condition,
        Endpoint,
        NodeClaim,
        Observation,
        WaitAborted,
        WaitFailed,
        WaitResult,
        WaitTimeout,
        Workspace,
        condition,
        expected_served_name,
        inference_config,
        wait_for,
    )
    from pytest_aksai.load import MetricsSnapshot, parse_metrics
    from pytest_aksai.sizing import (
        AksaiSizingWarning,
        ModelSpec,
        SizingCheck,
        UnknownEntryError,
        gpu_sku,
        model_spec,
    )
    from pytest_aksai.sizing import Finding as SizingFinding

__version__ = "0.1.0"

_LAZY: dict[str, tuple[str, str]] = {
    "kinds": ("pytest_aksai.kinds", ""),
    "Settings": ("pytest_aksai._settings", "Settings"),
    "Cluster": ("pytest_aksai.kube", "Cluster"),
    "Endpoint": ("pytest_aksai.kube", "Endpoint"),
    "Condition": ("pytest_aksai.kube", "Condition"),
    "NodeClaim": ("pytest_aksai.kube", "NodeClaim"),
    "Workspace": ("pytest_aksai.kube", "Workspace"),
    "expected_served_name": ("pytest_aksai.kube", "expected_served_name"),
    "inference_config": ("pytest_aksai.kube", "inference_config"),
    "Observation": ("pytest_aksai.kube", "Observation"),
    "WaitAborted": ("pytest_aksai.kube", "WaitAborted"),
    "WaitFailed": ("pytest_aksai.kube", "WaitFailed"),
    "WaitResult": ("pytest_aksai.kube", "WaitResult"),
    "WaitTimeout": ("pytest_aksai.kube", "WaitTimeout"),
    "condition": ("pytest_aksai.kube", "condition"),
    "wait_for": ("pytest_aksai.kube", "wait_for"),
    "MetricsSnapshot": ("pytest_aksai.load", "MetricsSnapshot"),
    "parse_metrics": ("pytest_aksai.load", "parse_metrics"),
    "AksaiSizingWarning": ("pytest_aksai.sizing", "AksaiSizingWarning"),
    "ModelSpec": ("pytest_aksai.sizing", "ModelSpec"),
    "UnknownEntryError": ("pytest_aksai.sizing", "UnknownEntryError"),
    "gpu_sku": ("pytest_aksai.sizing", "gpu_sku"),
    "model_spec": ("pytest_aksai.sizing", "model_spec"),
    "SizingCheck": ("pytest_aksai.sizing", "SizingCheck"),
    "SizingFinding": ("pytest_aksai.sizing", "Finding"),
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(where[0])
    value = getattr(module, where[1]) if where[1] else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AksaiError",
    "AksaiSizingWarning",
    "AksaiWarning",
    "Cluster",
    "Condition",
    "ConnectError",
    "Endpoint",
    "Finding",
    "MetricsSnapshot",
    "ModelSpec",
    "NodeClaim",
    "Observation",
    "Settings",
    "SizingCheck",
    "SizingFinding",
    "UnknownEntryError",
    "WaitAborted",
    "WaitFailed",
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
