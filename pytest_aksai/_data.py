"""The project's declarative data: the top-level `fixtures/` folder (probe pods, prompt sets), shipped in the
wheel as `pytest_aksai/fixtures` (setup.py maps it, for `pip install -e .` too)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def fixture_path(relative: str) -> Path:
    """A file (or folder) under `fixtures/`, from an installed wheel or a clone alike."""
    try:
        return Path(str(resources.files("pytest_aksai.fixtures").joinpath(relative)))
    except ModuleNotFoundError:  # a source tree on sys.path without the package installed
        return Path(__file__).resolve().parents[1] / "fixtures" / relative
