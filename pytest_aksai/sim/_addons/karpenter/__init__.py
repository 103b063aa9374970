"""Karpenter (AKS node auto-provisioning): serves karpenter.sh and karpenter.azure.com, provisions NodeClaims
for pending pods from NodePools, runs every NodeClaim (its own and KAITO's) through the lifecycle a NAP node
shows on AKS, and removes empty nodes. NAP runs Karpenter in the AKS control plane, so it has no pods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_aksai.sim._addons._spec import AddonSpec
from pytest_aksai.sim.contract import Fault

if TYPE_CHECKING:
    from pytest_aksai.sim._core._framework import Controller


def _controllers() -> Sequence[type[Controller]]:
    from pytest_aksai.sim._addons.karpenter._disruption import DisruptionController
    from pytest_aksai.sim._addons.karpenter._nodepools import (
        NodeClassController,
        NodePoolController,
        ProvisioningController,
    )
    from pytest_aksai.sim._addons.karpenter._provisioner import ProvisionerController

    return (
        NodeClassController,
        NodePoolController,
        ProvisioningController,
        ProvisionerController,
        DisruptionController,
    )


ADDON = AddonSpec(
    name="karpenter",
    description="Karpenter on AKS (NAP): NodePool provisioning, the NodeClaim lifecycle, emptiness "
    "consolidation and expiration, spot eviction (karpenter.sh, karpenter.azure.com)",
    package=__name__,
    controllers=_controllers,
    faults=(
        Fault.NAP_SKU_FAMILY_MISMATCH,
        Fault.NAP_LIMITS_EXHAUSTED,
        Fault.NAP_QUOTA_EXCEEDED,
        Fault.NAP_GPU_NOT_ADVERTISED,
        Fault.NAP_NO_CONSOLIDATION,
        Fault.NAP_PRICIER_SKU,
        Fault.NAP_SPOT_EVICTION,
    ),
)
