"""The only code that talks to the Kubernetes API (no pytest imports here).

Imported lazily (PEP 562): `import pytest_aksai.kube` loads no client code until a name is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from pytest_aksai._errors import ConnectError

if TYPE_CHECKING:
    from pytest_aksai.kube._connect import API_GROUPS_OF_THE_LAB, Cluster, connect, load_client
    from pytest_aksai.kube._scope import (
        MANAGED_BY_LABEL,
        MANAGED_BY_VALUE,
        RUN_LABEL,
        RunScope,
        namespace_name,
        run_labels,
        run_selector,
    )

_LAZY = {
    "API_GROUPS_OF_THE_LAB": "_connect",
    "Cluster": "_connect",
    "connect": "_connect",
    "load_client": "_connect",
    "MANAGED_BY_LABEL": "_scope",
    "MANAGED_BY_VALUE": "_scope",
    "RUN_LABEL": "_scope",
    "RunScope": "_scope",
    "namespace_name": "_scope",
    "run_labels": "_scope",
    "run_selector": "_scope",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "API_GROUPS_OF_THE_LAB",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "RUN_LABEL",
    "Cluster",
    "ConnectError",
    "RunScope",
    "connect",
    "load_client",
    "namespace_name",
    "run_labels",
    "run_selector",
]
