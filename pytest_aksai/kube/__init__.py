"""The only code that talks to the Kubernetes API (no pytest imports here).

What the plugin and the public package use is exported here; the modules behind it are private. Imported
lazily (PEP 562): `import pytest_aksai.kube` loads no client code until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_aksai._errors import ConnectError
from pytest_aksai._lazy import lazy_getattr

if TYPE_CHECKING:
    from pytest_aksai.kube._connect import (
        API_GROUPS_OF_THE_LAB,
        Cluster,
        connect,
        load_client,
    )
    from pytest_aksai.kube._endpoint import (
        Endpoint,
        workspace_endpoint,
    )
    from pytest_aksai.kube._inventory import (
        sizing_objects,
    )
    from pytest_aksai.kube._kaito import (
        Condition,
        NodeClaim,
        Workspace,
        expected_served_name,
        inference_config,
        nothing_found,
        read_workspace,
        wait_workspace_ready,
        workspace_evidence,
        workspace_refs,
    )
    from pytest_aksai.kube._network import (
        Blocked,
        ProbeResult,
        blocked_clients,
        cilium_policies,
        probe_manifest,
        run_probe,
    )
    from pytest_aksai.kube._rest import (
        CONFIGMAPS,
        DEPLOYMENTS,
        ENDPOINTS,
        EVENTS,
        HTTPSCALEDOBJECTS,
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
        Obj,
    )
    from pytest_aksai.kube._scope import (
        MANAGED_BY_LABEL,
        MANAGED_BY_VALUE,
        RUN_LABEL,
        RunScope,
        namespace_name,
        run_labels,
        run_selector,
    )
    from pytest_aksai.kube._wait import (
        Observation,
        WaitAborted,
        WaitFailed,
        WaitResult,
        WaitTimeout,
        condition,
        wait_for,
    )

_LAZY = {
    "API_GROUPS_OF_THE_LAB": "._connect",
    "Cluster": "._connect",
    "connect": "._connect",
    "load_client": "._connect",
    "MANAGED_BY_LABEL": "._scope",
    "MANAGED_BY_VALUE": "._scope",
    "RUN_LABEL": "._scope",
    "RunScope": "._scope",
    "namespace_name": "._scope",
    "run_labels": "._scope",
    "run_selector": "._scope",
    "Kind": "._rest",
    "Obj": "._rest",
    "CONFIGMAPS": "._rest",
    "DEPLOYMENTS": "._rest",
    "ENDPOINTS": "._rest",
    "EVENTS": "._rest",
    "NAMESPACES": "._rest",
    "NODECLAIMS": "._rest",
    "NODEPOOLS": "._rest",
    "NODES": "._rest",
    "PODS": "._rest",
    "SCALEDOBJECTS": "._rest",
    "HTTPSCALEDOBJECTS": "._rest",
    "SERVICES": "._rest",
    "STATEFULSETS": "._rest",
    "WORKSPACES": "._rest",
    "Endpoint": "._endpoint",
    "workspace_endpoint": "._endpoint",
    "Condition": "._kaito",
    "NodeClaim": "._kaito",
    "Workspace": "._kaito",
    "expected_served_name": "._kaito",
    "inference_config": "._kaito",
    "nothing_found": "._kaito",
    "read_workspace": "._kaito",
    "wait_workspace_ready": "._kaito",
    "workspace_evidence": "._kaito",
    "workspace_refs": "._kaito",
    "Observation": "._wait",
    "WaitAborted": "._wait",
    "WaitFailed": "._wait",
    "WaitResult": "._wait",
    "WaitTimeout": "._wait",
    "condition": "._wait",
    "wait_for": "._wait",
    "sizing_objects": "._inventory",
    "Blocked": "._network",
    "ProbeResult": "._network",
    "blocked_clients": "._network",
    "cilium_policies": "._network",
    "probe_manifest": "._network",
    "run_probe": "._network",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = [
    "API_GROUPS_OF_THE_LAB",
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "ENDPOINTS",
    "EVENTS",
    "HTTPSCALEDOBJECTS",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "NAMESPACES",
    "NODECLAIMS",
    "NODEPOOLS",
    "NODES",
    "PODS",
    "RUN_LABEL",
    "SCALEDOBJECTS",
    "SERVICES",
    "STATEFULSETS",
    "WORKSPACES",
    "Blocked",
    "Cluster",
    "Condition",
    "ConnectError",
    "Endpoint",
    "Kind",
    "NodeClaim",
    "Obj",
    "Observation",
    "ProbeResult",
    "RunScope",
    "WaitAborted",
    "WaitFailed",
    "WaitResult",
    "WaitTimeout",
    "Workspace",
    "blocked_clients",
    "cilium_policies",
    "condition",
    "connect",
    "expected_served_name",
    "inference_config",
    "load_client",
    "namespace_name",
    "nothing_found",
    "probe_manifest",
    "read_workspace",
    "run_labels",
    "run_probe",
    "run_selector",
    "sizing_objects",
    "wait_for",
    "wait_workspace_ready",
    "workspace_endpoint",
    "workspace_evidence",
    "workspace_refs",
]
