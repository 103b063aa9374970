"""Benchmark of the simulated cluster's API server: `python benchmarks/bench_apiserver.py [--writes N]`.

Runs `python -m pytest_aksai.sim serve` in a subprocess (its own core; this process is the client) and
prints four figures with their ratio to the targets of issue 3, plus a baseline measured in the same run: a
no-op aiohttp HTTPS handler on this machine, driven by the same async client (when the simulated cluster's
GET/s is close to it, the client, not the server, is the limit). The create+get figure is also measured
with the cluster in the client's own process, as the pytest plugin runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import kubernetes
import yaml

from pytest_aksai.sim import SimCluster

TARGET_PAIRS = 400.0
TARGET_GETS = 2000.0
TARGET_WATCH_P95_MS = 5.0
TARGET_RSS_MB = 500.0


class _Server:
    def __init__(self, proc: subprocess.Popen[str], kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.proc = proc
        self.kubeconfig = kubeconfig
        self.url: str = cluster["server"]
        self.token: str = config["users"][0]["user"]["token"]
        self.ssl = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def session(self, connections: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl, limit=connections),
            headers={"Authorization": f"Bearer {self.token}"},
        )


@contextlib.contextmanager
def _serve() -> Iterator[_Server]:
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_aksai.sim", "serve", "--kubeconfig", str(kubeconfig)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("ready "):
                raise RuntimeError(f"the simulated cluster did not start: {line!r}")
            yield _Server(proc, kubeconfig)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def bench_create_get(kubeconfig: Path, pairs: int) -> float:
    """create+get pairs per second through the official synchronous client (one thread)."""
    client = kubernetes.config.new_client_from_config(str(kubeconfig))
    core = kubernetes.client.CoreV1Api(client)
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    for i in range(20):  # warm-up (connection pool, caches)
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"warm-{i}"}, "data": {"k": "v"}})
        core.read_namespaced_config_map(f"warm-{i}", ns)
    started = time.perf_counter()
    for i in range(pairs):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"cm-{i}"}, "data": {"k": "v"}})
        core.read_namespaced_config_map(f"cm-{i}", ns)
    rate = pairs / (time.perf_counter() - started)
    core.delete_namespace(ns)
    return rate


async def _get_rate(session: aiohttp.ClientSession, url: str, seconds: float, concurrency: int) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET {url}: {response.status}")
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def bench_gets(server: _Server, seconds: float, concurrency: int = 16) -> float:
    async with server.session(concurrency) as session:
        url = f"{server.url}/api/v1/namespaces/kube-system/configmaps/aksai-sim"
        await _get_rate(session, url, 0.5, concurrency)
        return await _get_rate(session, url, seconds, concurrency)


async def bench_watch(server: _Server, writes: int, watchers: int = 50) -> tuple[float, float]:
    """Latency from issuing a write to each of `watchers` watch streams receiving its event (ms p50, p95)."""
    ns = f"watch-{uuid.uuid4().hex[:6]}"
    base = f"{server.url}/api/v1/namespaces/{ns}/configmaps"
    latencies: list[float] = []
    sent: dict[str, float] = {}
    received: dict[str, int] = {}
    all_seen = asyncio.Event()
    async with server.session(watchers + 4) as session:
        async with session.post(f"{server.url}/api/v1/namespaces", json={"metadata": {"name": ns}}) as r:
            assert r.status == 201, await r.text()
        async with session.post(base, json={"metadata": {"name": "w"}, "data": {"i": "-1"}}) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        ready = 0
        ready_event = asyncio.Event()

        async def watcher() -> None:
            nonlocal ready
            async with session.get(
                base, params={"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "false"}
            ) as response:
                ready += 1
                if ready == watchers:
                    ready_event.set()
                async for line in response.content:
                    now = time.perf_counter()
                    if b'"MODIFIED"' not in line:
                        continue
                    marker = line.split(b'"i":"', 1)[1].split(b'"', 1)[0].decode()
                    latencies.append(now - sent[marker])
                    received[marker] = received.get(marker, 0) + 1
                    if received[marker] == watchers:
                        all_seen.set()

        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        await asyncio.wait_for(ready_event.wait(), 30)
        headers = {"Content-Type": "application/merge-patch+json"}
        for i in range(writes):
            all_seen.clear()
            sent[str(i)] = time.perf_counter()
            async with session.patch(f"{base}/w", data=f'{{"data": {{"i": "{i}"}}}}', headers=headers) as r:
                assert r.status == 200, await r.text()
            await asyncio.wait_for(all_seen.wait(), 30)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        async with session.delete(f"{server.url}/api/v1/namespaces/{ns}") as r:
            await r.read()
    latencies.sort()
    return statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.95)] * 1000


async def bench_memory(server: _Server, writes: int, concurrency: int = 16) -> tuple[float, float]:
    """RSS of the server after `writes` writes (creates of 2,000 ~1 KiB ConfigMaps, then updates)."""
    ns = f"mem-{uuid.uuid4().hex[:6]}"
    base = f"{server.url}/api/v1/namespaces/{ns}/configmaps"
    payload = "x" * 1024
    objects = min(2000, writes)
    counter = 0
    async with server.session(concurrency) as session:
        async with session.post(f"{server.url}/api/v1/namespaces", json={"metadata": {"name": ns}}) as r:
            assert r.status == 201

        async def worker() -> None:
            nonlocal counter
            headers = {"Content-Type": "application/merge-patch+json"}
            while counter < writes:
                i = counter
                counter += 1
                if i < objects:
                    request = session.post(base, json={"metadata": {"name": f"m{i}"}, "data": {"p": payload}})
                else:
                    request = session.patch(
                        f"{base}/m{i % objects}", data=f'{{"data": {{"n": "{i}"}}}}', headers=headers
                    )
                async with request as response:
                    await response.read()
                    if response.status not in (200, 201):
                        raise RuntimeError(f"write {i}: {response.status}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = writes / (time.perf_counter() - started)
    return server.rss_mb(), rate


def _baseline_in_subprocess(seconds: float, concurrency: int = 16) -> float:
    code = (
        "import asyncio, sys\n"
        "from aiohttp import web\n"
        "from pytest_aksai.sim._apiserver._tls import make_serving_cert\n"
        "cert = make_serving_cert(['127.0.0.1'])\n"
        "sys.stdout.write(cert.ca_pem.decode() + '\\n===\\n'); sys.stdout.flush()\n"
        "async def noop(_):\n"
        "    return web.json_response({'kind': 'Status', 'status': 'Success'})\n"
        "async def main():\n"
        "    app = web.Application(); app.router.add_get('/noop', noop)\n"
        "    runner = web.AppRunner(app, access_log=None); await runner.setup()\n"
        "    site = web.TCPSite(runner, '127.0.0.1', 0, ssl_context=cert.server_context()); await site.start()\n"
        "    print(site._server.sockets[0].getsockname()[1], flush=True)\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ca_lines = []
        for line in proc.stdout:
            if line.strip() == "===":
                break
            ca_lines.append(line)
        port = int(proc.stdout.readline())
        context = ssl.create_default_context(cadata="".join(ca_lines))

        async def run() -> float:
            connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
            async with aiohttp.ClientSession(connector=connector) as session:
                url = f"https://127.0.0.1:{port}/noop"
                await _get_rate(session, url, 0.5, concurrency)
                return await _get_rate(session, url, seconds, concurrency)

        return asyncio.run(run())
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000, help="create+get pairs (default 2000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each GET/s run (default 5)")
    parser.add_argument("--watch-writes", type=int, default=200, help="writes observed by 50 watchers")
    parser.add_argument("--writes", type=int, default=100_000, help="writes before measuring RSS")
    args = parser.parse_args(argv)
    rows: list[tuple[str, float, str, float | None]] = []
    with _serve() as server:
        pairs = bench_create_get(server.kubeconfig, args.pairs)
        rows.append(
            (
                "create+get pairs/s (official sync client)",
                pairs,
                f">= {TARGET_PAIRS:.0f}",
                pairs / TARGET_PAIRS,
            )
        )
        gets = asyncio.run(bench_gets(server, args.seconds))
        rows.append(
            ("GET/s (async keep-alive client, 16 conns)", gets, f">= {TARGET_GETS:.0f}", gets / TARGET_GETS)
        )
        p50, p95 = asyncio.run(bench_watch(server, args.watch_writes))
        rows.append(("watch latency p50 ms (50 watchers)", p50, "", None))
        rows.append(
            (
                "watch latency p95 ms (50 watchers)",
                p95,
                f"<= {TARGET_WATCH_P95_MS:.0f}",
                TARGET_WATCH_P95_MS / p95,
            )
        )
        rss, write_rate = asyncio.run(bench_memory(server, args.writes))
        rows.append(
            (f"RSS MB after {args.writes:,} writes", rss, f"< {TARGET_RSS_MB:.0f}", TARGET_RSS_MB / rss)
        )
        rows.append(("  (writes/s during that run, 16 conns)", write_rate, "", None))
    with SimCluster() as sim:  # as the plugin runs it: a thread of the test process, sharing its GIL
        shared = bench_create_get(sim.kubeconfig_path, args.pairs)
    rows.insert(
        1,
        (
            "  same, SimCluster in the client's process",
            shared,
            f">= {TARGET_PAIRS:.0f}",
            shared / TARGET_PAIRS,
        ),
    )
    baseline = _baseline_in_subprocess(args.seconds)
    rows.append(("baseline: no-op aiohttp HTTPS GET/s, same client", baseline, "", None))
    rows.append(("  sim GET/s as a share of the baseline", gets / baseline, "", None))
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'measured':>10}  {'target':>8}  ratio (>= 1 meets the target)")
    for name, value, target, ratio in rows:
        print(f"{name:<{width}}  {value:>10.2f}  {target:>8}  {'' if ratio is None else f'{ratio:.2f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
