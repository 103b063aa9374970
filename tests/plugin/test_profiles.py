"""Cluster profiles: files, validation, and the errors a user sees."""

from __future__ import annotations

import pytest

SHOW = "def test_show(aksai_settings):\n    print('PROFILE', aksai_settings.profile.model_dump_json())\n"


def _error(result: pytest.RunResult) -> str:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.errlines
    assert "Traceback" not in result.stderr.str()
    return errors[0]


def test_unknown_profile_lists_the_known_ones(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml", aksai='[clusters.lab]\nprovider = "aks"\n[clusters.staging]\nprovider = "aks"\n'
    )
    error = _error(pytester.runpytest("--aksai-cluster=nope"))
    assert error == (
        f"ERROR: Unknown cluster profile 'nope' given to --aksai-cluster: known profiles in "
        f"{pytester.path / 'aksai.toml'} are: lab, sim, staging. Use one of those, or add a table [clusters.nope] "
        f'with at least provider = "aks" | "kind" | "sim" to {pytester.path / "aksai.toml"}.'
    )


def test_unknown_profile_without_any_config_file(pytester: pytest.Pytester) -> None:
    error = _error(pytester.runpytest("--aksai-cluster=nope"))
    assert "known profiles (no aksai.toml or [tool.aksai] found) are: sim." in error


def test_malformed_toml_names_file_and_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", aksai='[clusters.lab]\nprovider = "aks"\ncontext = lab\n')
    error = _error(pytester.runpytest("--aksai-cluster=lab"))
    assert error.startswith(
        f"ERROR: {pytester.path / 'aksai.toml'}:3: the aksai config file is not valid TOML ("
    )


def test_unknown_key_names_file_line_key_and_valid_keys(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", aksai='[clusters.lab]\nprovider = "aks"\n\ncontxt = "x"\n')
    error = _error(pytester.runpytest("--aksai-cluster=lab"))
    from pytest_aksai._profiles import ClusterProfile

    valid = ", ".join(
        sorted(ClusterProfile.model_fields)
    )  # every area adds its keys: not listed by hand here
    assert {"context", "provider", "workspaces"} <= set(ClusterProfile.model_fields)
    assert error == (
        f"ERROR: {pytester.path / 'aksai.toml'}:4: unknown key 'contxt' in profile 'lab'; valid keys there are: "
        f"{valid}. Remove it or fix its spelling."
    )


def test_bad_value_in_a_nested_table(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml", aksai='[clusters.lab]\nprovider = "aks"\n[clusters.lab.timeouts]\nnode_provision = -5\n'
    )
    error = _error(pytester.runpytest("--aksai-cluster=lab"))
    assert error == (
        f"ERROR: {pytester.path / 'aksai.toml'}:4: key 'timeouts.node_provision' of profile 'lab' has the bad value -5: "
        "Input should be greater than 0."
    )


def test_bad_provider_and_missing_provider(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", aksai='[clusters.lab]\nprovider = "gke"\n[clusters.other]\ncontext = "x"\n')
    error = _error(pytester.runpytest("--aksai-cluster=lab"))
    assert error == (
        f"ERROR: {pytester.path / 'aksai.toml'}:2: key 'provider' of profile 'lab' has the bad value 'gke': "
        "Input should be 'aks', 'kind' or 'sim'."
    )


def test_missing_provider(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", aksai='[clusters.other]\ncontext = "x"\n')
    error = _error(pytester.runpytest("--aksai-cluster=other"))
    assert error == (
        f"ERROR: {pytester.path / 'aksai.toml'}:1: profile 'other' is missing the required key 'provider'; "
        'add for example provider = "aks" (valid: aks, kind, sim).'
    )


def test_unknown_top_level_table(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", aksai='[cluster.lab]\nprovider = "aks"\n')
    error = _error(pytester.runpytest())
    assert error == (
        f"ERROR: {pytester.path / 'aksai.toml'}:1: unknown table or key 'cluster'; the only valid one is clusters, "
        "holding one table per cluster profile ([clusters.<name>])."
    )


def test_missing_config_file_given_explicitly(pytester: pytest.Pytester) -> None:
    error = _error(pytester.runpytest("--aksai-config=missing.toml"))
    assert error.startswith(f"ERROR: The aksai config file {pytester.path / 'missing.toml'} does not exist")


def test_profiles_from_pyproject_tool_table(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.aksai.clusters.lab]\nprovider = "aks"\nkubeconfig = "kc/lab.yaml"\nallow = ["disruptive"]\n'
    )
    pytester.makepyfile(SHOW)
    result = pytester.runpytest("-s", "--aksai-cluster=lab")
    assert result.ret == 0
    line = next(line for line in result.outlines if "PROFILE " in line)
    assert f'"kubeconfig":"{pytester.path / "kc" / "lab.yaml"}"' in line
    assert '"allow":["disruptive"]' in line


def test_pyproject_errors_name_the_tool_table(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.aksai.clusters.lab]\nprovider = "aks"\nallow = ["everything"]\n')
    error = _error(pytester.runpytest("--aksai-cluster=lab"))
    assert error == (
        f"ERROR: {pytester.path / 'pyproject.toml'}:3: key 'allow[0]' of profile 'lab' has the bad value "
        "'everything': Input should be 'disruptive' or 'costly'."
    )


def test_aksai_toml_wins_over_pyproject(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.aksai.clusters.lab]\nprovider = "aks"\n')
    pytester.makefile(".toml", aksai='[clusters.lab]\nprovider = "kind"\n')
    pytester.makepyfile(SHOW)
    line = next(x for x in pytester.runpytest("-s", "--aksai-cluster=lab").outlines if "PROFILE " in x)
    assert '"provider":"kind"' in line


def test_example_profile_in_docs_is_valid() -> None:
    import tomllib
    from pathlib import Path

    from pytest_aksai._profiles import ClusterProfile

    example = Path(__file__).parents[2] / "docs" / "aksai.example.toml"
    data = tomllib.loads(example.read_text())
    assert "lab" in data["clusters"]
    for raw in data["clusters"].values():
        ClusterProfile.model_validate(raw)


def test_workspaces_must_be_namespace_slash_name(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml", aksai='[clusters.lab]\nprovider = "aks"\nworkspaces = ["workspace-phi4-mini"]\n'
    )
    error = _error(pytester.runpytest("--aksai-cluster=lab"))
    assert error == (
        f"ERROR: {pytester.path / 'aksai.toml'}:3: key 'workspaces[0]' of profile 'lab' has the bad value "
        "'workspace-phi4-mini': expected namespace/name (lowercase DNS names), e.g. \"inference/workspace-phi4-mini\"."
    )
