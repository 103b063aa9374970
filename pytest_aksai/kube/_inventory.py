"""What the sizing checks read from a live cluster: its model workloads, scalers and NodePools."""

from __future__ import annotations

from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._rest import Obj

SIZING_KINDS = (
    _rest.WORKSPACES,
    _rest.DEPLOYMENTS,
    _rest.STATEFULSETS,
    _rest.SCALEDOBJECTS,
    _rest.HTTPSCALEDOBJECTS,
    _rest.NODEPOOLS,
)


def sizing_objects(cluster: Cluster, namespace: str | None) -> list[Obj]:
    """Workspaces, vLLM Deployments/StatefulSets, KEDA scalers and NodePools the cluster serves, with the
    inference ConfigMaps the Workspaces name; kinds whose API group is not served are left out."""
    found: list[Obj] = []
    for kind in SIZING_KINDS:
        if cluster.serves(kind.group, kind.version):
            found.extend(_rest.typed_items(cluster._api, kind, namespace))
    wanted = {
        (o["metadata"].get("namespace"), o["inference"]["config"])
        for o in found
        if o["kind"] == "Workspace" and (o.get("inference") or {}).get("config")
    }
    for config_namespace, name in sorted(wanted):
        configmap = _rest.get(cluster._api, _rest.CONFIGMAPS, name, config_namespace)
        if configmap is not None:
            configmap.setdefault("kind", "ConfigMap")
            configmap.setdefault("apiVersion", "v1")
            found.append(configmap)
    return found
