"""Karpenter (AKS node auto-provisioning): serves karpenter.sh and karpenter.azure.com and provisions
NodeClaims into Nodes of the claimed VM size. NAP runs Karpenter in the AKS control plane, so it has no pods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_aksai.sim._addons._spec import AddonSpec

if TYPE_CHECKING:
    from pytest_aksai.sim._core._framework import Controller


def _controllers() -> Sequence[type[Controller]]:
    from pytest_aksai.sim._addons.karpenter._provisioner import ProvisionerController

    return (ProvisionerController,)


ADDON = AddonSpec(
    name="karpenter",
    description="a minimal NodeClaim provisioner (karpenter.sh, karpenter.azure.com); NodePool "
    "scheduling comes with issue 11",
    package=__name__,
    controllers=_controllers,
)
