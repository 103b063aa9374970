"""report.html: one self-contained page (no scripts, fonts or styles from elsewhere), read top to bottom:
the run, verdicts by area, the cost panel, then each area's checks with their timelines, waterfalls,
histograms and tables drawn where the check that judged them is."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from pytest_aksai.report._artifacts import SIZING_TABLE
from pytest_aksai.report._plots import histogram_svg, timeline_svg, waterfall_svg

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem auto;max-width:72rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.15rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1rem;margin:.2rem 0}table{border-collapse:collapse;margin:.4rem 0}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f5f5f5}pre{white-space:pre-wrap;margin:.3rem 0;font-size:.85rem;background:#fafafa;
padding:.4rem;border-left:3px solid #ccc}.check{border:1px solid #e3e3e3;border-radius:4px;padding:.5rem .8rem;
margin:.6rem 0}.badge{display:inline-block;padding:0 .45rem;border-radius:3px;font-size:.8rem;color:#fff;
margin-right:.4rem}.passed .badge,.badge.passed{background:#2a9d8f}.failed .badge,.badge.failed,.error .badge,
.badge.error{background:#e63946}.skipped .badge,.badge.skipped{background:#8d99ae}.xfailed .badge,
.xpassed .badge{background:#6a4c93}.failed,.error{border-left:4px solid #e63946}figure{margin:.4rem 0}
figure svg{max-width:100%;height:auto}.muted{color:#666;font-size:.85rem}details{margin:.4rem 0}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    names = list(columns)
    head = "<tr>" + "".join(f"<th>{_e(c)}</th>" for c in names) + "</tr>" if any(names) else ""
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"<span class='badge {_e(k)}'>{_e(k)} {v}</span>" for k, v in sorted(counts.items()))


def _artifact_id(kind: str, key: str) -> str:
    return f"{kind}-" + "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in key)


class _Page:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.drawn: set[tuple[str, str]] = set()

    def artifact(self, kind: str, key: str) -> str:
        """The artifact's picture the first time a check shows it; a link to it after that."""
        ident = _artifact_id(kind, key)
        if (kind, key) in self.drawn:
            return f"<p class='muted'>see <a href='#{ident}'>{_e(key)}</a> above</p>"
        found = self.data[f"{kind}s"].get(key)
        if found is None:
            return ""
        self.drawn.add((kind, key))
        if kind == "timeline":
            parts = []
            if found["series"] or found["bands"] or found["marks"]:
                parts.append(f"<figure class='plot timeline'>{timeline_svg(found)}</figure>")
            if found["phases"]:
                parts.append(f"<figure class='plot waterfall'>{waterfall_svg(found)}</figure>")
            return f"<div id='{ident}'>{''.join(parts)}</div>"
        if kind == "distribution":
            rows = [[k, f"{v:g} {found['unit']}"] for k, v in found["percentiles"].items()]
            rows += [[k, f"{v:g} {found['unit']}"] for k, v in found["limits"].items()]
            svg = histogram_svg(found) if found["bins"] else "<p class='muted'>no samples</p>"
            return f"<div id='{ident}'><figure class='plot histogram'>{svg}</figure>{_table(['', ''], rows)}</div>"
        return (
            f"<div id='{ident}'><h4>{_e(found['title'])}</h4>{_table(found['columns'], found['rows'])}</div>"
        )

    def check(self, check: dict[str, Any]) -> str:
        name = check["nodeid"].split("::", 1)[-1]
        parts = [
            f"<section class='check {_e(check['outcome'])}' id='{_e(check['section'].split('#', 1)[1])}'>",
            f"<h3><span class='badge'>{_e(check['outcome'])}</span>{_e(name)}</h3>",
            f"<div class='muted'>{_e(check['nodeid'])} · {check['duration_s']:.2f} s wall</div>",
        ]
        if check["message"]:
            parts.append(f"<pre>{_e(check['message'])}</pre>")
        if check["evidence_file"]:
            objects = "".join(
                f" · <a href='{_e(file)}'>{_e(file.rsplit('/', 1)[-1].removesuffix('.txt'))}</a>"
                for file in check.get("object_files") or []
            )
            parts.append(f"<p><a href='{_e(check['evidence_file'])}'>evidence</a>{objects}</p>")
        for warning in check["warnings"]:
            parts.append(f"<p class='muted'>warning: {_e(warning)}</p>")
        if check["measurements"]:
            rows = [
                [n, m["value"], m["unit"], m.get("clock") or ""]
                for n, m in sorted(check["measurements"].items())
            ]
            parts.append(_table(["measurement", "value", "unit", "clock"], rows))
        for kind in ("timeline", "distribution", "table"):
            parts += [self.artifact(kind, key) for key in check[f"{kind}s"]]
        parts.append("</section>")
        return "".join(parts)

    def failures(self) -> str:
        """The failed and errored checks first, each with the headline of its message, linked to its section."""
        failed = [c for c in self.data["checks"] if c["outcome"] in ("failed", "error")]
        if not failed:
            return ""
        items = "".join(
            f"<li><span class='badge {_e(c['outcome'])}'>{_e(c['outcome'])}</span>"
            f"<a href='#{_e(c['section'].split('#', 1)[1])}'>{_e(c['nodeid'].split('::', 1)[-1])}</a>: "
            f"{_e(c['message'].splitlines()[0][:300] if c['message'] else '')}</li>"
            for c in failed
        )
        return f"<h2 id='failures'>Failures</h2><ul>{items}</ul>"

    def cost(self) -> str:
        cost = self.data["cost"]
        parts = ["<h2 id='cost'>Cost</h2>"]
        if cost["by_sku"]:
            rows = [[sku, v["node_minutes"], f"${v['usd']:.2f}"] for sku, v in sorted(cost["by_sku"].items())]
            parts.append(_table(["GPU SKU", "node-minutes during the run", "dollars"], rows))
        else:
            parts.append("<p class='muted'>no GPU node time was recorded in this run</p>")
        if cost["idle_floor_usd_per_day"] is not None:
            parts.append(f"<p>idle cost floor: <b>${cost['idle_floor_usd_per_day']:.2f} per day</b></p>")
            if cost["idle_nodes"]:
                columns = list(cost["idle_nodes"][0])
                parts.append(_table(columns, [[n.get(c, "") for c in columns] for n in cost["idle_nodes"]]))
        parts += [f"<p class='muted'>{_e(note)}</p>" for note in cost["notes"]]
        if cost["breakeven"]:
            parts.append(_table(["break-even", "value"], sorted(cost["breakeven"].items())))
        return "".join(parts)

    def sizing(self) -> str:
        """The sizing table (model, GPU, VRAM and KV budget, KV capacity, predicted against observed
        concurrency) near the top, as the cost panel: the checks that filled it link here."""
        if SIZING_TABLE not in self.data["tables"]:
            return ""
        return f"<h2 id='sizing'>Sizing</h2>{self.artifact('table', SIZING_TABLE)}"

    def render(self) -> str:
        run = self.data["run"]
        title = f"pytest-aksai: {run['cluster']} ({run['provider']})"
        info = [
            ["run", run["id"]],
            ["cluster", f"{run['cluster']} ({run['provider']}), context {run['context'] or '-'}"],
            ["server", f"{run['server_url'] or '-'} {run['server_version']}".strip()],
            ["plugin", f"pytest-aksai {run['plugin_version']}"],
            ["time", f"{run['started']} to {run['finished']}"],
        ]
        settings = [[k, v["value"], v["source"]] for k, v in sorted(run["settings"].items())]
        area_rows = [[area, _counts(counts)] for area, counts in self.data["areas"].items()]
        area_table = "<table><tr><th>area</th><th>verdicts</th></tr>" + "".join(
            f"<tr><td><a href='#area-{_e(a)}'>{_e(a)}</a></td><td>{c}</td></tr>" for a, c in area_rows
        )
        parts = [
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>",
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>",
            f"<p>{_counts(self.data['counts'])}</p>",
            _table(["", ""], info),
            f"<details><summary>settings</summary>{_table(['knob', 'value', 'source'], settings)}</details>",
            "<h2>Verdicts by area</h2>",
            area_table + "</table>",
            self.failures(),
            self.cost(),
            self.sizing(),
        ]
        by_area: dict[str, list[dict[str, Any]]] = {}
        for check in self.data["checks"]:
            by_area.setdefault((check["areas"] or ["other"])[0], []).append(check)
        for area in sorted(by_area):
            parts.append(f"<h2 id='area-{_e(area)}'>{_e(area)}</h2>")
            ordered = sorted(by_area[area], key=lambda c: c["outcome"] == "passed")
            parts += [self.check(c) for c in ordered]
        leftovers = [
            self.artifact(kind, key)
            for kind in ("timeline", "distribution", "table")
            for key in self.data[f"{kind}s"]
            if (kind, key) not in self.drawn
        ]
        if leftovers:
            parts.append("<h2>Other evidence</h2>" + "".join(leftovers))
        parts.append("</body></html>\n")
        return "".join(parts)


def render(data: dict[str, Any]) -> str:
    return _Page(data).render()
