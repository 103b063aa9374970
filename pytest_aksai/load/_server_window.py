"""What the server saw during the measured window: its TTFT histogram and its scheduler gauges over time.

The client scrapes `/metrics` once just before the first measured request and once after the last one
finished (so warm-up and calibration requests are outside the difference), and every `period_s` in between
keeps only the three scheduler gauges (running, waiting, KV-cache usage), read with a line scan so the
scrape costs the event loop microseconds. The two whole scrapes are parsed after the run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from ._prometheus import parse_metrics

TTFT_FAMILY = "vllm:time_to_first_token_seconds"
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
"""The KV-cache gauge after and before vLLM 0.10's rename."""
_GAUGES = (RUNNING, WAITING, *KV_USAGE)


@dataclass(frozen=True)
class GaugeSample:
    t_s: float
    """Seconds since the window started."""
    running: float
    waiting: float
    kv_usage: float


@dataclass
class ServerWindow:
    """The server's own view of the measured window (None fields: the server did not expose them)."""

    ttft_count: float | None = None
    ttft_sum_s: float | None = None
    ttft_buckets: list[tuple[float, float]] = field(default_factory=list)
    """(upper bound in seconds, cumulative count) of the window's requests, +Inf last."""
    samples: list[GaugeSample] = field(default_factory=list)
    problem: str = ""
    """Why the server's view is missing (no /metrics, no TTFT histogram), or ""."""

    def ttft_mean_ms(self) -> float | None:
        if not self.ttft_count or self.ttft_sum_s is None:
            return None
        return self.ttft_sum_s / self.ttft_count * 1000

    def ttft_quantile_ms(self, q: float) -> float | None:
        """Prometheus' histogram_quantile: linear inside the bucket that holds the quantile."""
        if not self.ttft_count or not self.ttft_buckets:
            return None
        rank = q * self.ttft_count
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in self.ttft_buckets:
            if count >= rank:
                if bound == float("inf"):
                    return lower_bound * 1000
                inside = count - lower_count
                share = (rank - lower_count) / inside if inside else 0.0
                return (lower_bound + (bound - lower_bound) * share) * 1000
            lower_bound, lower_count = bound, count
        return lower_bound * 1000

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ttft_buckets"] = [[("+Inf" if b == float("inf") else b), c] for b, c in self.ttft_buckets]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerWindow:
        return cls(
            ttft_count=data.get("ttft_count"),
            ttft_sum_s=data.get("ttft_sum_s"),
            ttft_buckets=[
                (float("inf") if b == "+Inf" else float(b), float(c)) for b, c in data["ttft_buckets"]
            ],
            samples=[GaugeSample(**s) for s in data.get("samples", [])],
            problem=data.get("problem", ""),
        )


def _gauges(text: str) -> tuple[float, float, float] | None:
    values = dict.fromkeys(_GAUGES, 0.0)
    seen = False
    for line in text.splitlines():
        if line.startswith("vllm:") and not line.startswith("#"):
            name, _, rest = line.partition("{")
            if name in values:
                seen = True
                values[name] += float(rest.rpartition(" ")[2])
    if not seen:
        return None
    return values[RUNNING], values[WAITING], max(values[k] for k in KV_USAGE)


def _ttft(text: str) -> tuple[float, float, dict[float, float]] | None:
    snapshot = parse_metrics(text)
    if TTFT_FAMILY not in snapshot.families:
        return None
    buckets: dict[float, float] = {}
    for sample in snapshot.samples(TTFT_FAMILY, "_bucket"):
        bound = float(sample.labels["le"])
        buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return snapshot.total(TTFT_FAMILY, "_count"), snapshot.total(TTFT_FAMILY, "_sum"), buckets


class ServerObserver:
    """Scrapes one server's `/metrics` around and during a measured window."""

    def __init__(self, metrics_url: str, period_s: float = 0.25) -> None:
        self.url = metrics_url
        self.period_s = period_s
        self._first: str | None = None
        self._last: str | None = None
        self._samples: list[GaugeSample] = []
        self._task: asyncio.Task[None] | None = None
        self._problem = ""
        self._started = 0.0
        self._session: aiohttp.ClientSession | None = None

    async def _get(self) -> str | None:
        assert self._session is not None
        try:
            async with self._session.get(self.url) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._problem = f"GET {self.url} failed: {type(exc).__name__}: {exc}"
            return None
        if response.status != 200:
            self._problem = f"GET {self.url} answered HTTP {response.status}"
            return None
        return text

    async def begin(self) -> None:
        # A session of its own: scrapes must never take a connection slot of the load.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._first = await self._get()
        self._started = time.perf_counter()
        self._task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            text = await self._get()
            gauges = _gauges(text) if text is not None else None
            if gauges is not None:
                self._samples.append(GaugeSample(time.perf_counter() - self._started, *gauges))

    async def end(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            self._last = await self._get()
            await self._session.close()

    def window(self) -> ServerWindow:
        """Parse the two whole scrapes into the window's difference (after the run: parsing takes ms)."""
        result = ServerWindow(samples=list(self._samples), problem=self._problem)
        if self._first is None or self._last is None:
            result.problem = result.problem or f"{self.url} could not be scraped"
            return result
        try:
            first, last = _ttft(self._first), _ttft(self._last)
        except ValueError as exc:
            result.problem = f"{self.url} is not Prometheus text: {exc}"
            return result
        if first is None or last is None:
            result.problem = f"{self.url} exposes no {TTFT_FAMILY} histogram"
            return result
        result.ttft_count = last[0] - first[0]
        result.ttft_sum_s = last[1] - first[1]
        result.ttft_buckets = sorted((b, c - first[2].get(b, 0.0)) for b, c in last[2].items())
        return result
