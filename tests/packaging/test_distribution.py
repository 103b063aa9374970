"""What `pip install pytest-aksai` brings and ships: dependencies, extras, the bundled suites."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def _requirements() -> list[Requirement]:
    return [Requirement(r) for r in importlib.metadata.requires("pytest-aksai") or []]


def test_pytest_kubernetes_is_only_in_the_kind_extra() -> None:
    kube = [r for r in _requirements() if r.name == "pytest-kubernetes"]
    assert kube, "pytest-kubernetes is not declared at all (the [kind] extra needs it)"
    for requirement in kube:
        assert requirement.marker is not None and requirement.marker.evaluate({"extra": "kind"})
        assert not requirement.marker.evaluate({"extra": ""}), "pytest-kubernetes is a default dependency"


def test_the_azure_sdks_stay_dependencies() -> None:
    names = {r.name for r in _requirements() if r.marker is None}
    assert {"azure-identity", "azure-keyvault-secrets", "azure-servicebus"} <= names


def test_the_suites_are_the_package_pytest_aksai_suites() -> None:
    spec = importlib.util.find_spec("pytest_aksai.suites")
    assert spec is not None and spec.origin is not None
    shipped = sorted(p.name for p in Path(spec.origin).parent.glob("test_*.py"))
    assert shipped == sorted(p.name for p in (REPO / "suites").glob("test_*.py"))
    assert shipped
