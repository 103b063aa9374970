"""KEDA 2.x: the operator (ScaledObject → HPA, polling, 0 ↔ 1, cooldown) and the HPA controller it relies on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_aksai.sim._addons._spec import AddonSpec, Component
from pytest_aksai.sim.contract import Fault

if TYPE_CHECKING:
    from pytest_aksai.sim._core._framework import Controller


def _controllers() -> Sequence[type[Controller]]:
    from pytest_aksai.sim._addons.keda._hpa import HorizontalPodAutoscalerController
    from pytest_aksai.sim._addons.keda._operator import ScaledObjectController
    from pytest_aksai.sim._addons.keda._webhooks import KedaAdmissionWebhooksController

    return (ScaledObjectController, HorizontalPodAutoscalerController, KedaAdmissionWebhooksController)


_LABELS = {"kubernetes.azure.com/managedby": "aks", "app.kubernetes.io/part-of": "keda-operator"}

ADDON = AddonSpec(
    name="keda",
    description="KEDA 2.x (the AKS KEDA add-on): ScaledObjects, their HPAs, and the HPA controller",
    package=__name__,
    controllers=_controllers,
    faults=(Fault.KEDA_WRONG_TARGET_KIND, Fault.KEDA_STUCK_ACTIVE, Fault.KEDA_EARLY_SCALE_IN),
    components=(
        Component(
            "keda-operator",
            "mcr.microsoft.com/aks/keda/keda:2.16.1",
            # As the add-on (Helm: podIdentity.azureWorkload.enabled) runs it: the webhook projects the
            # operator's token, which the azure-servicebus scaler exchanges as the KEDA identity.
            labels={
                **_LABELS,
                "app.kubernetes.io/name": "keda-operator",
                "azure.workload.identity/use": "true",
            },
            service_account="keda-operator",
        ),
        Component(
            "keda-operator-metrics-apiserver",
            "mcr.microsoft.com/aks/keda/keda-metrics-apiserver:2.16.1",
            labels={**_LABELS, "app.kubernetes.io/name": "keda-operator-metrics-apiserver"},
            ports={"https": 6443},
        ),
        Component(
            "keda-admission-webhooks",
            "mcr.microsoft.com/aks/keda/keda-admission-webhooks:2.16.1",
            labels={**_LABELS, "app.kubernetes.io/name": "keda-admission-webhooks"},
        ),
    ),
)
