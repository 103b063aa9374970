"""The only code that talks to the Kubernetes API (no pytest imports here)."""

from pytest_aksai.kube._connect import API_GROUPS_OF_THE_LAB, Cluster, ConnectError, connect, load_client
from pytest_aksai.kube._scope import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    RUN_LABEL,
    RunScope,
    namespace_name,
    run_labels,
    run_selector,
)

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
