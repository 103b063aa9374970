"""The run report's pictures on a real broken run: with `keda-early-scale-in` the KEDA timeline in report.json
has the replicas reaching 0 inside the cooldown band, and report.html draws that band where the failed check
is — the picture docs/how-to/read-the-report.md shows, backed by an assertion."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.faults._matrix import run_suites
from tests.faults.test_keda_faults import HTTP_SCALER, _case

SCALE_IN_CHECK = "test_no_scale_in_before_cooldown"


def _timeline_of(data: dict[str, Any], check: dict[str, Any]) -> dict[str, Any]:
    keys = [k for k in check["timelines"] if k in data["timelines"]]
    assert keys, f"{check['nodeid']} links no timeline: {check['timelines']}"
    timeline: dict[str, Any] = data["timelines"][keys[0]]
    return timeline


@pytest.mark.timeout(900)
def test_early_scale_in_shows_inside_the_cooldown_band(tmp_path: Path) -> None:
    run_suites(tmp_path, _case(HTTP_SCALER, "keda-early-scale-in"))
    folder = tmp_path / "report"
    data = json.loads((folder / "report.json").read_text())
    checks = {c["nodeid"].split("::")[-1].split("[")[0]: c for c in data["checks"]}
    check = checks[SCALE_IN_CHECK]
    assert check["outcome"] == "failed", check["message"]
    timeline = _timeline_of(data, check)
    cooldowns = [b for b in timeline["bands"] if b["label"].startswith("cooldown")]
    assert len(cooldowns) == 1, timeline["bands"]
    band = cooldowns[0]
    demand_stops = [m["t"] for m in timeline["marks"] if m["label"] == "demand stops"]
    assert demand_stops == [band["start"]], (demand_stops, band)
    replicas = timeline["series"]["replicas"]["points"]
    # After the demand stops, the first time the replicas reach 0 falls inside the band (before its end):
    # KEDA scaled in before the cooldown was over.
    to_zero = [p["t"] for p in replicas if p["value"] == 0 and p["t"] >= band["start"]]
    assert to_zero, replicas
    assert band["start"] <= to_zero[0] < band["end"], (to_zero[0], band)
    assert any(p["value"] >= 1 and p["t"] < band["start"] for p in replicas), "no replica served the demand"
    # The page draws it where the failed check is: the timeline's figure, with the band's label, in the section.
    page = (folder / "report.html").read_text()
    section = page[page.index(f"id='{check['section'].split('#', 1)[1]}'") :]
    section = section[: section.index("</section>")]
    assert "figure class='plot timeline'" in section
    figure = section[section.index("figure class='plot timeline'") :]
    figure = figure[: figure.index("</figure>")]
    assert band["label"] in figure, "the cooldown band is not labelled in the timeline"
    assert len(re.findall(r"<path", figure)) > 5, "the timeline has no drawn lines or bands"
    # The failed check's evidence names the objects involved, each in a file of its own.
    evidence = (folder / check["evidence_file"]).read_text()
    assert "objects involved" in evidence
    for file in check["object_files"]:
        assert (folder / file).is_file(), file
    assert any("HTTPScaledObject" in f for f in check["object_files"]), check["object_files"]
