"""A Prometheus server that scrapes the model servers and answers the query API KEDA's prometheus scaler uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_aksai.sim._addons._spec import AddonSpec, Component
from pytest_aksai.sim.contract import Fault

if TYPE_CHECKING:
    from pytest_aksai.sim._core._framework import Controller


def _controllers() -> Sequence[type[Controller]]:
    from pytest_aksai.sim._addons.prometheus._server import PrometheusController

    return (PrometheusController,)


ADDON = AddonSpec(
    name="prometheus",
    description="Prometheus (community chart prometheus-server): scrapes pods' /metrics every 15 s, serves /api/v1/query",
    package=__name__,
    controllers=_controllers,
    faults=(Fault.KEDA_METRICS_UNAVAILABLE,),
    components=(
        Component(
            "prometheus-server",
            "quay.io/prometheus/prometheus:v2.55.1",
            namespace="monitoring",
            labels={"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"},
            cpu="200m",
            memory="512Mi",
            ports={"http": 9090},
        ),
    ),
)
