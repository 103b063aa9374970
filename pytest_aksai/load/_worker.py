"""One load worker: its share of a plan, started at a shared time, reporting one tagged line of mergeable data.

The same worker runs as a local child process of pytest (one worker) and as each pod of the in-cluster
Indexed Job (N workers): `python -m pytest_aksai.load worker --spec FILE` reads a `WorkerSpec`, waits for
`start_at` (a barrier without a coordinator), drives its share (concurrency split, rate ÷ N, seed + index)
and prints `AKSAI_RESULT <index> <json>` (the tagged-log pattern KAITO uses for its benchmark results), with
the result's HdrHistograms and counters and, for the worker that observes the server, the server's window.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_aksai._errors import AksaiError

from ._client import run_load_async
from ._plan import LoadPlan
from ._result import LoadResult
from ._server_window import ServerObserver, ServerWindow
from ._validity import InvalidReason

RESULT_TAG = "AKSAI_RESULT"


class WorkerOutputError(AksaiError):
    """The workers' output is missing or cannot be read (a pod that died, a truncated log)."""

    __module__ = "pytest_aksai.load"


@dataclass(frozen=True)
class WorkerSpec:
    plan: LoadPlan
    workers: int = 1
    start_at: float | None = None
    """Unix time at which every worker starts measuring; None starts at once."""
    metrics_url: str | None = None
    """The server's /metrics; only worker 0 scrapes it."""

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_json(),
            "workers": self.workers,
            "start_at": self.start_at,
            "metrics_url": self.metrics_url,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerSpec:
        return cls(
            plan=LoadPlan.from_json(data["plan"]),
            workers=int(data.get("workers", 1)),
            start_at=data.get("start_at"),
            metrics_url=data.get("metrics_url"),
        )


def share(plan: LoadPlan, index: int, workers: int) -> LoadPlan:
    """Worker `index`'s part of the plan: N independent Poisson streams of rate/N superpose to one of rate."""
    if not 0 <= index < workers:
        raise ValueError(f"worker index {index} is outside 0..{workers - 1}")

    def part(total: int) -> int:
        return total // workers + (1 if index < total % workers else 0)

    changes: dict[str, Any] = {"seed": plan.seed + index}
    if plan.concurrency is not None:
        changes["concurrency"] = part(plan.concurrency)
    if plan.rate is not None:
        changes["rate"] = plan.rate / workers
    if plan.requests is not None:
        changes["requests"] = max(1, part(plan.requests))
    return dataclasses.replace(plan, **changes)


@dataclass
class WorkerOutput:
    index: int
    result: LoadResult
    server: ServerWindow | None = None

    def line(self) -> str:
        data: dict[str, Any] = {"result": self.result.to_json()}
        if self.server is not None:
            data["server"] = self.server.to_json()
        return f"{RESULT_TAG} {self.index} {json.dumps(data, separators=(',', ':'))}"


async def run_worker_async(spec: WorkerSpec, index: int) -> WorkerOutput:
    plan = share(spec.plan, index, spec.workers)
    observer = ServerObserver(spec.metrics_url) if spec.metrics_url and index == 0 else None
    result = await run_load_async(plan, observer=observer, start_at=spec.start_at)
    return WorkerOutput(index, result, observer.window() if observer is not None else None)


def run_worker(spec: WorkerSpec, index: int) -> WorkerOutput:
    return asyncio.run(run_worker_async(spec, index))


def parse_outputs(text: str) -> dict[int, WorkerOutput]:
    """Every `AKSAI_RESULT` line in `text` (a log), by worker index."""
    found: dict[int, WorkerOutput] = {}
    for line in text.splitlines():
        if not line.startswith(RESULT_TAG + " "):
            continue
        _, index_text, payload = line.split(" ", 2)
        try:
            data = json.loads(payload)
            index = int(index_text)
            server = data.get("server")
            found[index] = WorkerOutput(
                index,
                LoadResult.from_json(data["result"]),
                ServerWindow.from_json(server) if server is not None else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise WorkerOutputError(
                f"A load worker's {RESULT_TAG} line cannot be read",
                expected=f"`{RESULT_TAG} <index> <json>` as `python -m pytest_aksai.load worker` prints it",
                observed=f"{type(exc).__name__}: {exc}; line starts {line[:120]!r}",
                fix="Run the worker image built from the same pytest-aksai version as the plugin",
            ) from None
    return found


@dataclass
class MergedRun:
    """All workers' results added up, with each worker's own validity kept."""

    result: LoadResult
    server: ServerWindow | None
    worker_reasons: list[InvalidReason]
    """Self-checks any one worker missed (a worker's saturation hides in a merged average)."""

    @property
    def invalid_reasons(self) -> list[InvalidReason]:
        return self.worker_reasons + self.result.invalid_reasons


def merge_outputs(outputs: dict[int, WorkerOutput], plan: LoadPlan, workers: int) -> MergedRun:
    missing = [i for i in range(workers) if i not in outputs]
    if missing:
        raise WorkerOutputError(
            f"{len(missing)} of {workers} load workers reported no result (index {', '.join(map(str, missing))})",
            expected=f"one {RESULT_TAG} line from every worker",
            observed=f"results from index {', '.join(map(str, sorted(outputs))) or 'none'}",
            fix="Read the missing workers' logs (kubectl logs); a worker that died or was evicted leaves the "
            "run incomplete, and an incomplete run is not judged",
        )
    reasons: list[InvalidReason] = []
    merged = LoadResult(plan=plan, workers=0)
    for index in range(workers):
        part = outputs[index].result
        if workers > 1:
            reasons += [
                dataclasses.replace(r, text=f"worker {index}: {r.text}") for r in part.invalid_reasons
            ]
        merged.merge(part)
    return MergedRun(merged, outputs[0].server, reasons)


def run_in_child(spec: WorkerSpec, *, timeout_s: float) -> MergedRun:
    """Run one worker as a child process (a core and an event loop of its own, apart from pytest and the
    simulated cluster) and merge its result; raises the child's own error paragraph as WorkerOutputError."""
    with tempfile.TemporaryDirectory(prefix="aksai-load-") as folder:
        path = Path(folder) / "spec.json"
        path.write_text(json.dumps(spec.to_json()), encoding="utf-8")
        argv = [sys.executable, "-m", "pytest_aksai.load", "worker", "--spec", str(path), "--index", "0"]
        try:
            child = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise WorkerOutputError(
                f"The load worker did not finish within {timeout_s:.0f} s",
                expected=f"a run of {spec.plan.duration_s:g} measured seconds plus calibration and warm-up",
                fix="Check that the server answers (requests that never end hold the run open); lower "
                "request_timeout_s or the duration",
            ) from None
    outputs = parse_outputs(child.stdout)
    if 0 not in outputs:
        raise WorkerOutputError(
            f"The load worker exited with {child.returncode} and no {RESULT_TAG} line",
            observed=child.stderr.strip()[-2000:] or "(no output)",
            fix="Read the paragraph above: it names the knob or the server problem",
        )
    return merge_outputs(outputs, spec.plan, 1)
