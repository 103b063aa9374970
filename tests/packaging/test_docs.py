"""The docs cannot drift from the code: reference pages list what the code defines, links resolve, and every
example in a how-to runs (shell lines against the simulated cluster, TOML through the profile loader)."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import pytest_aksai
from pytest_aksai import _knobs, _profiles

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
REFERENCE = DOCS / "reference"
HOW_TOS = sorted((DOCS / "how-to").glob("*.md"))
PAGES = [*sorted(DOCS.rglob("*.md")), REPO / "README.md"]


def _code_names(page: Path) -> set[str]:
    """Every `inline code` span of a page, and each word of one (`--aksai-x NAME` gives both)."""
    spans = re.findall(r"`([^`\n]+)`", page.read_text())
    return set(spans) | {word for span in spans for word in re.split(r"[\s=,.()\[\]]+", span) if word}


def _missing(names: set[str] | list[str], page: Path) -> list[str]:
    found = _code_names(page)
    return sorted(n for n in set(names) if n not in found)


# --- links ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(REPO)} links to missing files: {broken}"


def test_every_page_is_in_a_purpose_folder() -> None:
    loose = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")
    assert not loose, f"docs pages outside tutorial/ how-to/ reference/ explanation/: {loose}"
    for folder in ("tutorial", "how-to", "reference", "explanation"):
        assert list((DOCS / folder).glob("*.md")), f"docs/{folder}/ is empty"


# --- reference pages tied to the code ----------------------------------------------------------------------


def test_options_page_lists_every_knob_as_option_ini_key_and_environment_variable() -> None:
    names = [name for knob in _knobs.KNOBS for name in (knob.option, knob.ini, knob.env)]
    assert names
    assert not _missing(names, REFERENCE / "options.md")


def _plugin_markers() -> set[str]:
    def markers(*extra: str) -> set[str]:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "--markers", "-p", "no:cacheprovider", *extra],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            cwd=REPO / "docs",
        )
        return set(re.findall(r"^@pytest\.mark\.([A-Za-z_]\w*)", done.stdout, re.M))

    return markers() - markers("-p", "no:aksai")


def test_markers_page_lists_every_marker_the_plugin_registers() -> None:
    registered = _plugin_markers()
    assert {"api", "kaito", "disruptive", "costly"} <= registered
    assert not _missing(registered, REFERENCE / "markers.md")


def _plugin_fixtures() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=REPO / "docs",
    )
    found = re.findall(r"^(\w+)(?: \[[^]]*\])? -- (\S+)", done.stdout, re.M)
    return {name for name, where in found if "pytest_aksai" in where}


def test_fixtures_page_lists_every_fixture_of_the_plugin() -> None:
    names = _plugin_fixtures()
    assert {"aksai_cluster", "aksai_settings"} <= names
    assert not _missing(names, REFERENCE / "fixtures.md")


def test_public_api_page_lists_every_public_name() -> None:
    assert pytest_aksai.__all__
    assert not _missing(list(pytest_aksai.__all__), REFERENCE / "public-api.md")


def _keys(model: type[BaseModel]) -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        if inspect.isclass(field.annotation) and issubclass(field.annotation, BaseModel):
            keys |= _keys(field.annotation)
    return keys


def test_profile_keys_page_lists_every_key_of_the_profile_model() -> None:
    keys = _keys(_profiles.ClusterProfile)
    assert {"provider", "workspace_ready", "time_scale"} <= keys
    assert not _missing(keys, REFERENCE / "profile-keys.md")


def test_error_messages_page_names_only_types_that_exist() -> None:
    listed = re.findall(r"^\| `(\w+)`", (REFERENCE / "error-messages.md").read_text(), re.M)
    assert "WaitTimeout" in listed
    modules = [
        "pytest_aksai",
        "pytest_aksai._settings",
        "pytest_aksai._profiles",
        "pytest_aksai.kube",
        "pytest_aksai._vendor",
        "pytest_aksai.load",
        "pytest_aksai.sizing",
    ]
    known = {name for m in modules for name in listed if hasattr(importlib.import_module(m), name)}
    assert sorted(set(listed) - known) == []


def test_error_messages_page_lists_every_subclass_of_the_error_base() -> None:
    base = pytest_aksai.AksaiError
    for package in ("kube", "load", "report", "sizing", "_settings", "_profiles", "_vendor"):
        module = importlib.import_module(f"pytest_aksai.{package}")
        for name in getattr(module, "__all__", ()):
            getattr(module, name)  # lazy packages import their modules on first use
    subclasses: set[str] = set()
    todo = [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            subclasses.add(sub.__name__)
            todo.append(sub)
    assert not _missing(subclasses | {base.__name__}, REFERENCE / "error-messages.md")


def _areas() -> Any:
    try:
        return importlib.import_module("pytest_aksai._areas")
    except ModuleNotFoundError:
        pytest.skip(
            "pytest_aksai._areas does not exist yet (the plugin side of issue 9 adds the table of areas)"
        )


def test_every_area_has_its_marker_docs_page_and_fixture_module() -> None:
    areas = _areas().AREAS
    assert areas
    markers = _code_names(REFERENCE / "markers.md")
    for area in areas:
        assert area.name in markers, f"area {area.name!r} missing from docs/reference/markers.md"
        if not area.built:
            assert area.fixtures is None, f"area {area.name!r} has no checks yet but names a fixture module"
            continue
        assert (REPO / area.docs).exists(), f"area {area.name!r}: docs page {area.docs} does not exist"
        assert area.fixtures is not None, f"area {area.name!r} names no fixture module"
        importlib.import_module(area.fixtures)


# --- every example in a how-to runs -------------------------------------------------------------------------


def _blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.M | re.S)


def _profile_names(toml_blocks: list[str]) -> dict[str, str]:
    import tomllib

    names: dict[str, str] = {}
    for block in toml_blocks:
        for name, table in tomllib.loads(block).get("clusters", {}).items():
            names[name] = table.get("provider", "")
    return names


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKSAI_", "PYTEST_"))}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize("page", HOW_TOS, ids=lambda p: p.stem)
def test_how_to_examples_run(page: Path, tmp_path: Path) -> None:
    """TOML blocks load with the profile loader; `pytest`/`python -m pytest_aksai` lines run in an empty
    project with that profile: as written against the simulated cluster, or, when they name a live profile,
    collected against the simulated cluster instead (options and profile validated, nothing contacted)."""
    exercised = 0
    tomls = _blocks(page, "toml")
    for block in tomls:
        (tmp_path / "aksai.toml").write_text(block)
        loaded = _profiles.load_profiles(tmp_path / "aksai.toml", tmp_path)
        assert loaded.profiles, f"{page.name}: a TOML example defines no profile"
        exercised += 1
    if tomls:
        (tmp_path / "aksai.toml").write_text("\n".join(tomls))
    live = {name for name, provider in _profile_names(tomls).items() if provider != "sim"}
    for block in _blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if not line:
                continue
            words = shlex.split(line)
            if words[0] == "pytest":
                args = [sys.executable, "-m", "pytest", *words[1:], "-p", "no:cacheprovider", "-q"]
                cluster = next((w.split("=", 1)[1] for w in words if w.startswith("--aksai-cluster=")), "sim")
                if cluster in live:
                    args += ["--aksai-cluster=sim", "--collect-only"]
                done = _run(args, tmp_path)
                ok = (0, 5) if cluster in live else (0,)
                assert done.returncode in ok, (
                    f"{page.name}: `{line}` exited {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
                )
                if cluster not in live:
                    assert " passed" in done.stdout, (
                        f"{page.name}: `{line}` ran nothing:\n{done.stdout[-2000:]}"
                    )
            elif words[:4] == ["python", "-m", "pytest_aksai.load", "run"]:
                # A load test needs a model server: the example's plan is built and validated, not sent.
                from pytest_aksai.load._cli import plan_from_args

                plan, _ = plan_from_args(words[3:])
                assert plan.url and plan.model, f"{page.name}: `{line}` names no URL or model"
            elif words[:3] == ["python", "-m", "pytest_aksai"]:
                done = _run([sys.executable, *words[1:]], tmp_path)
                assert done.returncode == 0, f"{page.name}: `{line}` exited {done.returncode}\n{done.stderr}"
            elif words[0] in ("lint-imports",):
                done = _run(
                    [str(Path(sys.executable).with_name(words[0])), "--config", str(REPO / "pyproject.toml")],
                    REPO,
                )
                assert done.returncode == 0, f"{page.name}: `{line}` failed\n{done.stdout[-3000:]}"
            else:
                pytest.fail(f"{page.name}: `{line}` is not a command this test knows how to run; add it here")
            exercised += 1
    for block in _blocks(page, "python"):
        compile(block, f"{page.name} example", "exec")
        exercised += 1
    assert exercised, f"{page.name} has no example"


def test_ci_runs_what_the_readme_says() -> None:
    """The README's install and test commands are the ones .ci/run runs."""
    readme = "\n".join(_blocks(REPO / "README.md", "bash"))
    ci = (REPO / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]"' in readme and '-m pip install --quiet -e ".[dev]"' in ci
    assert "\npytest suites\n" in f"\n{readme}" and "\npytest\n" in f"\n{readme}\n"
    assert re.search(r'^step "README test command: pytest" pytest ', ci, re.M)
    assert "--pyargs pytest_aksai.suites" in ci
