"""The run report: a verdict per check with its measurements, timelines, distributions, tables and costs,
as a versioned `report.json`, a self-contained `report.html` and evidence files."""

from pytest_aksai.report._artifacts import (
    SIZING_COLUMNS,
    SIZING_TABLE,
    SIZING_TITLE,
    Artifacts,
    Clock,
    Cost,
    Distribution,
    Measurement,
    Table,
    Timeline,
    measurements_of,
    sizing_cells,
    unit_of,
)
from pytest_aksai.report._run import HTML_NAME, CheckRecord, RunReport, anchor_of

__all__ = [
    "HTML_NAME",
    "SIZING_COLUMNS",
    "SIZING_TABLE",
    "SIZING_TITLE",
    "Artifacts",
    "CheckRecord",
    "Clock",
    "Cost",
    "Distribution",
    "Measurement",
    "RunReport",
    "Table",
    "Timeline",
    "anchor_of",
    "measurements_of",
    "sizing_cells",
    "unit_of",
]
