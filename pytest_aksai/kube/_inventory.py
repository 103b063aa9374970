"""What the sizing checks read from a live cluster: its model workloads, scalers and NodePools."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

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
    for obj in found:
        if obj["kind"] == "Workspace":
            _observe_max_model_len(cluster, obj)
    for config_namespace, name in sorted(wanted):
        configmap = _rest.get(cluster._api, _rest.CONFIGMAPS, name, config_namespace)
        if configmap is not None:
            configmap.setdefault("kind", "ConfigMap")
            configmap.setdefault("apiVersion", "v1")
            found.append(configmap)
    return found


OBSERVED_MAX_MODEL_LEN = "aksai.dev/observed-max-model-len"
"""The annotation (on the in-memory copy only) the sizing analysis reads instead of the model's full context."""


def _observe_max_model_len(cluster: Cluster, workspace: Obj) -> None:
    """What the running engine serves as `max_model_len` (`/v1/models` through the service proxy): a Workspace
    without an explicit max-model-len runs what KAITO's probe found, not the model's full context."""
    meta = workspace["metadata"]
    path = f"/api/v1/namespaces/{meta['namespace']}/services/{meta['name']}:80/proxy/v1/models"
    try:
        models = json.loads(_rest.raw_text(cluster._api, path)).get("data") or []
    except (ApiException, ValueError, OSError):
        return  # not Ready, or no proxy access: the analysis falls back to KAITO's rule
    lengths = [m.get("max_model_len") for m in models if not m.get("parent")]
    if lengths and isinstance(lengths[0], int):
        meta.setdefault("annotations", {})[OBSERVED_MAX_MODEL_LEN] = str(lengths[0])
