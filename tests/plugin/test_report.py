"""The run report written by --aksai-report: report.json (valid against its shipped schema), report.html
(self-contained, with the pictures the checks recorded) and evidence files of failed checks."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

CHECKS = """
import pytest

@pytest.mark.kaito
def test_good(aksai_measure):
    aksai_measure("cold_start_model_load_s", 42.0, clock="cluster")

@pytest.mark.api
def test_bad():
    assert 1 == 2, "the model answered 500"

@pytest.mark.nap
def test_skipped():
    pytest.skip("KEDA is not installed")
"""

LIFECYCLE = """
import pytest

@pytest.fixture(scope="session")
def lifecycle(aksai_report):
    return None

@pytest.mark.keda
def test_scales_out_and_in(aksai_report):
    timeline = aksai_report.timeline("keda/inference/vllm", "vllm: replicas", clock="cluster")
    for t, replicas in [(0, 0), (12, 1), (40, 3), (120, 1), (300, 0)]:
        timeline.sample("replicas", t, replicas)
    timeline.sample("GPU nodes", 0, 0)
    timeline.sample("GPU nodes", 60, 1)
    timeline.band("cooldown", 130, 430)
    timeline.mark(12, "first request")
    timeline.phase("provision", 0, 60)
    timeline.phase("model load", 60, 95)
    aksai_report.measure("scale_in_s", 170.0, clock="cluster")

@pytest.mark.keda
def test_no_early_scale_in(aksai_report):
    aksai_report.timeline("keda/inference/vllm")
    assert False, "KEDA scaled vllm to 0 at 300 s, inside the cooldown window (130 s to 430 s)"

@pytest.mark.load
def test_ttft(aksai_report):
    ttft = aksai_report.distribution("load/ttft", "TTFT", unit="ms")
    ttft.fill([100 + (i % 50) * 3 for i in range(500)])
    ttft.limits["SLO p95"] = 200
    table = aksai_report.table("sizing/phi4", "sizing", ["model", "GPU", "KV tokens"])
    table.rows.append(["phi-4-mini", "T4", 51000])
    aksai_report.cost.add_gpu_use("Standard_NC4as_T4_v3", 12.5, 0.11, "probe")
"""


def _report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / "report.json").read_text())
    schema = json.loads(resources.files("pytest_aksai.report").joinpath("report.schema.json").read_text())
    jsonschema.validate(data, schema)
    return data


def test_report_has_a_verdict_and_measurements_per_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CHECKS)
    result = pytester.runpytest("--aksai-report=out")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines([f"aksai: report written to {pytester.path / 'out' / 'report.json'}"])
    data = _report(pytester.path / "out")
    checks = {c["nodeid"].split("::")[-1]: c for c in data["checks"]}
    assert checks["test_good"]["outcome"] == "passed"
    assert checks["test_good"]["areas"] == ["kaito"]
    assert checks["test_good"]["measurements"] == {
        "cold_start_model_load_s": {"value": 42.0, "unit": "s", "clock": "cluster"}
    }
    assert checks["test_bad"]["outcome"] == "failed"
    assert "the model answered 500" in checks["test_bad"]["message"]
    assert checks["test_skipped"]["outcome"] == "skipped"
    assert checks["test_skipped"]["message"] == "Skipped: KEDA is not installed"
    assert data["counts"] == {"passed": 1, "failed": 1, "skipped": 1}
    assert data["areas"]["api"] == {"failed": 1}
    assert data["run"]["cluster"] == "sim"
    assert data["run"]["settings"]["cluster"] == {"value": "sim", "source": "default"}
    assert data["run"]["settings"]["report"]["source"] == "option"
    html = (pytester.path / "out" / "report.html").read_text()
    assert "the model answered 500" in html
    assert f"id='{checks['test_bad']['section'].split('#')[1]}'" in html


def test_failed_checks_get_an_evidence_file_and_passed_ones_do_not(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CHECKS)
    pytester.runpytest("--aksai-report=out")
    data = _report(pytester.path / "out")
    checks = {c["nodeid"].split("::")[-1]: c for c in data["checks"]}
    evidence = pytester.path / "out" / checks["test_bad"]["evidence_file"]
    assert "the model answered 500" in evidence.read_text()
    assert checks["test_good"]["evidence_file"] is None
    pytester.runpytest("--aksai-report=all", "--aksai-report-all")
    every = _report(pytester.path / "all")
    assert all(c["evidence_file"] for c in every["checks"] if c["outcome"] != "skipped" or c["message"])


def test_junit_properties_hold_the_measurements_and_a_link_to_the_section(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CHECKS)
    pytester.runpytest("--aksai-report=out", "--junitxml=junit.xml")
    tree = ET.parse(pytester.path / "junit.xml")
    good = next(case for case in tree.iter("testcase") if case.get("name") == "test_good")
    properties = {p.get("name"): p.get("value") for p in good.iter("property")}
    assert properties["cold_start_model_load_s"] == "42.0"
    assert re.fullmatch(r"report\.html#check-.*test_good", properties["aksai_report_section"] or "")


def test_lifecycle_pictures_are_drawn_where_the_checks_are(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(LIFECYCLE)
    pytester.runpytest("--aksai-report=out").assert_outcomes(passed=2, failed=1)
    data = _report(pytester.path / "out")
    timeline = data["timelines"]["keda/inference/vllm"]
    assert [p["value"] for p in timeline["series"]["replicas"]["points"]] == [0, 1, 3, 1, 0]
    assert timeline["bands"] == [{"label": "cooldown", "start": 130, "end": 430, "kind": "expected"}]
    checks = {c["nodeid"].split("::")[-1]: c for c in data["checks"]}
    assert checks["test_no_early_scale_in"]["timelines"] == ["keda/inference/vllm"]
    assert (
        data["distributions"]["load/ttft"]["percentiles"]["p95"] == 241
    )  # 10 copies of each of 100, 103, …, 247
    assert data["cost"]["by_sku"] == {"Standard_NC4as_T4_v3": {"node_minutes": 12.5, "usd": 0.11}}
    html = (pytester.path / "out" / "report.html").read_text()
    for kind in ("timeline", "waterfall", "histogram"):
        figure = re.search(rf"<figure class='plot {kind}'>(.*?)</figure>", html, re.S)
        assert figure is not None, kind
        assert "<path" in figure.group(1), kind
    assert html.count("<figure class='plot timeline'>") == 1, "a shared timeline is drawn once, then linked"
    assert "cooldown" in html and "SLO p95" in html and "Standard_NC4as_T4_v3" in html
    assert not re.search(r"(src|href)=['\"]https?://", html), "the page must open without a network"
    assert "<script" not in html


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
    data = _report(pytester.path / "out")
    assert data["checks"][0]["warnings"] == ["AksaiWarning: gpu_cache_usage_perc was renamed"]


def test_strict_turns_aksai_warnings_into_failures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import warnings
        from pytest_aksai import AksaiWarning

        def test_with_caveat():
            warnings.warn(AksaiWarning("gpu_cache_usage_perc was renamed"))
        """)
    pytester.runpytest("--aksai-strict").assert_outcomes(failed=1)


SIZING = """
import pytest

ROW = {"workload": "Workspace inference/phi4", "basis": "sizing at max-model-len 4,096", "model": "phi-4-mini",
       "GPU": "Standard_NC4as_T4_v3", "KV capacity tokens": 51239, "predicted concurrency": 12}

@pytest.mark.sizing
def test_static(aksai_report):
    aksai_report.sizing(ROW)
    aksai_report.sizing({**ROW, "predicted concurrency": 12.0})  # the same workload and basis: replaced

@pytest.mark.load
def test_observed(aksai_report):
    aksai_report.sizing({**ROW, "basis": "load run: 16 in flight", "predicted concurrency": 12,
                         "observed concurrency": "12 running when requests began to wait"})

@pytest.mark.load
def test_bad_column(aksai_report):
    aksai_report.sizing({"workload": "w", "colour": "red"})
"""


def test_sizing_table_has_a_row_per_workload_and_basis_near_the_top(pytester: pytest.Pytester) -> None:
    from pytest_aksai.report import SIZING_COLUMNS

    pytester.makepyfile(SIZING)
    pytester.runpytest("--aksai-report=out").assert_outcomes(passed=2, failed=1)
    data = _report(pytester.path / "out")
    table = data["tables"]["sizing"]
    assert table["columns"] == list(SIZING_COLUMNS)
    rows = {(r[0], r[1]): dict(zip(table["columns"], r, strict=True)) for r in table["rows"]}
    assert len(table["rows"]) == 2
    static = rows[("Workspace inference/phi4", "sizing at max-model-len 4,096")]
    assert static["KV capacity tokens"] == 51239 and static["observed concurrency"] == "-"
    observed = rows[("Workspace inference/phi4", "load run: 16 in flight")]
    assert observed["observed concurrency"] == "12 running when requests began to wait"
    checks = {c["nodeid"].split("::")[-1]: c for c in data["checks"]}
    assert "not a column of the sizing table: colour" in checks["test_bad_column"]["message"]
    html = (pytester.path / "out" / "report.html").read_text()
    assert html.index("id='sizing'") < html.index("id='area-load'"), (
        "the sizing table comes before the checks"
    )
    assert html.count("12 running when requests began to wait") == 1
