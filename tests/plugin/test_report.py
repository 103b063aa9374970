"""The run report written by --aksai-report."""

from __future__ import annotations

import json

import pytest

CHECKS = """
import pytest

@pytest.mark.kaito
def test_good(record_property):
    record_property("cold_start_model_load_s", 42.0)

@pytest.mark.api
def test_bad():
    assert 1 == 2, "the model answered 500"

@pytest.mark.nap
def test_skipped():
    pytest.skip("KEDA is not installed")
"""


def test_report_has_a_verdict_and_measurements_per_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CHECKS)
    result = pytester.runpytest("--aksai-report=out")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines([f"aksai: report written to {pytester.path / 'out' / 'aksai-report.json'}"])
    data = json.loads((pytester.path / "out" / "aksai-report.json").read_text())
    checks = {c["nodeid"].split("::")[-1]: c for c in data["checks"]}
    assert checks["test_good"]["outcome"] == "passed"
    assert checks["test_good"]["areas"] == ["kaito"]
    assert checks["test_good"]["measurements"] == {"cold_start_model_load_s": 42.0}
    assert checks["test_bad"]["outcome"] == "failed"
    assert "the model answered 500" in checks["test_bad"]["message"]
    assert checks["test_skipped"]["outcome"] == "skipped"
    assert checks["test_skipped"]["message"] == "Skipped: KEDA is not installed"
    assert data["counts"] == {"passed": 1, "failed": 1, "skipped": 1}
    assert data["cluster"] == "sim"
    html = (pytester.path / "out" / "aksai-report.html").read_text()
    assert "the model answered 500" in html
    assert "<td>failed</td>" in html


def test_no_report_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CHECKS)
    pytester.runpytest()
    assert not (pytester.path / "out").exists()


def test_report_lists_the_warnings_of_each_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import warnings
        from pytest_aksai import AksaiWarning

        def test_with_caveat():
            warnings.warn(AksaiWarning("gpu_cache_usage_perc was renamed"))
        """)
    pytester.runpytest("--aksai-report=out").assert_outcomes(passed=1)
    data = json.loads((pytester.path / "out" / "aksai-report.json").read_text())
    assert data["checks"][0]["warnings"] == ["AksaiWarning: gpu_cache_usage_perc was renamed"]


def test_strict_turns_aksai_warnings_into_failures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import warnings
        from pytest_aksai import AksaiWarning

        def test_with_caveat():
            warnings.warn(AksaiWarning("gpu_cache_usage_perc was renamed"))
        """)
    pytester.runpytest("--aksai-strict").assert_outcomes(failed=1)
