"""Throughput of the simulated vLLM server against a no-op aiohttp baseline, measured in the same run.

    python benchmarks/bench_vllm_sim.py [--requests 400] [--concurrency 32] [--tokens 32]

The simulated engine runs with a huge `speedup`, so the numbers are the server's own cost (HTTP,
JSON, scheduling, metrics) and not the simulated GPU time. The baseline answers the same requests with
a fixed body (non-streamed) or the same number of SSE frames (streamed). Client and servers share one
process and event loop, so compare the two rows rather than reading absolute capacity: on a 2-core
machine both reach ~300 streamed requests/s and ~10k frames/s, i.e. the httpx client is the bottleneck
and the simulation adds no measurable cost over a no-op aiohttp handler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable

import httpx
from aiohttp import web

from pytest_aksai.sim._addons.vllm._server import EngineConfig, GpuPerf, ModelServer, ServedModel
from pytest_aksai.sim._faults import ActiveFaults

MODEL = ServedModel(
    "phi-4-mini-instruct", "microsoft/Phi-4-mini-instruct", 131072, 7_680_000_000, 131072, 3.84e9
)
ENGINE = EngineConfig(max_model_len=4096, max_num_seqs=256)
GPU = GpuPerf("Tesla T4", 1, 16, 320, 65)


def _baseline_app(tokens: int) -> web.Application:
    body = {"id": "cmpl-0", "object": "text_completion", "choices": [{"index": 0, "text": "x" * tokens}]}

    async def complete(request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        if not payload.get("stream"):
            return web.json_response(body)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        frame = f"data: {json.dumps({'choices': [{'index': 0, 'text': ' x'}]})}\n\n".encode()
        for _ in range(tokens):
            await response.write(frame)
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/completions", complete)
    return app


async def _serve_baseline(tokens: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(_baseline_app(tokens), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = next(a for a in runner.addresses if isinstance(a, tuple))[:2]
    return runner, f"http://{host}:{port}"


async def _load(url: str, *, requests: int, concurrency: int, tokens: int, stream: bool) -> tuple[float, int]:
    """(seconds, streamed data frames) for `requests` completions with `concurrency` in flight."""
    frames = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal frames
            while not queue.empty():
                i = queue.get_nowait()
                body = {
                    "model": MODEL.served_name,
                    "prompt": f"request {i}",
                    "max_tokens": tokens,
                    "stream": stream,
                }
                if stream:
                    async with client.stream("POST", url + "/v1/completions", json=body) as response:
                        response.raise_for_status()
                        async for line in response.aiter_lines():
                            if line.startswith("data: ") and line != "data: [DONE]":
                                frames += 1
                else:
                    (await client.post(url + "/v1/completions", json=body)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        return time.perf_counter() - started, frames


async def main(requests: int, concurrency: int, tokens: int) -> None:
    server = ModelServer(MODEL, ENGINE, GPU, ActiveFaults(), speedup=1e6)
    await server.start()
    baseline, baseline_url = await _serve_baseline(tokens)
    targets: list[tuple[str, str]] = [("sim vLLM", server.url), ("aiohttp no-op", baseline_url)]

    def run(url: str, stream: bool) -> Awaitable[tuple[float, int]]:
        return _load(url, requests=requests, concurrency=concurrency, tokens=tokens, stream=stream)

    try:
        print(f"{requests} requests, {concurrency} concurrent, max_tokens={tokens}")
        for name, url in targets:
            await run(url, False)  # warm-up
            seconds, _ = await run(url, False)
            print(f"  {name:14s} non-streamed: {requests / seconds:8.0f} requests/s")
            seconds, frames = await run(url, True)
            print(
                f"  {name:14s} streamed:     {requests / seconds:8.0f} requests/s, {frames / seconds:9.0f} frames/s"
            )
    finally:
        await server.stop()
        await baseline.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency, args.tokens))
