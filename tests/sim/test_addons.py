"""The add-on registry: scenarios name only registered add-ons, each add-on owns its CRDs and faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aksai.sim import contract
from pytest_aksai.sim._addons import REGISTRY, UnknownAddonError, resolve
from pytest_aksai.sim._scenarios import ScenarioError, load_scenario

SIM_SOURCES = Path(contract.__file__).parent


def test_unknown_addon_in_a_scenario_is_a_clear_error(tmp_path: Path) -> None:
    scenario = tmp_path / "with-keda.yaml"
    scenario.write_text(
        "extends: default\naddons: [core, kaito, vllm, karpenter, workload-identity]\n", encoding="utf-8"
    )
    with pytest.raises(
        ScenarioError, match=r"unknown add-on\(s\) 'workload-identity'.*registered add-ons: core,"
    ):
        load_scenario(str(scenario))


def test_an_addon_needs_the_addons_it_builds_on() -> None:
    with pytest.raises(
        UnknownAddonError, match=r"kaito need karpenter, vllm.*add karpenter, vllm to `addons`"
    ):
        resolve(["core", "kaito"])


def test_each_addon_serves_only_its_own_groups() -> None:
    groups = {name: {crd["spec"]["group"] for crd in spec.crds()} for name, spec in REGISTRY.items()}
    assert groups == {
        "core": set(),
        "metrics-server": set(),  # an aggregated API (an APIService), not a CRD
        "karpenter": {"karpenter.sh", "karpenter.azure.com"},
        "vllm": set(),
        "kaito": {"kaito.sh"},
        "azure": {"secrets-store.csi.x-k8s.io"},
        "prometheus": set(),
        "keda": {"keda.sh"},
        "keda-http-add-on": {"http.keda.sh"},
    }


@pytest.mark.parametrize("name", list(REGISTRY))
def test_an_addons_faults_are_consulted_inside_that_addon(name: str) -> None:
    package = SIM_SOURCES / "_addons" / REGISTRY[name].package.rsplit(".", 1)[-1]
    text = "\n".join(p.read_text(encoding="utf-8") for p in package.rglob("*.py") if p.name != "__init__.py")
    for fault in REGISTRY[name].faults:
        assert contract.FAULTS[fault].addon == name
        assert f"Fault.{fault.name}" in text, f"{name} declares {fault.value} but its code never consults it"


def test_every_addon_fault_is_declared_by_its_owner() -> None:
    declared = {fault for spec in REGISTRY.values() for fault in spec.faults}
    owned = {contract.Fault(n) for n, spec in contract.FAULTS.items() if spec.addon in REGISTRY}
    assert declared == owned
