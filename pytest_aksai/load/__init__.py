"""Load generation, latency statistics, SLO evaluation and Prometheus scrapes (no pytest imports)."""

from pytest_aksai.load._client import LoadTargetError, Progress, run_load, run_load_async
from pytest_aksai.load._histogram import LatencyHistogram
from pytest_aksai.load._plan import LoadInputError, LoadPlan, Slos, ValidityLimits
from pytest_aksai.load._prometheus import MetricsSnapshot, parse_metrics
from pytest_aksai.load._result import LoadResult, SloVerdict
from pytest_aksai.load._validity import InvalidReason, InvalidRunError

__all__ = [
    "InvalidReason",
    "InvalidRunError",
    "LatencyHistogram",
    "LoadInputError",
    "LoadPlan",
    "LoadResult",
    "LoadTargetError",
    "MetricsSnapshot",
    "Progress",
    "SloVerdict",
    "Slos",
    "ValidityLimits",
    "parse_metrics",
    "run_load",
    "run_load_async",
]
