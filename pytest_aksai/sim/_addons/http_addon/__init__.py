"""The KEDA HTTP add-on (v0.15): HTTPScaledObject → ScaledObject, the external scaler and the interceptor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_aksai.sim._addons._spec import AddonSpec, Component
from pytest_aksai.sim.contract import Fault

if TYPE_CHECKING:
    from pytest_aksai.sim._core._framework import Controller


def _controllers() -> Sequence[type[Controller]]:
    from pytest_aksai.sim._addons.http_addon._interceptor import InterceptorController
    from pytest_aksai.sim._addons.http_addon._operator import HTTPScaledObjectController

    return (InterceptorController, HTTPScaledObjectController)


_LABELS = {"app.kubernetes.io/part-of": "keda-add-ons-http", "app.kubernetes.io/version": "0.15.0"}

ADDON = AddonSpec(
    name="keda-http-add-on",
    description="the KEDA HTTP add-on (Helm chart keda-add-ons-http 0.15): operator, external scaler, interceptor",
    package=__name__,
    controllers=_controllers,
    faults=(Fault.KEDA_MIN_REPLICAS_ONE, Fault.KEDA_INTERCEPTOR_TIMEOUT, Fault.KEDA_NOT_READY_FORWARDING),
    components=(
        Component(
            "keda-add-ons-http-controller-manager",
            "ghcr.io/kedacore/http-add-on-operator:0.15.0",
            namespace="keda",
            labels={**_LABELS, "app.kubernetes.io/component": "operator"},
        ),
        Component(
            "keda-add-ons-http-external-scaler",
            "ghcr.io/kedacore/http-add-on-scaler:0.15.0",
            namespace="keda",
            labels={**_LABELS, "app.kubernetes.io/component": "scaler"},
            ports={"grpc": 9090},
        ),
        Component(
            "keda-add-ons-http-interceptor",
            "ghcr.io/kedacore/http-add-on-interceptor:0.15.0",
            namespace="keda",
            replicas=2,
            labels={**_LABELS, "app.kubernetes.io/component": "interceptor"},
        ),
    ),
    requires=("keda",),
)
