"""The simulated Prometheus: scrapes every model server's `/metrics` each 15 cluster seconds and answers
`GET|POST /api/v1/query` (and `/-/ready`, `/-/healthy`) on the pods of Deployment `monitoring/prometheus-server`.

Targets are the Ready pods that serve HTTP in the sim (the `sim.aksai.dev/http-port` annotation) and answer
`/metrics` in the text exposition format, labelled as the community chart's `kubernetes-pods` job does
(`job`, `instance`, `namespace`, `pod`, `node` and the pod's labels). A target that disappears gets a
staleness marker, so its series leave instant queries at once, as in Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from pytest_aksai.sim._addons.prometheus._promql import Evaluator, QueryError, Series
from pytest_aksai.sim._apiserver import HTTP_PORT_ANNOTATION
from pytest_aksai.sim._core._framework import Controller, Obj, Watch, object_key
from pytest_aksai.sim.contract import Fault

NAMESPACE = "monitoring"
NAME = "prometheus-server"
PORT = 9090
SCRAPE_SECONDS = 15.0
RETENTION = 1800.0
_SKIP_NAMESPACES = frozenset({"kube-system", NAMESPACE, "keda"})


def _label_name(key: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


class PrometheusController(Controller):
    name = "prometheus"
    watches = (Watch("v1", "pods", lambda self, _t, pod: self.own_pod(pod)),)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.series: dict[tuple[tuple[str, str], ...], Series] = {}
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    @staticmethod
    def own_pod(pod: Obj) -> list[str]:
        meta = pod.get("metadata") or {}
        if meta.get("namespace") == NAMESPACE and (meta.get("labels") or {}).get("app") == NAME:
            return [object_key(pod)]
        return []

    def start(self) -> list[asyncio.Task[None]]:
        tasks = super().start()
        tasks.append(asyncio.create_task(self._scrape_loop(), name="prometheus:scrape"))
        return tasks

    # ---- the query API ---------------------------------------------------------------------------------
    async def _ensure_server(self) -> int:
        if self.port is not None:
            return self.port
        app = web.Application()
        app.router.add_route("*", "/api/v1/query", self._query)
        app.router.add_get("/-/ready", self._ready)
        app.router.add_get("/-/healthy", self._ready)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(getattr(site, "_server").sockets[0].getsockname()[1])  # noqa: B009
        return self.port

    async def _ready(self, _request: web.Request) -> web.Response:
        if self.ctx.faults.is_active(Fault.KEDA_METRICS_UNAVAILABLE):
            return web.Response(status=503, text="Service Unavailable")
        return web.Response(text="Prometheus Server is Ready.\n")

    async def _query(self, request: web.Request) -> web.Response:
        if self.ctx.faults.is_active(Fault.KEDA_METRICS_UNAVAILABLE):
            return web.Response(status=503, text="Service Unavailable")
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        text = params.get("query")
        if not text:
            return _error(
                'invalid parameter "query": unknown position: parse error: no expression found in input'
            )
        now = self.clock.now().timestamp()
        with contextlib.suppress(ValueError):
            if params.get("time"):
                now = min(now, float(params["time"]))
        try:
            value = Evaluator(self.series.values, now).query(text)
        except QueryError as exc:
            return _error(str(exc), exc.error_type)
        if isinstance(value, float):
            data: dict[str, Any] = {"resultType": "scalar", "result": [now, _fmt(value)]}
        else:
            data = {
                "resultType": "vector",
                "result": [{"metric": dict(s.labels), "value": [now, _fmt(s.value)]} for s in value],
            }
        return web.json_response({"status": "success", "data": data})

    # ---- the server's own pods -------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        pod = self.get("v1", "pods", key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return None
        running = any(
            "running" in (s.get("state") or {})
            for s in (pod.get("status") or {}).get("containerStatuses") or []
        )
        if not running:
            return None
        port = str(await self._ensure_server())
        if (pod["metadata"].get("annotations") or {}).get(HTTP_PORT_ANNOTATION) != port:
            self.store.patch(
                self.rt("v1", "pods"),
                pod["metadata"]["name"],
                {"metadata": {"annotations": {HTTP_PORT_ANNOTATION: port}}},
                "merge",
                namespace=NAMESPACE,
            )
        return None

    # ---- scraping --------------------------------------------------------------------------------------
    async def _scrape_loop(self) -> None:
        timeout = aiohttp.ClientTimeout(total=2.0)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while True:
                    with contextlib.suppress(Exception):
                        await self.scrape(session)
                    await asyncio.sleep(self.clock.wall_seconds(SCRAPE_SECONDS))
        finally:
            if self._runner is not None:
                await self._runner.cleanup()

    def targets(self) -> list[tuple[Obj, int]]:
        found = []
        for pod in self.list("v1", "pods"):
            meta = pod["metadata"]
            port = (meta.get("annotations") or {}).get(HTTP_PORT_ANNOTATION)
            if not port or meta.get("namespace") in _SKIP_NAMESPACES or meta.get("deletionTimestamp"):
                continue
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (pod.get("status") or {}).get("conditions") or []
            ):
                found.append((pod, int(port)))
        return found

    async def scrape(self, session: aiohttp.ClientSession) -> None:
        now = self.clock.now().timestamp()
        seen: set[tuple[tuple[str, str], ...]] = set()
        results = await asyncio.gather(
            *(self._scrape_one(session, pod, port) for pod, port in self.targets()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                continue
            for labels, value in result:
                series = self.series.get(labels)
                if series is None or series.stale_at is not None:
                    series = self.series[labels] = Series(labels)
                series.samples.append((now, value))
                seen.add(labels)
        for labels, series in list(self.series.items()):
            if labels not in seen and series.stale_at is None:
                series.stale_at = now
            series.samples = [(t, v) for t, v in series.samples if t > now - RETENTION]
            if not series.samples:
                del self.series[labels]

    async def _scrape_one(
        self, session: aiohttp.ClientSession, pod: Obj, port: int
    ) -> list[tuple[tuple[tuple[str, str], ...], float]]:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            if response.status != 200:
                return []
            text = await response.text()
        meta = pod["metadata"]
        target = {
            "job": "kubernetes-pods",
            "instance": f"{(pod.get('status') or {}).get('podIP', '127.0.0.1')}:{port}",
            "namespace": meta.get("namespace", ""),
            "pod": meta.get("name", ""),
            "node": (pod.get("spec") or {}).get("nodeName", ""),
            **{_label_name(k): v for k, v in (meta.get("labels") or {}).items()},
        }
        out = []
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = {**target, **sample.labels, "__name__": sample.name}
                out.append((tuple(sorted(labels.items())), float(sample.value)))
        return out


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _error(message: str, error_type: str = "bad_data") -> web.Response:
    status = 400 if error_type == "bad_data" else 422
    return web.json_response({"status": "error", "errorType": error_type, "error": message}, status=status)
