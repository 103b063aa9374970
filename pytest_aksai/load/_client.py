"""The measuring client: aiohttp streams parsed as vLLM's benchmark parses them, timestamps taken first.

The hot path only appends `perf_counter()` values; histograms, SLO attainment and validity are computed after
the measured window closes, so that bookkeeping never delays a timestamp or counts as client CPU.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import aiohttp

from pytest_aksai._errors import AksaiError

from ._plan import LoadPlan
from ._prompts import PromptBuilder, first_guess_words, load_passages, rescale_words
from ._result import LoadResult
from ._server_window import ServerObserver

_SAMPLE_PERIOD_S = 0.01
_PROMPT_VARIANTS = 64
_CALIBRATION_ROUNDS = 3
_HEADERS = {"Content-Type": "application/json"}


class LoadTargetError(AksaiError):
    """The server under load cannot be used (unreachable, unknown model, refuses the request shape)."""

    __module__ = "pytest_aksai.load"


@dataclass(frozen=True)
class Progress:
    elapsed_s: float
    duration_s: float
    requests: int
    in_flight: int


class _Done(NamedTuple):
    """A finished request, kept as a tuple of untracked values so thousands of them cost the GC nothing."""

    sent: float
    end: float
    content_times: array[float]
    output_tokens: int
    prompt_tokens: int
    error: str | None


class _Request:
    """One request in flight; times are `perf_counter()` seconds."""

    __slots__ = ("content_times", "error", "output_tokens", "prompt_tokens", "sent")

    def __init__(self, sent: float) -> None:
        self.sent = sent
        self.content_times: list[float] = []
        self.output_tokens = 0
        self.prompt_tokens = 0
        self.error: str | None = None


_NO_DELTA: dict[str, Any] = {}


class _Runner:
    def __init__(
        self,
        plan: LoadPlan,
        on_progress: Callable[[Progress], None] | None,
        observer: ServerObserver | None = None,
        start_at: float | None = None,
    ) -> None:
        self.plan = plan
        self.observer = observer
        self.start_at = start_at
        self.start_late_s = 0.0
        self.chat = plan.endpoint == "chat"
        base = plan.url.rstrip("/")
        self.url = base + ("/chat/completions" if self.chat else "/completions")
        self.on_progress = on_progress
        self.bodies: Iterator[bytes] = iter(())
        self.records: list[_Done] = []
        self.in_flight = 0
        self.issued = 0
        self.measuring = False
        self.window_start = 0.0
        self.issue_end: float | None = None
        self.samples: list[int] = []
        self.loop_lags: list[float] = []
        self.schedule_lags: list[float] = []

    # -- bodies ----------------------------------------------------------------------------------------
    def _body(self, text: str, *, max_tokens: int, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.plan.model, "max_tokens": max_tokens, "stream": stream}
        if self.chat:
            body["messages"] = [{"role": "user", "content": text}]
        else:
            body["prompt"] = text
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def _prepare_prompts(self, session: aiohttp.ClientSession) -> None:
        """Calibrate the prompt length on the server's own count (usage.prompt_tokens), then pre-encode."""
        builder = PromptBuilder(load_passages(), seed=self.plan.seed)
        words = first_guess_words(self.plan.prompt_tokens)
        for _ in range(_CALIBRATION_ROUNDS):
            body = self._body(builder.text(words, 0), max_tokens=1, stream=False)
            measured = await self._calibration_request(session, body)
            if measured is None or measured == self.plan.prompt_tokens:
                break
            words = rescale_words(words, self.plan.prompt_tokens, measured)
        encoded = [
            json.dumps(self._body(builder.text(words, v), max_tokens=self.plan.max_tokens, stream=self.plan.stream))
            .encode()
            for v in range(_PROMPT_VARIANTS)
        ]  # fmt: skip
        self.bodies = itertools.cycle(encoded)

    async def _calibration_request(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> int | None:
        try:
            async with session.post(self.url, json=body) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LoadTargetError(f"The server at {self.url} cannot be reached", expected="an OpenAI-compatible server",
                                  observed=f"{type(exc).__name__}: {exc}",
                                  fix="Check --url (the OpenAI base URL, ending in /v1) and that the server runs.") from exc  # fmt: skip
        if response.status != 200:
            raise LoadTargetError(f"The server at {self.url} refused the calibration request with HTTP {response.status}",
                                  expected="200 for a one-token request", observed=text[:300],
                                  fix="Check --model against GET /v1/models and --endpoint against what it serves.")  # fmt: skip
        try:
            usage = json.loads(text).get("usage") or {}
            return int(usage["prompt_tokens"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # the server does not count: keep the estimate

    # -- one request -----------------------------------------------------------------------------------
    async def _send(self, session: aiohttp.ClientSession) -> None:
        request = _Request(time.perf_counter())
        self.in_flight += 1
        try:
            async with session.post(self.url, data=next(self.bodies), headers=_HEADERS) as response:
                if response.status != 200:
                    await response.read()
                    request.error = f"http_{response.status}"
                elif self.plan.stream:
                    await self._read_stream(response, request)
                else:
                    self._read_whole(json.loads(await response.read()), request)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            request.error = type(exc).__name__
        end = time.perf_counter()
        self.in_flight -= 1
        if self.measuring:
            self.records.append(_Done(request.sent, end, array("d", request.content_times), request.output_tokens,
                                      request.prompt_tokens, request.error))  # fmt: skip

    async def _read_stream(self, response: aiohttp.ClientResponse, request: _Request) -> None:
        chat = self.chat
        content_times = request.content_times
        buffer = b""
        async for chunk in response.content.iter_any():
            now = time.perf_counter()
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                payload = frame.strip().removeprefix(b"data:").lstrip()
                if not payload or payload == b"[DONE]":
                    continue
                data = json.loads(payload)
                choices = data.get("choices")
                if choices:
                    choice = choices[0]
                    if choice.get("delta", _NO_DELTA).get("content") if chat else choice.get("text"):
                        content_times.append(now)
                usage = data.get("usage")
                if usage:
                    request.output_tokens = usage.get("completion_tokens") or 0
                    request.prompt_tokens = usage.get("prompt_tokens") or 0
                elif "error" in data:
                    request.error = "stream_error"

    def _read_whole(self, data: dict[str, Any], request: _Request) -> None:
        usage = data.get("usage") or {}
        request.output_tokens = usage.get("completion_tokens") or 0
        request.prompt_tokens = usage.get("prompt_tokens") or 0

    # -- load shapes -----------------------------------------------------------------------------------
    def _may_issue(self) -> bool:
        if self.issue_end is not None:
            return False
        plan, now = self.plan, time.perf_counter()
        if now - self.window_start >= plan.duration_s or (
            plan.requests is not None and self.issued >= plan.requests
        ):
            self.issue_end = now
            return False
        self.issued += 1
        return True

    async def _closed_loop(self, session: aiohttp.ClientSession, streams: int) -> None:
        async def stream() -> None:
            while self._may_issue():
                await self._send(session)

        await asyncio.gather(*(stream() for _ in range(streams)))

    async def _open_loop(self, session: aiohttp.ClientSession, rate: float) -> None:
        rng = random.Random(self.plan.seed)
        poisson = self.plan.arrival == "poisson"
        tasks: set[asyncio.Task[None]] = set()
        due = self.window_start
        for index in itertools.count():
            due = due + rng.expovariate(rate) if poisson else self.window_start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self._may_issue():
                break
            self.schedule_lags.append(max(time.perf_counter() - due, 0.0))
            task = asyncio.create_task(self._send(session))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)

    async def _sample(self) -> None:
        """Event-loop lag and in-flight count every 10 ms while requests are issued."""
        started = time.perf_counter()
        while self.issue_end is None:
            expected = time.perf_counter() + _SAMPLE_PERIOD_S
            await asyncio.sleep(_SAMPLE_PERIOD_S)
            self.loop_lags.append(max(time.perf_counter() - expected, 0.0))
            self.samples.append(self.in_flight)
            if self.on_progress is not None and len(self.samples) % 25 == 0:
                self.on_progress(Progress(time.perf_counter() - started, self.plan.duration_s,
                                          len(self.records), self.in_flight))  # fmt: skip

    # -- the run ---------------------------------------------------------------------------------------
    async def run(self) -> LoadResult:
        plan = self.plan
        limit = plan.concurrency or 0  # open loop: a connection per arrival in flight
        connector = aiohttp.TCPConnector(limit=limit, force_close=False, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=plan.request_timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await self._prepare_prompts(session)
            await asyncio.gather(*(self._send(session) for _ in range(plan.warmup)))
            if self.start_at is not None:
                # The shared start of the workers' measured windows (calibration and warm-up come before).
                await asyncio.sleep(max(0.0, self.start_at - time.time()))
                self.start_late_s = max(0.0, time.time() - self.start_at)
            if self.observer is not None:
                await self.observer.begin()
            self.measuring = True
            self.window_start = time.perf_counter()
            cpu_start = time.process_time()
            sampler = asyncio.create_task(self._sample())
            if plan.concurrency is not None:
                await self._closed_loop(session, plan.concurrency)
            else:
                assert plan.rate is not None
                await self._open_loop(session, plan.rate)
            window_end = time.perf_counter()
            cpu_s = time.process_time() - cpu_start
            await sampler
            if self.observer is not None:
                await self.observer.end()
        return self._result(window_end, cpu_s)

    def _result(self, window_end: float, cpu_s: float) -> LoadResult:
        plan, slos = self.plan, self.plan.slos
        start = self.window_start
        issue_end = self.issue_end if self.issue_end is not None else window_end
        result = LoadResult(
            plan=plan, requests=len(self.records), client_cpu_s=cpu_s, start_late_s=self.start_late_s
        )
        result.window_s = max((r.end for r in self.records), default=window_end) - start
        result.issue_window_s = issue_end - start
        result.client_cpu_fraction = cpu_s / (window_end - start) if window_end > start else 0.0
        result.in_flight_sample_sum = float(sum(self.samples))
        result.in_flight_samples = len(self.samples)
        result.loop_lag.record_seconds(self.loop_lags)
        result.schedule_lag.record_seconds(self.schedule_lags)
        ttfts: list[float] = []
        gaps: list[float] = []
        tpots: list[float] = []
        e2es: list[float] = []
        for r in self.records:
            result.in_flight_s += max(min(r.end, issue_end) - max(r.sent, start), 0.0)
            e2e = r.end - r.sent
            if r.error is not None or (plan.stream and not r.content_times):
                result.errors += 1
                result.errors_by_class[r.error or "no_content"] += 1
                continue
            e2es.append(e2e)
            result.output_tokens += r.output_tokens
            result.prompt_tokens += r.prompt_tokens
            times = r.content_times
            ttft = times[0] - r.sent if times else None
            tpot = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None
            if ttft is not None:
                ttfts.append(ttft)
            gaps.extend(b - a for a, b in itertools.pairwise(times))
            if tpot is not None:
                tpots.append(tpot)
            good = (
                (slos.ttft_p95_ms is None or (ttft is not None and ttft * 1000 <= slos.ttft_p95_ms))
                and (slos.itl_p95_ms is None or tpot is None or tpot * 1000 <= slos.itl_p95_ms)
                and (slos.e2e_p99_ms is None or e2e * 1000 <= slos.e2e_p99_ms)
            )
            result.good_requests += good
        result.ttft.record_seconds(ttfts)
        result.itl.record_seconds(gaps)
        result.tpot.record_seconds(tpots)
        result.e2e.record_seconds(e2es)
        return result


async def run_load_async(
    plan: LoadPlan,
    on_progress: Callable[[Progress], None] | None = None,
    observer: ServerObserver | None = None,
    start_at: float | None = None,
) -> LoadResult:
    """Run the plan on the current event loop and return what it measured (validity included, not raised).

    With an `observer`, the server's `/metrics` are scraped around and during the measured window; with
    `start_at` (Unix time), the measured window starts then, after calibration and warm-up.
    """
    return await _Runner(plan, on_progress, observer, start_at).run()


def run_load(plan: LoadPlan, on_progress: Callable[[Progress], None] | None = None) -> LoadResult:
    """Run the plan on a fresh event loop (the client wants a loop and a core to itself)."""
    return asyncio.run(run_load_async(plan, on_progress))
