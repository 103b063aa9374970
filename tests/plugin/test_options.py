"""Options, ini keys, environment variables and their resolution order."""

from __future__ import annotations

import re

import pytest

from pytest_aksai._knobs import KNOBS

SHOW_SETTINGS = """
def test_show(aksai_settings):
    s = aksai_settings
    print("SETTINGS", s.cluster, s.timeout_scale, sorted(s.allow), s.keep, s.strict, s.context,
          dict(s.sources))
"""


def _settings_line(result: pytest.RunResult) -> str:
    line = next(line for line in result.outlines if "SETTINGS " in line)
    return line[line.index("SETTINGS ") :]


def test_help_lists_every_option_with_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    text = result.stdout.str()
    assert "pytest-aksai: conformance of AKS LLM inference clusters" in text
    for knob in KNOBS:
        assert knob.option in text, knob.option
        assert f"{knob.ini} (" in text, knob.ini
    for name in (
        "--aksai-cluster",
        "--aksai-config",
        "--aksai-kubeconfig",
        "--aksai-context",
        "--aksai-namespace",
        "--aksai-timeout-scale",
        "--aksai-allow",
        "--aksai-keep",
        "--aksai-report",
        "--aksai-manifests",
        "--aksai-strict",
    ):
        assert name in text


def test_help_works_even_with_a_broken_profile_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", aksai="[clusters.lab\n")
    result = pytester.runpytest("--help")
    assert result.ret == 0
    assert "--aksai-cluster" in result.stdout.str()


def test_defaults_come_from_the_builtin_sim_profile(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("-s")
    assert result.ret == 0
    line = _settings_line(result)
    assert line.startswith("SETTINGS sim 1.0 ['costly', 'disruptive'] False False None")
    assert "'cluster': 'default'" in line


def test_option_beats_env_beats_ini_beats_profile(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(
        ".toml", aksai='[clusters.lab]\nprovider = "sim"\ntimeout_scale = 4.0\ncontext = "from-profile"\n'
    )
    pytester.makeini("[pytest]\naksai_cluster = lab\naksai_timeout_scale = 3\n")
    pytester.makepyfile(SHOW_SETTINGS)

    line = _settings_line(pytester.runpytest("-s"))
    assert line.startswith("SETTINGS lab 3.0")
    assert "'timeout-scale': 'ini aksai_timeout_scale'" in line
    assert "'context': 'profile lab'" in line
    assert "'cluster': 'ini aksai_cluster'" in line

    monkeypatch.setenv("AKSAI_TIMEOUT_SCALE", "2")
    line = _settings_line(pytester.runpytest("-s"))
    assert line.startswith("SETTINGS lab 2.0")
    assert "'timeout-scale': 'env AKSAI_TIMEOUT_SCALE'" in line

    line = _settings_line(pytester.runpytest("-s", "--aksai-timeout-scale=1.5"))
    assert line.startswith("SETTINGS lab 1.5")
    assert "'timeout-scale': 'option'" in line


def test_profile_value_used_when_nothing_overrides_it(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", aksai='[clusters.lab]\nprovider = "sim"\ntimeout_scale = 4.0\n')
    pytester.makepyfile(SHOW_SETTINGS)
    line = _settings_line(pytester.runpytest("-s", "--aksai-cluster=lab"))
    assert line.startswith("SETTINGS lab 4.0")
    assert "'timeout-scale': 'profile lab'" in line


def test_bool_and_list_knobs_from_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKSAI_KEEP", "yes")
    monkeypatch.setenv("AKSAI_STRICT", "0")
    monkeypatch.setenv("AKSAI_ALLOW", "costly, disruptive")
    pytester.makepyfile(SHOW_SETTINGS)
    line = _settings_line(pytester.runpytest("-s"))
    assert line.startswith("SETTINGS sim 1.0 ['costly', 'disruptive'] True False")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--aksai-timeout-scale=fast"],
            {},
            "ERROR: --aksai-timeout-scale (from option) has the bad value 'fast'; "
            "valid values are a positive number such as 0.5, 1 or 3. Use a larger factor on slow clusters, a smaller "
            "one to fail fast.",
        ),
        (
            ["--aksai-timeout-scale=-1"],
            {},
            "ERROR: --aksai-timeout-scale (from option) has the bad value '-1'; "
            "valid values are a positive number such as 0.5, 1 or 3.",
        ),
        (
            [],
            {"AKSAI_KEEP": "maybe"},
            "ERROR: --aksai-keep (from env AKSAI_KEEP) has the bad value 'maybe'; valid "
            "values are 1/true/yes/on or 0/false/no/off. Set it to one of those.",
        ),
        (
            ["--aksai-allow=disruptive,everything"],
            {},
            "ERROR: --aksai-allow (from option) has the bad value "
            "'disruptive,everything'; valid values are a comma-separated subset of disruptive,costly. Remove everything.",
        ),
        (
            ["--aksai-sim-fault=cosmic-rays"],
            {},
            "ERROR: --aksai-sim-fault (from option) has the bad value "
            "'cosmic-rays': unknown simulated-cluster fault 'cosmic-rays'; known faults: api-flaky,",
        ),
        (["--aksai-manifests=nowhere/"], {}, "ERROR: --aksai-manifests (from option) names "),
    ],
)
def test_bad_values_are_usage_errors_with_one_paragraph(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert message in err
    assert "Traceback" not in err
    assert len([line for line in result.errlines if line.startswith("ERROR:")]) == 1


def test_report_header_names_each_value_and_its_source(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest("--aksai-timeout-scale=2")
    header = next(line for line in result.outlines if line.startswith("aksai: "))
    assert header.startswith(
        "aksai: cluster=sim (default), provider=sim (profile sim), context=aksai-sim (default), "
        "allow=all (sim) (profile sim), timeout-scale=2.0 (option), run=r"
    )


def test_faults_command_lists_every_fault_the_option_accepts() -> None:
    import subprocess
    import sys

    from pytest_aksai.sim._faults import FAULTS

    out = subprocess.run(
        [sys.executable, "-m", "pytest_aksai.sim", "faults"], capture_output=True, text=True, check=True
    ).stdout
    listed = {line.split()[0] for line in out.splitlines()}
    assert listed == set(FAULTS)
    # The names line up in one column, as wide as the longest name.
    assert re.search(
        r"^vllm-buffered-stream +streamed responses arrive all at once at the end$", out, re.M
    ), out
