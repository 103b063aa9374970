"""Collects each check's verdict and measurements during the run and writes them at the end."""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class CheckRecord:
    nodeid: str
    outcome: str
    """passed, failed, skipped, error, xfailed, xpassed."""
    areas: list[str]
    duration_s: float
    message: str = ""
    measurements: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    run_id: str
    cluster: str
    provider: str
    settings: dict[str, str]
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    checks: dict[str, CheckRecord] = field(default_factory=dict)
    cleanup: dict[str, Any] = field(default_factory=dict)

    def record(self, record: CheckRecord) -> None:
        previous = self.checks.get(record.nodeid)
        if previous is None or record.outcome in ("failed", "error") or previous.outcome == "passed":
            if previous is not None:
                record.duration_s += previous.duration_s
                record.measurements = {**previous.measurements, **record.measurements}
                record.warnings = previous.warnings + record.warnings
            self.checks[record.nodeid] = record

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for check in self.checks.values():
            counts[check.outcome] = counts.get(check.outcome, 0) + 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = [asdict(c) for c in self.checks.values()]
        data["counts"] = self.counts()
        data["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        return data

    def write(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        json_path, html_path = folder / "aksai-report.json", folder / "aksai-report.html"
        data = self.as_dict()
        json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        html_path.write_text(_html(data), encoding="utf-8")
        return [json_path, html_path]


def _html(data: dict[str, Any]) -> str:
    def esc(value: Any) -> str:
        return html.escape(str(value))

    rows = []
    for check in data["checks"]:
        measurements = ", ".join(f"{k}={v}" for k, v in check["measurements"].items())
        rows.append(
            f"<tr class='{esc(check['outcome'])}'><td>{esc(check['nodeid'])}</td><td>{esc(check['outcome'])}</td>"
            f"<td>{esc(' '.join(check['areas']))}</td><td>{check['duration_s']:.2f}</td>"
            f"<td>{esc(measurements)}</td><td><pre>{esc(check['message'])}</pre></td></tr>"
        )
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(data["counts"].items()))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>pytest-aksai report {esc(data["run_id"])}</title>
<style>body{{font-family:sans-serif}}td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}
table{{border-collapse:collapse}}.failed,.error{{background:#fdd}}.passed{{background:#dfd}}
.skipped{{background:#eee}}pre{{white-space:pre-wrap;margin:0}}</style></head><body>
<h1>pytest-aksai: cluster {esc(data["cluster"])} ({esc(data["provider"])})</h1>
<p>run {esc(data["run_id"])}, {esc(data["started"])} to {esc(data["finished"])}; {esc(counts)}</p>
<table><tr><th>check</th><th>verdict</th><th>areas</th><th>seconds</th><th>measurements</th><th>message</th></tr>
{"".join(rows)}
</table></body></html>
"""
