"""KAITO: the Workspace controller (kaito.sh/v1beta1) and its model presets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_aksai.sim._addons._spec import AddonSpec, Component

if TYPE_CHECKING:
    from pytest_aksai.sim._core._framework import Controller


def _controllers() -> Sequence[type[Controller]]:
    from pytest_aksai.sim._addons.kaito._controller import WorkspaceController

    return (WorkspaceController,)


ADDON = AddonSpec(
    name="kaito",
    description="the KAITO workspace controller (AKS AI toolchain operator add-on)",
    package=__name__,
    controllers=_controllers,
    components=(
        Component(
            "kaito-workspace",
            "mcr.microsoft.com/aks/kaito/workspace:0.4.4",
            labels={"app.kubernetes.io/name": "workspace", "kubernetes.azure.com/managedby": "aks"},
        ),
    ),
    requires=("karpenter", "vllm"),
)
