"""metrics-server as AKS runs it: the `metrics.k8s.io/v1beta1` API behind the `v1beta1.metrics.k8s.io`
APIService, which `kubectl top` and the HPA's Resource metrics read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_aksai.sim._addons._spec import AddonSpec, Component

if TYPE_CHECKING:
    from pytest_aksai.sim._core._framework import Controller


def _controllers() -> Sequence[type[Controller]]:
    from pytest_aksai.sim._addons.metrics_server._server import MetricsServerController

    return (MetricsServerController,)


ADDON = AddonSpec(
    name="metrics-server",
    description="metrics-server v0.7: NodeMetrics and PodMetrics (metrics.k8s.io/v1beta1) for kubectl top and the HPA",
    package=__name__,
    controllers=_controllers,
    components=(
        Component(
            "metrics-server",
            "mcr.microsoft.com/oss/kubernetes/metrics-server:v0.7.2",
            replicas=2,
            labels={"k8s-app": "metrics-server", "kubernetes.azure.com/managedby": "aks"},
            cpu="150m",
            memory="100Mi",
            ports={"https": 4443},
        ),
    ),
)
