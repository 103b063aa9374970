"""The report's pictures as inline SVG, drawn with matplotlib (imported only when a report is written)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BAND_COLOURS = ("#f4d58d", "#bde0fe", "#cdb4db", "#ffc8dd", "#caffbf")
LINE_COLOURS = ("#1d3557", "#e63946", "#2a9d8f", "#f4a261", "#6a4c93", "#8d99ae")


def _figure(height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg", force=False)
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "aksai", "font.size": 9})
    from matplotlib.figure import Figure

    return Figure(figsize=(8.5, height), layout="constrained")


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    text = out.getvalue()
    return text[text.index("<svg") :]


def timeline_svg(timeline: dict[str, Any]) -> str:
    """Each series as a step line against time, the allowed windows as shaded bands, marks as lines."""
    figure = _figure(3.0)
    axes = figure.add_subplot()
    instants = [p["t"] for s in timeline["series"].values() for p in s["points"]]
    instants += [m["t"] for m in timeline["marks"]] + [p["end"] for p in timeline["phases"]]
    end = max(instants, default=0.0)
    for i, (name, series) in enumerate(timeline["series"].items()):
        points = series["points"]
        if not points:
            continue
        # A series is a step function: its last value holds until the end of what was observed.
        xs = [p["t"] for p in points] + [end]
        ys = [p["value"] for p in points] + [points[-1]["value"]]
        label = f"{name} ({series['unit']})" if series.get("unit") else name
        axes.step(xs, ys, where="post", label=label, color=LINE_COLOURS[i % len(LINE_COLOURS)], linewidth=1.6)
    values = [p["value"] for s in timeline["series"].values() for p in s["points"]]
    if values and min(values) >= 0:
        # Counts start at zero (the marks' labels sit there), with room above a line that never moves.
        axes.set_ylim(0, max(values) * 1.15 + 0.5)
    top = axes.get_ylim()[1]
    for i, band in enumerate(timeline["bands"]):
        axes.axvspan(band["start"], band["end"], color=BAND_COLOURS[i % len(BAND_COLOURS)], alpha=0.45, lw=0)
        axes.text(band["start"], top, f" {band['label']}", va="top", ha="left", fontsize=8, color="#444")
    for mark in timeline["marks"]:
        axes.axvline(mark["t"], color="#666", linestyle=":", linewidth=1)
        axes.text(mark["t"], 0, f" {mark['label']}", rotation=90, va="bottom", fontsize=7, color="#444")
    axes.set_xlabel(f"{timeline['clock']} seconds since start")
    axes.set_title(timeline["title"], loc="left", fontsize=10)
    axes.grid(True, alpha=0.3)
    if timeline["series"]:
        axes.legend(loc="upper right", fontsize=8, framealpha=0.8)
    return _svg(figure)


def waterfall_svg(timeline: dict[str, Any]) -> str:
    """Phases as bars, one row each, in the order they started (a cold start from node to first token)."""
    phases = sorted(timeline["phases"], key=lambda p: p["start"])
    figure = _figure(0.9 + 0.32 * len(phases))
    axes = figure.add_subplot()
    for row, phase in enumerate(phases):
        width = max(phase["end"] - phase["start"], 0.0)
        axes.broken_barh(
            [(phase["start"], width)], (row - 0.35, 0.7), color=LINE_COLOURS[row % len(LINE_COLOURS)]
        )
        axes.text(phase["end"], row, f" {width:.1f} s", va="center", fontsize=8)
    axes.set_yticks(range(len(phases)), [p["label"] for p in phases])
    axes.invert_yaxis()
    axes.set_xlabel(f"{timeline['clock']} seconds since start")
    axes.set_title(f"{timeline['title']}: phases", loc="left", fontsize=10)
    axes.grid(True, axis="x", alpha=0.3)
    return _svg(figure)


def histogram_svg(distribution: dict[str, Any]) -> str:
    """The bins as bars, the percentiles as thin lines and the limits (SLOs) as red dashed lines."""
    figure = _figure(2.6)
    axes = figure.add_subplot()
    bins = distribution["bins"]
    axes.bar(
        [b[0] for b in bins],
        [b[2] for b in bins],
        width=[b[1] - b[0] for b in bins],
        align="edge",
        color="#457b9d",
        edgecolor="white",
        linewidth=0.3,
    )
    unit = distribution["unit"]
    for name, value in distribution["percentiles"].items():
        if name in ("p50", "p95", "p99"):
            axes.axvline(value, color="#1d3557", linewidth=0.8)
            axes.text(value, axes.get_ylim()[1], f" {name}", va="top", fontsize=7)
    for label, value in distribution["limits"].items():
        axes.axvline(value, color="#e63946", linestyle="--", linewidth=1.4)
        axes.text(value, axes.get_ylim()[1] * 0.8, f" {label} {value:g} {unit}", color="#e63946", fontsize=8)
    axes.set_xlabel(unit)
    axes.set_ylabel("requests")
    axes.set_title(f"{distribution['title']} (n={distribution['count']})", loc="left", fontsize=10)
    return _svg(figure)
