"""Where the kinds the suites read are served, for `aksai_cluster.get(...)` and `aksai_cluster.items(...)`."""

from pytest_aksai.kube import (
    CONFIGMAPS,
    DEPLOYMENTS,
    ENDPOINTS,
    EVENTS,
    NAMESPACES,
    NODECLAIMS,
    NODEPOOLS,
    NODES,
    PODS,
    SCALEDOBJECTS,
    SERVICES,
    STATEFULSETS,
    WORKSPACES,
    Kind,
)

__all__ = [
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "ENDPOINTS",
    "EVENTS",
    "NAMESPACES",
    "NODECLAIMS",
    "NODEPOOLS",
    "NODES",
    "PODS",
    "SCALEDOBJECTS",
    "SERVICES",
    "STATEFULSETS",
    "WORKSPACES",
    "Kind",
]
