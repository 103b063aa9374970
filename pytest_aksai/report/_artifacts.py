"""What checks record for the report besides their verdict: timelines, distributions, tables and costs.

Artifacts belong to the run (a lifecycle measured once is judged by several checks), keyed by a name such as
`keda/inference/vllm-http`; a check links to the ones it judged, and the report shows them in its section.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pytest_aksai._public import public

Clock = Literal["cluster", "wall"]

UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_usd_per_day", "USD/day"),
    ("_usd_per_hour", "USD/h"),
    ("_usd", "USD"),
    ("_tokens_per_s", "tokens/s"),
    ("_per_s", "1/s"),
    ("_ms", "ms"),
    ("_s", "s"),
    ("_minutes", "min"),
    ("_pct", "%"),
    ("_ratio", "ratio"),
    ("_bytes", "B"),
    ("_gib", "GiB"),
)
"""A measurement's unit, when not given, follows from its name's suffix (`cold_start_model_load_s` → s)."""


def unit_of(name: str) -> str:
    for suffix, unit in UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    return ""


@dataclass
class Measurement:
    value: float
    unit: str = ""
    clock: Clock | None = None
    """For durations: measured in cluster seconds (compressed on a simulated cluster) or wall seconds."""


@dataclass
class _Point:
    t: float
    value: float


@dataclass
class _Series:
    unit: str = ""
    points: list[_Point] = field(default_factory=list)


@dataclass
class _Span:
    label: str
    start: float
    end: float
    kind: str = "expected"


@dataclass
class _Mark:
    t: float
    label: str


@public
@dataclass
class Timeline:
    """What a check saw over time, in seconds since the timeline's start (cluster time unless `clock="wall"`):
    sampled series (replicas, GPU nodes), the windows the configuration allows (`band`: polling interval,
    cooldown, consolidateAfter), phases (`phase`: a cold start's waterfall) and instants (`mark`)."""

    key: str
    title: str = ""
    clock: Clock = "cluster"
    series: dict[str, _Series] = field(default_factory=dict)
    bands: list[_Span] = field(default_factory=list)
    phases: list[_Span] = field(default_factory=list)
    marks: list[_Mark] = field(default_factory=list)

    def sample(self, series: str, t: float, value: float, *, unit: str = "") -> None:
        """Add a sample; a series is a step function, so only changes need sampling."""
        line = self.series.setdefault(series, _Series(unit=unit))
        line.points.append(_Point(round(t, 3), value))

    def band(self, label: str, start: float, end: float, *, kind: str = "expected") -> None:
        self.bands.append(_Span(label, round(start, 3), round(end, 3), kind))

    def phase(self, label: str, start: float, end: float) -> None:
        self.phases.append(_Span(label, round(start, 3), round(end, 3), "phase"))

    def mark(self, t: float, label: str) -> None:
        self.marks.append(_Mark(round(t, 3), label))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@public
@dataclass
class Distribution:
    """A latency (or other) distribution: histogram bins, percentiles and the limits it is judged against."""

    key: str
    title: str = ""
    unit: str = "ms"
    count: int = 0
    bins: list[tuple[float, float, int]] = field(default_factory=list)
    """(low, high, count) per bin."""
    percentiles: dict[str, float] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)
    """Label → value drawn as a line (e.g. `SLO p95` → 500)."""

    def fill(self, values: Iterable[float], *, bins: int = 40) -> None:
        """Set the bins and percentiles from raw values (bins equally wide between min and max)."""
        ordered = sorted(values)
        self.count = len(ordered)
        if not ordered:
            self.bins, self.percentiles = [], {}
            return
        low, high = ordered[0], ordered[-1]
        width = (high - low) / bins if high > low else 1.0
        edges = [low + i * width for i in range(bins + 1)]
        counts = [0] * bins
        for value in ordered:
            counts[min(bins - 1, max(0, bisect.bisect_right(edges, value) - 1))] += 1
        self.bins = [(round(edges[i], 4), round(edges[i + 1], 4), counts[i]) for i in range(bins)]
        self.percentiles = {f"p{q:g}": round(_quantile(ordered, q / 100), 4) for q in (50, 90, 95, 99)}
        self.percentiles["max"] = round(high, 4)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _quantile(ordered: Sequence[float], q: float) -> float:
    rank = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[rank]


@public
@dataclass
class Table:
    """A small table for the report (e.g. the sizing table: model, GPU, VRAM budget, KV capacity)."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def put(self, row: Sequence[Any], *, key_columns: int = 1) -> None:
        """Add a row, or replace the one whose first `key_columns` cells are the same (a check run twice)."""
        cells = list(row)
        for i, existing in enumerate(self.rows):
            if existing[:key_columns] == cells[:key_columns]:
                self.rows[i] = cells
                return
        self.rows.append(cells)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SIZING_TABLE = "sizing"
SIZING_TITLE = "Sizing: what the sizing model predicts for each model served, against what was observed"
SIZING_COLUMNS = (
    "workload",
    "basis",
    "model",
    "GPU",
    "VRAM GiB",
    "KV budget GiB",
    "KV capacity tokens",
    "max-num-seqs",
    "predicted concurrency",
    "observed concurrency",
    "KV usage predicted",
    "KV usage observed",
)
"""The report's sizing table: one row per workload and basis — `max-model-len` (the sizing suite's static
prediction: sequences at full context) or the load run's shape (sequences at its mean context, against the
concurrency at which the server's requests began to wait and its KV-cache gauge)."""


def sizing_cells(row: Mapping[str, Any]) -> list[Any]:
    """A sizing-table row from a mapping of column → value (a missing column is `-`; values are rounded)."""

    def cell(value: Any) -> Any:
        if value is None:
            return "-"
        if isinstance(value, float) and not value.is_integer():
            return round(value, 3)
        return value

    unknown = set(row) - set(SIZING_COLUMNS)
    if unknown:
        raise ValueError(f"not a column of the sizing table: {', '.join(sorted(unknown))}")
    return [cell(row.get(column)) for column in SIZING_COLUMNS]


@dataclass
class _GpuUse:
    sku: str
    node_minutes: float
    usd: float
    what: str


@dataclass
class Cost:
    """The run's cost section: GPU node-minutes and dollars by SKU, the idle floor found, break-even figures."""

    gpu_use: list[_GpuUse] = field(default_factory=list)
    idle_floor_usd_per_day: float | None = None
    idle_nodes: list[dict[str, Any]] = field(default_factory=list)
    breakeven: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add_gpu_use(self, sku: str, node_minutes: float, usd: float, what: str) -> None:
        self.gpu_use.append(_GpuUse(sku, round(node_minutes, 3), round(usd, 4), what))

    def by_sku(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for use in self.gpu_use:
            entry = out.setdefault(use.sku, {"node_minutes": 0.0, "usd": 0.0})
            entry["node_minutes"] = round(entry["node_minutes"] + use.node_minutes, 3)
            entry["usd"] = round(entry["usd"] + use.usd, 4)
        return out

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["by_sku"] = self.by_sku()
        return data


@dataclass
class Artifacts:
    """The run's artifacts, recorded whether or not a report is written (recording is cheap)."""

    timelines: dict[str, Timeline] = field(default_factory=dict)
    distributions: dict[str, Distribution] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)

    def timeline(self, key: str, title: str = "", clock: Clock = "cluster") -> Timeline:
        found = self.timelines.get(key)
        if found is None:
            found = self.timelines[key] = Timeline(key, title or key, clock)
        return found

    def distribution(self, key: str, title: str = "", unit: str = "ms") -> Distribution:
        found = self.distributions.get(key)
        if found is None:
            found = self.distributions[key] = Distribution(key, title or key, unit)
        return found

    def table(self, key: str, title: str, columns: Sequence[str]) -> Table:
        found = self.tables.get(key)
        if found is None:
            found = self.tables[key] = Table(key, title, list(columns))
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "timelines": {k: v.as_dict() for k, v in self.timelines.items()},
            "distributions": {k: v.as_dict() for k, v in self.distributions.items()},
            "tables": {k: v.as_dict() for k, v in self.tables.items()},
        }


def measurements_of(
    properties: Iterable[tuple[str, object]], details: Mapping[str, Measurement]
) -> dict[str, dict[str, Any]]:
    """A check's measurements for the report: its numeric user properties, with unit and clock."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in properties:
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        known = details.get(name)
        measurement = known if known is not None else Measurement(float(value), unit_of(name))
        out[str(name)] = asdict(measurement) | {"value": value}
    return out
