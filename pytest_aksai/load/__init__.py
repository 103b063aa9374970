"""Load generation, latency statistics, SLO evaluation and Prometheus scrapes (no pytest imports)."""

from pytest_aksai.load._client import LoadTargetError, Progress, run_load, run_load_async
from pytest_aksai.load._histogram import LatencyHistogram
from pytest_aksai.load._judge import LoadRun, LoadVerdict
from pytest_aksai.load._plan import LoadInputError, LoadPlan, Slos, ValidityLimits
from pytest_aksai.load._prometheus import MetricsSnapshot, parse_metrics
from pytest_aksai.load._result import LoadResult, SloVerdict
from pytest_aksai.load._server_window import ServerWindow
from pytest_aksai.load._validity import InvalidReason, InvalidRunError
from pytest_aksai.load._worker import (
    RESULT_TAG,
    MergedRun,
    WorkerOutputError,
    WorkerSpec,
    merge_outputs,
    parse_outputs,
    run_in_child,
)

__all__ = [
    "RESULT_TAG",
    "InvalidReason",
    "InvalidRunError",
    "LatencyHistogram",
    "LoadInputError",
    "LoadPlan",
    "LoadResult",
    "LoadRun",
    "LoadTargetError",
    "LoadVerdict",
    "MergedRun",
    "MetricsSnapshot",
    "Progress",
    "ServerWindow",
    "SloVerdict",
    "Slos",
    "ValidityLimits",
    "WorkerOutputError",
    "WorkerSpec",
    "merge_outputs",
    "parse_metrics",
    "parse_outputs",
    "run_in_child",
    "run_load",
    "run_load_async",
]
