"""Markers and the safety gates on live clusters."""

from __future__ import annotations

import pytest

from pytest_aksai._areas import AREAS, PLUGIN_MARKERS, SAFETY_MARKERS

GATED = """
import pytest

@pytest.mark.keda
@pytest.mark.disruptive
def test_scales():
    pass

@pytest.mark.nap
@pytest.mark.costly
def test_provisions():
    pass

@pytest.mark.api
def test_reads():
    pass
"""


def test_markers_lists_every_area_and_safety_class(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    assert result.ret == 0
    text = result.stdout.str()
    assert [a.name for a in AREAS] == ["kaito", "api", "sizing", "keda", "nap", "identity", "load"]
    for area in AREAS:
        assert f"@pytest.mark.{area.name}: {area.description} ({area.docs})" in text
    for name, description in {**SAFETY_MARKERS, **PLUGIN_MARKERS}.items():
        assert f"@pytest.mark.{name}: {description}" in text


def test_strict_markers_accepts_every_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(GATED)
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=3)


def test_safety_markers_run_on_sim(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(GATED)
    pytester.runpytest().assert_outcomes(passed=3)


def test_safety_markers_are_refused_on_a_live_profile(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", aksai='[clusters.lab]\nprovider = "aks"\n')
    pytester.makepyfile(GATED)
    result = pytester.runpytest("--aksai-cluster=lab", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    toml = pytester.path / "aksai.toml"
    result.stdout.fnmatch_lines(
        [
            f"SKIPPED [[]1[]] test_safety_markers_are_refused_on_a_live_profile.py:3: disruptive check refused on "
            f"cluster 'lab': it changes shared cluster state. Allow it with allow = [[]\"disruptive\"[]] in "
            f"[[]clusters.lab[]] of {toml}, or --aksai-allow disruptive",
            "SKIPPED [[]1[]] *: costly check refused on cluster 'lab': it provisions GPU capacity. Allow it with "
            'allow = [[]"costly"[]] in [[]clusters.lab[]] of *, or --aksai-allow costly',
        ]
    )


def test_allowing_one_class_keeps_the_other_refused(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", aksai='[clusters.lab]\nprovider = "aks"\nallow = ["disruptive"]\n')
    pytester.makepyfile(GATED)
    pytester.runpytest("--aksai-cluster=lab").assert_outcomes(passed=2, skipped=1)
    pytester.runpytest("--aksai-cluster=lab", "--aksai-allow=costly,disruptive").assert_outcomes(passed=3)
