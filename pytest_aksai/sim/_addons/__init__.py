"""The registry of add-ons: one package each, declaring its CRDs, controllers, faults and components.

To add one, see docs/simulated-cluster.md ("Adding an add-on"): write `_addons/<name>/__init__.py` with an
`ADDON = AddonSpec(...)`, put its CRDs next to it as `crd-<group>.yaml`, and append it to `REGISTRY`.
An add-on that is not listed here cannot be named by a scenario; one a scenario does not list is not
installed: its CRDs are not served, its controllers do not run.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytest_aksai.sim._addons import (
    azure,
    core,
    http_addon,
    kaito,
    karpenter,
    keda,
    metrics_server,
    prometheus,
    vllm,
)
from pytest_aksai.sim._addons._spec import AddonSpec, Component

__all__ = ["REGISTRY", "AddonSpec", "Component", "UnknownAddonError", "resolve"]

REGISTRY: dict[str, AddonSpec] = {
    a.name: a
    for a in (
        core.ADDON,
        metrics_server.ADDON,
        karpenter.ADDON,
        vllm.ADDON,
        kaito.ADDON,
        prometheus.ADDON,
        keda.ADDON,
        http_addon.ADDON,
        azure.ADDON,
    )
}
"""In start order: an add-on's controllers start after those of the add-ons it requires."""


class UnknownAddonError(ValueError):
    pass


def resolve(names: Iterable[str]) -> list[AddonSpec]:
    """The add-ons a scenario lists, in registry order; raises naming unknown or missing add-ons."""
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in REGISTRY]
    if unknown:
        raise UnknownAddonError(
            f"unknown add-on(s) {', '.join(map(repr, unknown))} in the scenario's `addons` list; "
            f"registered add-ons: {', '.join(REGISTRY)}. Add-ons that are not implemented cannot be listed; "
            "remove them or add the add-on "
            "package under pytest_aksai/sim/_addons/"
        )
    missing = sorted({r for n in wanted for r in REGISTRY[n].requires} - set(wanted))
    if missing:
        needers = [n for n in wanted if set(REGISTRY[n].requires) & set(missing)]
        raise UnknownAddonError(
            f"add-on(s) {', '.join(needers)} need {', '.join(missing)}, which the scenario's `addons` "
            f"list does not include; add {', '.join(missing)} to `addons`"
        )
    return [spec for name, spec in REGISTRY.items() if name in wanted]
