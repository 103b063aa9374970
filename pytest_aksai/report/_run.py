"""Collects each check's verdict, measurements and artifacts during the run and writes them at the end."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_aksai.report._artifacts import Artifacts

SCHEMA_VERSION = 1
"""`report.json`'s schema version (docs/reference/report.md; `pytest_aksai/report/report.schema.json`):
raised on every change that removes or renames a field; fields may be added within a version."""
JSON_NAME, HTML_NAME, EVIDENCE_FOLDER = "report.json", "report.html", "evidence"
OBJECTS_FOLDER = "objects"
"""Under `evidence/`: one file per object a reported check is about, shared by the checks about it."""


@dataclass
class CheckRecord:
    nodeid: str
    outcome: str
    """passed, failed, skipped, error, xfailed, xpassed."""
    areas: list[str]
    duration_s: float
    message: str = ""
    measurements: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Name → {value, unit, clock}."""
    warnings: list[str] = field(default_factory=list)
    timelines: list[str] = field(default_factory=list)
    distributions: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    evidence: str = ""
    """The evidence text of a failed check (written to a file under `evidence/`, not into report.json)."""
    evidence_file: str | None = None
    objects: list[str] = field(default_factory=list)
    """The objects the check is about (`Workspace/inference/x`), whose evidence files the report holds."""
    object_files: list[str] = field(default_factory=list)
    """Those objects' evidence files, relative to the report folder."""

    @property
    def anchor(self) -> str:
        return anchor_of(self.nodeid)


def anchor_of(nodeid: str) -> str:
    """The id of a check's section in report.html (and the stem of its evidence file)."""
    return "check-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", nodeid).strip("-")[:150]


def _merged(previous: list[str], new: list[str]) -> list[str]:
    return previous + [x for x in new if x not in previous]


@dataclass
class RunReport:
    run_id: str
    cluster: str
    provider: str
    settings: dict[str, dict[str, Any]]
    """Knob → {value, source}."""
    plugin_version: str = ""
    context: str = ""
    server_version: str = ""
    server_url: str = ""
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    checks: dict[str, CheckRecord] = field(default_factory=dict)
    cleanup: dict[str, Any] = field(default_factory=dict)
    artifacts: Artifacts = field(default_factory=Artifacts)
    object_evidence: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Object (`Kind/ns/name`) → (file stem, redacted text): read once, when a check about it is recorded."""

    def record(self, record: CheckRecord) -> None:
        """Record a phase's verdict; a check's setup, call and teardown add up to one verdict, the worst."""
        previous = self.checks.get(record.nodeid)
        if previous is None or record.outcome in ("failed", "error") or previous.outcome == "passed":
            if previous is not None:
                record.duration_s += previous.duration_s
                record.measurements = {**previous.measurements, **record.measurements}
                record.warnings = previous.warnings + record.warnings
                record.timelines = _merged(previous.timelines, record.timelines)
                record.distributions = _merged(previous.distributions, record.distributions)
                record.tables = _merged(previous.tables, record.tables)
                record.evidence = record.evidence or previous.evidence
                record.objects = _merged(previous.objects, record.objects)
            self.checks[record.nodeid] = record

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for check in self.checks.values():
            counts[check.outcome] = counts.get(check.outcome, 0) + 1
        return counts

    def by_area(self) -> dict[str, dict[str, int]]:
        areas: dict[str, dict[str, int]] = {}
        for check in self.checks.values():
            for area in check.areas or ["other"]:
                counts = areas.setdefault(area, {})
                counts[check.outcome] = counts.get(check.outcome, 0) + 1
        return dict(sorted(areas.items()))

    def _write_objects(self, evidence: Path, names: list[str]) -> dict[str, str]:
        """Write each object's evidence file once; object → its file, relative to the report folder."""
        files: dict[str, str] = {}
        for name in names:
            found = self.object_evidence.get(name)
            if found is None:
                continue
            stem, text = found
            path = evidence / OBJECTS_FOLDER / f"{stem}.txt"
            if not path.exists():
                path.parent.mkdir(exist_ok=True)
                path.write_text(text, encoding="utf-8")
            files[name] = f"{EVIDENCE_FOLDER}/{OBJECTS_FOLDER}/{path.name}"
        return files

    def as_dict(self, finished: str | None = None) -> dict[str, Any]:
        checks = []
        for check in self.checks.values():
            entry = asdict(check)
            del entry["evidence"]
            entry["section"] = f"{HTML_NAME}#{check.anchor}"
            checks.append(entry)
        artifacts = self.artifacts.as_dict()
        return {
            "schema_version": SCHEMA_VERSION,
            "run": {
                "id": self.run_id,
                "cluster": self.cluster,
                "provider": self.provider,
                "context": self.context,
                "server_url": self.server_url,
                "server_version": self.server_version,
                "plugin_version": self.plugin_version,
                "started": self.started,
                "finished": finished or datetime.now(UTC).isoformat(timespec="seconds"),
                "settings": self.settings,
            },
            "counts": self.counts(),
            "areas": self.by_area(),
            "checks": checks,
            **artifacts,
            "cost": self.artifacts.cost.as_dict(),
            "cleanup": self.cleanup,
        }

    def write(self, folder: Path, *, all_evidence: bool = False) -> list[Path]:
        """Write report.json, report.html and the evidence files of failed checks (of all with
        `all_evidence`); return report.json's and report.html's paths."""
        from pytest_aksai.report._html import render

        folder.mkdir(parents=True, exist_ok=True)
        evidence = folder / EVIDENCE_FOLDER
        for check in self.checks.values():
            wanted = check.outcome in ("failed", "error") or all_evidence
            if wanted:
                evidence.mkdir(exist_ok=True)
                object_files = self._write_objects(evidence, check.objects)
                check.object_files = list(object_files.values())
                path = evidence / f"{check.anchor}.txt"
                measured = "\n".join(
                    f"{name} = {m['value']} {m['unit']}".rstrip() for name, m in check.measurements.items()
                )
                objects = "\n".join(f"{name}: {file}" for name, file in object_files.items())
                objects = (
                    f"objects involved (YAML, events, pod log tails; paths from the report folder):\n{objects}"
                    if objects
                    else ""
                )
                text = "\n\n".join(
                    part
                    for part in (
                        f"{check.nodeid}: {check.outcome}",
                        check.message,
                        measured,
                        objects,
                        check.evidence,
                    )
                    if part
                )
                path.write_text(text + "\n", encoding="utf-8")
                check.evidence_file = f"{EVIDENCE_FOLDER}/{path.name}"
        data = self.as_dict()
        json_path, html_path = folder / JSON_NAME, folder / HTML_NAME
        json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        html_path.write_text(render(data), encoding="utf-8")
        return [json_path, html_path]
