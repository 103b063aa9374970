"""The embedded simulated AKS AI lab: a Kubernetes API server (plus controllers) on 127.0.0.1.

    with SimCluster() as sim:
        kubernetes.config.load_kube_config(str(sim.kubeconfig_path))

or standalone: `python -m pytest_aksai.sim serve --kubeconfig sim.kubeconfig`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_aksai.sim.contract import DEFAULT_TIME_SCALE, KUBECONFIG_CONTEXT

if TYPE_CHECKING:
    from pytest_aksai.sim._cluster import SimCluster, SimClusterError

__all__ = ["DEFAULT_TIME_SCALE", "KUBECONFIG_CONTEXT", "SimCluster", "SimClusterError"]


def __getattr__(name: str) -> Any:
    """PEP 562: the server code loads on first use of `SimCluster`, not on `import pytest_aksai.sim`."""
    if name in ("SimCluster", "SimClusterError"):
        from pytest_aksai.sim import _cluster

        return getattr(_cluster, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
