"""The public surface: every name in `pytest_aksai.__all__` resolves, and public types say where they live."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pytest_aksai

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(pytest_aksai.__all__))
def test_every_public_name_resolves_and_types_name_the_package(name: str) -> None:
    value = getattr(pytest_aksai, name)
    if isinstance(value, type):
        assert value.__module__ == "pytest_aksai", f"{name} reports module {value.__module__}"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = pytest_aksai.Nope  # type: ignore[attr-defined]


def test_importing_the_package_and_the_plugin_loads_no_client_code() -> None:
    code = (
        "import sys, pytest_aksai, pytest_aksai.plugin, pytest_aksai.kube; "
        "print(sorted(m for m in ('kubernetes', 'openai', 'httpx', 'aiohttp', 'azure') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_typing_file_type_checks() -> None:
    mypy = pytest.importorskip("mypy.api")
    stdout, stderr, status = mypy.run(["--strict", str(REPO / "tests" / "typing" / "public_api.py")])
    assert status == 0, stdout + stderr
