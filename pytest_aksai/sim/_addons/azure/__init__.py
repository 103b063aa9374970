"""Azure for the simulated lab: the cluster's OIDC issuer, Entra ID, Key Vault and the Workload Identity
webhook, over HTTPS on 127.0.0.1 under the sim's CA, with the tenant as data (the scenario's `azure:`,
then the ConfigMap `kube-system/aksai-sim-azure`). See docs/explanation/simulated-cluster.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_aksai.sim._addons._spec import AddonSpec, Component
from pytest_aksai.sim.contract import Fault

if TYPE_CHECKING:
    from pytest_aksai.sim._core._framework import Controller


def _controllers() -> Sequence[type[Controller]]:
    from pytest_aksai.sim._addons.azure._controller import FaultedObjects, SimAzure

    return (SimAzure, FaultedObjects)


ADDON = AddonSpec(
    name="azure",
    description="Azure Workload Identity: OIDC issuer, Entra ID token endpoint, Key Vault, the webhook",
    package=__name__,
    controllers=_controllers,
    faults=(
        Fault.WI_SUBJECT_MISMATCH,
        Fault.WI_ISSUER_MISMATCH,
        Fault.WI_AUDIENCE_MISMATCH,
        Fault.WI_LABEL_ON_SERVICEACCOUNT,
        Fault.WI_MISSING_CLIENT_ID,
        Fault.WI_WEBHOOK_DOWN,
        Fault.OIDC_DISCOVERY_UNREACHABLE,
        Fault.KV_NO_ROLE,
        Fault.KV_SECRET_MISSING,
        Fault.SB_NO_SEND_CLAIM,
        Fault.KEDA_IDENTITY_NOT_FEDERATED,
        Fault.SPC_WRONG_CLIENT_ID,
    ),
    components=(
        Component(
            "azure-wi-webhook-controller-manager",
            "mcr.microsoft.com/oss/azure/workload-identity/webhook:v1.6.0",
            replicas=2,
            labels={"azure-workload-identity.io/system": "true", "kubernetes.azure.com/managedby": "aks"},
        ),
    ),
)
