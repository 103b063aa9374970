"""The load client against a raw-aiohttp reference (vLLM-benchmark parsing), measured in the same run.

    python benchmarks/bench_load.py [--seconds 5]

A scheduled-token fake OpenAI server (`pytest_aksai.load._fake_server`) runs in its own process pinned to
CPU 1; both clients run here, one after the other, pinned to CPU 0. Part 1: 64-token streams with zero
inter-token latency at 16, 64 and 256 streams: req/s and client CPU ms per request, this client over the
reference. Part 2: 20 ms TTFT and 5 ms ITL on the server's schedule, 64 streams: TTFT and ITL error
(client-measured minus server-scheduled) and the share of configured streams in flight.
Throughput runs alternate reference and client `--rounds` times and keep the best of each.
Targets (issue 13): ≥ 0.8× reference req/s, CPU/request ≤ 1.25×, TTFT error p50 ≤ 1.5 ms / p99 ≤ 6 ms,
≥ 95 % streams in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp

from pytest_aksai.load import LoadPlan, LoadResult, ValidityLimits, run_load

TOKENS = 64
PROMPT_WORDS = 100
SCHEDULED_TTFT_MS, SCHEDULED_ITL_MS = 20.0, 5.0
CLIENT_CPU, SERVER_CPU = 0, 1


@contextmanager
def fake_server(ttft_ms: float, itl_ms: float) -> Iterator[str]:
    command = [sys.executable, "-m", "pytest_aksai.load._fake_server", "--ttft-ms", str(ttft_ms), "--itl-ms",
               str(itl_ms), "--tokens", str(TOKENS), "--cpu", str(SERVER_CPU)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{line.split()[1]}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Measured:
    req_per_s: float
    cpu_ms_per_request: float
    ttft_ms: list[float]


async def _reference(url: str, streams: int, seconds: float) -> Measured:
    """vLLM `benchmarks/backend_request_func.py` style: iter_any, split on blank lines, json.loads."""
    payload = {"model": "m", "messages": [{"role": "user", "content": "word " * PROMPT_WORDS}],
               "max_tokens": TOKENS, "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    ttfts: list[float] = []
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=streams)) as session:

        async def one() -> None:
            started, first, buffer = time.perf_counter(), 0.0, ""
            async with session.post(url + "/chat/completions", json=payload) as response:
                async for chunk in response.content.iter_any():
                    buffer += chunk.decode("utf-8")
                    *messages, buffer = buffer.split("\n\n")
                    for message in messages:
                        data_text = message.strip().removeprefix("data: ")
                        if not data_text or data_text == "[DONE]":
                            continue
                        timestamp = time.perf_counter()
                        data = json.loads(data_text)
                        choices = data.get("choices")
                        if choices and choices[0]["delta"].get("content") and not first:
                            first = timestamp
                            ttfts.append((first - started) * 1000)

        await asyncio.gather(*(one() for _ in range(streams)))  # warm-up: open the connections
        ttfts.clear()
        deadline = time.perf_counter() + seconds
        cpu, wall = time.process_time(), time.perf_counter()

        async def stream() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await one()
                done += 1

        await asyncio.gather(*(stream() for _ in range(streams)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Measured(done / wall, cpu * 1000 / done, sorted(ttfts))


def _client(url: str, streams: int, seconds: float) -> LoadResult:
    plan = LoadPlan(url=url, model="m", concurrency=streams, duration_s=seconds, prompt_tokens=PROMPT_WORDS,
                    max_tokens=TOKENS, limits=ValidityLimits(max_client_cpu_fraction=1.0))  # fmt: skip
    return run_load(plan)


def _server_lateness(url: str, *, reset: bool) -> dict[str, dict[str, float]]:
    """How late the fake server itself wrote tokens (part of the measured error that is not the client's)."""
    request = urllib.request.Request(url.removesuffix("/v1") + ("/lateness/reset" if reset else "/lateness"),
                                     method="POST" if reset else "GET")  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        data: dict[str, dict[str, float]] = json.load(response)
    return data


def _percentile(values: list[float], p: float) -> float:
    return values[min(int(len(values) * p / 100), len(values) - 1)]


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _cpu_times() -> list[int] | None:
    """The machine's CPU line of /proc/stat: user nice system idle iowait irq softirq steal (jiffies)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    return [int(x) for x in fields[1:9]] if fields and fields[0] == "cpu" else None


def _machine(before: list[int] | None, loads: tuple[float, float, float]) -> str:
    """What else the machine did during the benchmark: a shared machine's figures are only as good as this."""
    after = _cpu_times()
    text = (
        f"load average {loads[0]:.2f} {loads[1]:.2f} {loads[2]:.2f} at the start, "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
        + f" at the end, on {os.cpu_count()} CPUs"
    )
    if before is not None and after is not None:
        delta = [b - a for a, b in zip(before, after, strict=True)]
        total = sum(delta) or 1
        busy = total - delta[3] - delta[4]
        text += f"; over the run: CPU busy {busy / total:.0%} (all processes), steal {delta[7] / total:.1%}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternated runs per concurrency (best is kept)"
    )
    args = parser.parse_args()
    cpu_before, loads_before = _cpu_times(), os.getloadavg()
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {CLIENT_CPU})
    print(f"zero ITL, {TOKENS}-token streams, {args.seconds:g} s per run; server pinned to CPU {SERVER_CPU}")
    print(
        f"{'streams':>8} {'ref req/s':>10} {'req/s':>8} {'ratio':>6} {'ref cpu ms':>11} {'cpu ms':>7} {'ratio':>6}"
    )
    with fake_server(0, 0) as url:
        for streams in (16, 64, 256):
            # Alternated twice, best of each: other processes on a shared machine slow one run, not the client.
            references, runs = [], []
            for _ in range(args.rounds):
                references.append(asyncio.run(_reference(url, streams, args.seconds)))
                runs.append(_client(url, streams, args.seconds))
            reference = max(references, key=lambda m: m.req_per_s)
            ours = max(runs, key=lambda r: r.req_per_s)
            rate, cpu = (
                ours.req_per_s / reference.req_per_s,
                ours.client_cpu_ms_per_request / reference.cpu_ms_per_request,
            )
            print(f"{streams:>8} {reference.req_per_s:>10.0f} {ours.req_per_s:>8.0f} {rate:>5.2f}x "
                  f"{reference.cpu_ms_per_request:>11.2f} {ours.client_cpu_ms_per_request:>7.2f} {cpu:>5.2f}x  "
                  f"req/s {_verdict(rate >= 0.8)}, cpu {_verdict(cpu <= 1.25)}")  # fmt: skip
    streams = 64
    print(f"\nserver schedule TTFT {SCHEDULED_TTFT_MS:g} ms, ITL {SCHEDULED_ITL_MS:g} ms, {streams} streams: "
          "error = client-measured minus scheduled (ms)")  # fmt: skip
    with fake_server(SCHEDULED_TTFT_MS, SCHEDULED_ITL_MS) as url:
        reference = asyncio.run(_reference(url, streams, args.seconds))
        _server_lateness(url, reset=True)
        ours = _client(url, streams, args.seconds)
        lateness = _server_lateness(url, reset=False)
    ttft_p50 = (ours.ttft.percentile_ms(50) or 0) - SCHEDULED_TTFT_MS
    ttft_p99 = (ours.ttft.percentile_ms(99) or 0) - SCHEDULED_TTFT_MS
    itl_p50 = (ours.itl.percentile_ms(50) or 0) - SCHEDULED_ITL_MS
    itl_p99 = (ours.itl.percentile_ms(99) or 0) - SCHEDULED_ITL_MS
    in_flight = min(ours.achieved_concurrency, ours.sampled_concurrency) / streams
    ref_p50 = _percentile(reference.ttft_ms, 50) - SCHEDULED_TTFT_MS
    ref_p99 = _percentile(reference.ttft_ms, 99) - SCHEDULED_TTFT_MS
    print(f"  this client: TTFT error p50 {ttft_p50:.2f} ({_verdict(ttft_p50 <= 1.5)}) p99 {ttft_p99:.2f} "
          f"({_verdict(ttft_p99 <= 6)}); ITL error p50 {itl_p50:.2f} p99 {itl_p99:.2f}; "
          f"streams in flight {in_flight:.1%} ({_verdict(in_flight >= 0.95)}); "
          f"client CPU {ours.client_cpu_ms_per_request:.2f} ms/request, loop lag p99 "
          f"{ours.loop_lag.percentile_ms(99) or 0:.1f} ms; valid {ours.valid} {[r.resource for r in ours.invalid_reasons]}")  # fmt: skip
    first, later = lateness["first_token_late_ms"], lateness["token_late_ms"]
    print(f"  of which the server wrote late: first token p50 {first['p50']:.2f} p99 {first['p99']:.2f}, "
          f"later tokens p50 {later['p50']:.2f} p99 {later['p99']:.2f}")  # fmt: skip
    print(f"  reference:   TTFT error p50 {ref_p50:.2f} p99 {ref_p99:.2f}; "
          f"{reference.req_per_s:.0f} req/s, client CPU {reference.cpu_ms_per_request:.2f} ms/request")  # fmt: skip
    print(f"\nmachine: {_machine(cpu_before, loads_before)}")


if __name__ == "__main__":
    main()
