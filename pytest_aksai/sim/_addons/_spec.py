"""What an add-on declares: its CRDs, controllers, faults and the controller Deployments a client can see."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from pytest_aksai.sim.contract import Fault

if TYPE_CHECKING:
    from pytest_aksai.sim._core._framework import Controller


@dataclass(frozen=True)
class Component:
    """One controller Deployment of an add-on (and a Service in front of it when `ports` are given)."""

    name: str
    image: str
    namespace: str = "kube-system"
    replicas: int = 1
    labels: Mapping[str, str] = field(default_factory=dict)
    cpu: str = "100m"
    memory: str = "128Mi"
    ports: Mapping[str, int] = field(default_factory=dict)
    """Service port name → port."""
    service_account: str = ""
    """The pods' ServiceAccount (the scenario creates it, with any annotations it needs); empty = `default`."""


@dataclass(frozen=True)
class AddonSpec:
    name: str
    description: str
    package: str
    """The add-on's package; its CRDs are the package data `crd-*.yaml` there."""
    controllers: Callable[[], Sequence[type[Controller]]] = lambda: ()
    """Imported on start only, so validating a scenario loads no controller code."""
    faults: tuple[Fault, ...] = ()
    components: tuple[Component, ...] = ()
    requires: tuple[str, ...] = ()
    """Add-ons this one's controllers build on (e.g. KAITO creates NodeClaims that Karpenter provisions)."""

    def crds(self) -> list[dict[str, Any]]:
        import yaml

        folder = resources.files(self.package)
        out: list[dict[str, Any]] = []
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.startswith("crd-") and entry.name.endswith(".yaml"):
                out.extend(d for d in yaml.safe_load_all(entry.read_text(encoding="utf-8")) if d)
        return out
