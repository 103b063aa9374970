"""The sim ↔ plugin wire contract: cheap to import, and every registered fault is consulted by some code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_aksai.sim import contract

SIM_SOURCES = Path(contract.__file__).parent


def _sources_outside_registry() -> dict[Path, str]:
    return {
        path: path.read_text(encoding="utf-8")
        for path in SIM_SOURCES.rglob("*.py")
        if path.name not in ("contract.py", "_faults.py")
    }


@pytest.mark.parametrize("fault", list(contract.Fault))
def test_every_fault_is_consulted_by_the_sim(fault: contract.Fault) -> None:
    users = [p for p, text in _sources_outside_registry().items() if f"Fault.{fault.name}" in text]
    assert users, f"fault {fault.value!r} is registered but no sim code consults Fault.{fault.name}"


def test_every_fault_has_a_spec_and_an_owner() -> None:
    assert set(contract.FAULTS) == {f.value for f in contract.Fault}
    for spec in contract.FAULTS.values():
        assert spec.breaks and spec.addon


def test_parse_fault_names_the_option_and_the_known_faults() -> None:
    assert contract.parse_fault("vllm-wrong-served-name=foo") == (
        contract.Fault.VLLM_WRONG_SERVED_NAME,
        "foo",
    )
    with pytest.raises(
        contract.UnknownFaultError,
        match=r"^unknown simulated-cluster fault 'vllm-nope'; known faults: api-flaky, ",
    ):
        contract.parse_fault("vllm-nope")


def test_old_private_names_still_import() -> None:
    from pytest_aksai.sim._clock import DEFAULT_TIME_SCALE
    from pytest_aksai.sim._faults import UnknownFaultError, parse_fault

    assert DEFAULT_TIME_SCALE == contract.DEFAULT_TIME_SCALE
    assert parse_fault is contract.parse_fault and UnknownFaultError is contract.UnknownFaultError


def test_importing_the_sim_package_loads_no_server_code() -> None:
    code = (
        "import sys, importlib.util, types\n"
        "pkg = types.ModuleType('pytest_aksai'); pkg.__path__ = [sys.argv[1]]; sys.modules['pytest_aksai'] = pkg\n"
        "import pytest_aksai.sim, pytest_aksai.sim.contract\n"
        "heavy = [m for m in ('aiohttp', 'yaml', 'kubernetes', 'pydantic', 'pytest_aksai.sim._cluster') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    package_dir = str(SIM_SOURCES.parent)
    out = subprocess.run(
        [sys.executable, "-c", code, package_dir], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_the_running_sim_loads_no_kubernetes_client_code() -> None:
    code = (
        "import sys, types\n"
        "pkg = types.ModuleType('pytest_aksai'); pkg.__path__ = [sys.argv[1]]; sys.modules['pytest_aksai'] = pkg\n"
        "from pytest_aksai.sim import SimCluster\n"
        "with SimCluster() as sim:\n"
        "    pass\n"
        "print(','.join(m for m in sys.modules if m in ('kubernetes', 'pytest') or m.startswith(('kubernetes.', '_pytest.', 'pytest_aksai.kube'))))\n"
    )
    package_dir = str(SIM_SOURCES.parent)
    out = subprocess.run(
        [sys.executable, "-c", code, package_dir], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
