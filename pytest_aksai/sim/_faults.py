"""The faults in force on a running simulated cluster; the registry itself is `pytest_aksai.sim.contract`.

Faults are selected at start (`--fault NAME`, repeatable; `NAME=VALUE` gives a parameter) and toggled at
run time through the ConfigMap `kube-system/aksai-sim-faults`, whose data maps a fault name to its parameter
(an empty string when it takes none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pytest_aksai.sim.contract import FAULTS, FaultSpec, UnknownFaultError, parse_fault
from pytest_aksai.sim.contract import FAULTS_CONFIGMAP as FAULTS_CONFIGMAP_NAME
from pytest_aksai.sim.contract import SIM_NAMESPACE as FAULTS_CONFIGMAP_NAMESPACE

__all__ = [
    "FAULTS",
    "FAULTS_CONFIGMAP_NAME",
    "FAULTS_CONFIGMAP_NAMESPACE",
    "ActiveFaults",
    "FaultSpec",
    "UnknownFaultError",
    "parse_fault",
]


class ActiveFaults:
    """The faults in force now. Mutated only on the simulated cluster's event loop."""

    def __init__(self, faults: Iterable[str] = ()) -> None:
        self._active: dict[str, str] = dict(parse_fault(f) for f in faults)

    def replace(self, data: Mapping[str, str]) -> None:
        """Take the whole set from the faults ConfigMap's data; unknown names are ignored."""
        self._active = {name: str(value) for name, value in data.items() if name in FAULTS}

    def is_active(self, name: str) -> bool:
        return name in self._active

    def parameter(self, name: str, default: str = "") -> str:
        value = self._active.get(name, "")
        return value or default

    def names(self) -> list[str]:
        return sorted(self._active)

    def as_data(self) -> dict[str, str]:
        return dict(self._active)
