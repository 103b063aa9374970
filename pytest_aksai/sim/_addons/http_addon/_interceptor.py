"""The HTTP add-on's interceptor proxy (v0.15 semantics): route, count, hold during a cold start, forward.

- Routing: by `Host` (port stripped; an HTTPScaledObject without `hosts` matches any host) and the longest
  matching path prefix; no route → 404.
- Counting: a request is pending from arrival until its response ends; the sum per route is the
  `concurrency` the external scaler reports, and the first request of a route at rest is pushed to KEDA
  at once (the external-push stream).
- Cold start: while the target Service has no ready endpoint (EndpointSlice `conditions.ready`, which is
  always true with `publishNotReadyAddresses`, as `pkg/k8s/ready_endpoints_cache.go` respects), the
  request waits — `KEDA_HTTP_READINESS_TIMEOUT` is 0 since v0.14, so only the client's deadline bounds it;
  `X-KEDA-HTTP-Cold-Start: true` marks a response that had to wait. With the `keda-interceptor-timeout`
  fault the interceptor gives up after 20 s (the ≤ v0.13 condition-wait default) with `504 Gateway Timeout`.
- Forwarding: dial an endpoint; a pod with an address but no listening server (a vLLM still loading, the
  `publishNotReadyAddresses` trap) refuses, and the dial is retried every 50 ms for up to 1 minute before
  `504 Gateway Timeout`; other upstream errors → `502 Bad Gateway`.

Times are cluster seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from typing import Any
from weakref import WeakKeyDictionary

import aiohttp
from aiohttp import web

from pytest_aksai.sim._addons.keda._shared import shared
from pytest_aksai.sim._apiserver import HTTP_PORT_ANNOTATION, Store
from pytest_aksai.sim._core._framework import Controller, Obj, Watch, object_key
from pytest_aksai.sim.contract import Fault

NAMESPACE = "keda"
DEPLOYMENT = "keda-add-ons-http-interceptor"
PROXY_SERVICE = "keda-add-ons-http-interceptor-proxy"
PROXY_PORT = 8080
COLD_START_HEADER = "X-KEDA-HTTP-Cold-Start"
LEGACY_CONDITION_WAIT = 20.0
DIAL_RETRY_CAP = 60.0
DIAL_RETRY_EVERY = 0.05
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"})


class Interceptor:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.store: Store = ctx.store
        self.routes: dict[str, Obj] = {}
        self.pending: dict[str, int] = defaultdict(int)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def demand(self, route: str) -> int:
        return self.pending.get(route, 0)

    async def start(self) -> int:
        if self.port is None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self.handle)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = int(getattr(site, "_server").sockets[0].getsockname()[1])  # noqa: B009
        return self.port

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- routing -----------------------------------------------------------------------------------------
    def route_for(self, host: str, path: str) -> str | None:
        host = host.rsplit(":", 1)[0] if not host.startswith("[") else host
        best: tuple[int, int, str] | None = None
        for key, httpso in self.routes.items():
            spec = httpso.get("spec") or {}
            hosts = spec.get("hosts") or []
            if hosts and host not in hosts:
                continue
            for prefix in spec.get("pathPrefixes") or ["/"]:
                if path.startswith(prefix):
                    rank = (1 if hosts else 0, len(prefix), key)
                    if best is None or rank > best:
                        best = rank
        return best[2] if best else None

    # ---- endpoints ---------------------------------------------------------------------------------------
    def _endpoint_pods(self, namespace: str, service: str) -> list[str]:
        """Names of the pods the EndpointSlices of `service` list as ready."""
        slices = self.store.list(
            self.store.resource("discovery.k8s.io/v1", "endpointslices"),
            namespace,
            label_selector=f"kubernetes.io/service-name={service}",
        )
        names = []
        for item in slices:
            for endpoint in item.get("endpoints") or []:
                ready = (endpoint.get("conditions") or {}).get("ready")
                ref = endpoint.get("targetRef") or {}
                if (ready is None or ready) and ref.get("kind") == "Pod":
                    names.append(str(ref.get("name")))
        return names

    def _pod_port(self, namespace: str, name: str) -> int | None:
        pod = self.store.try_get(self.store.resource("v1", "pods"), name, namespace)
        port = ((pod or {}).get("metadata", {}).get("annotations") or {}).get(HTTP_PORT_ANNOTATION)
        return int(port) if port else None

    async def _wait_ready(self, namespace: str, service: str, deadline: float | None) -> list[str]:
        clock = self.ctx.clock
        while True:
            pods = self._endpoint_pods(namespace, service)
            if pods:
                return pods
            if deadline is not None and clock.now().timestamp() >= deadline:
                return []
            await asyncio.sleep(clock.wall_seconds(0.5))

    async def _dial(self, namespace: str, pods: list[str], service: str) -> int | None:
        clock = self.ctx.clock
        give_up = clock.now().timestamp() + DIAL_RETRY_CAP
        while True:
            candidates = [p for p in (self._pod_port(namespace, name) for name in pods) if p]
            if candidates:
                return random.choice(candidates)
            if clock.now().timestamp() >= give_up:
                return None
            await asyncio.sleep(max(clock.wall_seconds(DIAL_RETRY_EVERY), 0.001))
            pods = self._endpoint_pods(namespace, service) or pods

    # ---- the handler -------------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = self.route_for(request.host, request.path)
        if key is None:
            return web.Response(
                status=404,
                text=f"context marked done while waiting for routing table: host {request.host!r} and path {request.path!r} are not routed\n",
            )
        httpso = self.routes[key]
        namespace = key.split("/", 1)[0]
        ref = (httpso.get("spec") or {}).get("scaleTargetRef") or {}
        service = str(ref.get("service") or "")
        body = await request.read() if request.can_read_body else None
        self.pending[key] += 1
        if self.pending[key] == 1:
            shared(self.ctx).push(key)
        try:
            pods = self._endpoint_pods(namespace, service)
            cold = not pods
            if cold:
                deadline = None
                if self.ctx.faults.is_active(Fault.KEDA_INTERCEPTOR_TIMEOUT):
                    deadline = self.ctx.clock.now().timestamp() + LEGACY_CONDITION_WAIT
                pods = await self._wait_ready(namespace, service, deadline)
                if not pods:
                    return web.Response(
                        status=504, text="Gateway Timeout\n", headers={COLD_START_HEADER: "true"}
                    )
            port = await self._dial(namespace, pods, service)
            if port is None:
                return web.Response(
                    status=504, text="Gateway Timeout\n", headers={COLD_START_HEADER: str(cold).lower()}
                )
            return await self._forward(request, port, body, cold)
        finally:
            self.pending[key] -= 1

    async def _forward(
        self, request: web.Request, port: int, body: bytes | None, cold: bool
    ) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["X-Forwarded-Host"] = request.host
        try:
            async with self._session.request(
                request.method,
                f"http://127.0.0.1:{port}{request.path_qs}",
                headers=headers,
                data=body,
                allow_redirects=False,
            ) as upstream:
                response = web.StreamResponse(
                    status=upstream.status,
                    headers={
                        **{k: v for k, v in upstream.headers.items() if k.lower() not in _HOP},
                        COLD_START_HEADER: str(cold).lower(),
                    },
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientError:
            return web.Response(
                status=502, text="Bad Gateway\n", headers={COLD_START_HEADER: str(cold).lower()}
            )


_INTERCEPTORS: WeakKeyDictionary[Store, Interceptor] = WeakKeyDictionary()


def interceptor_of(ctx: Any) -> Interceptor:
    found = _INTERCEPTORS.get(ctx.store)
    if found is None:
        found = _INTERCEPTORS[ctx.store] = Interceptor(ctx)
    return found


def _own_pod(_self: Any, _type: str, pod: Obj) -> list[str]:
    meta = pod.get("metadata") or {}
    if meta.get("namespace") == NAMESPACE and (meta.get("labels") or {}).get("app") == DEPLOYMENT:
        return [object_key(pod)]
    return []


class InterceptorController(Controller):
    """Plays the interceptor pods: their port annotation points at the one interceptor server, and the
    proxy Service `keda-add-ons-http-interceptor-proxy` (8080) selects them, as the Helm chart names it."""

    name = "keda-add-ons-http-interceptor"
    watches = (Watch("v1", "pods", _own_pod),)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.interceptor = interceptor_of(ctx)

    def start(self) -> list[asyncio.Task[None]]:
        tasks = super().start()
        tasks.append(asyncio.create_task(self._stop_on_cancel(), name="interceptor:server"))
        self._ensure_service()
        return tasks

    async def _stop_on_cancel(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):
                await self.interceptor.stop()

    def _ensure_service(self) -> None:
        rt = self.rt("v1", "services")
        if self.store.try_get(rt, PROXY_SERVICE, NAMESPACE) is not None:
            return
        with contextlib.suppress(Exception):
            self.store.create(
                rt,
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": PROXY_SERVICE,
                        "namespace": NAMESPACE,
                        "labels": {"app": DEPLOYMENT, "app.kubernetes.io/component": "interceptor"},
                    },
                    "spec": {
                        "selector": {"app": DEPLOYMENT},
                        "ports": [
                            {"name": "proxy", "port": PROXY_PORT, "targetPort": "proxy", "protocol": "TCP"}
                        ],
                    },
                },
                namespace=NAMESPACE,
            )

    async def reconcile(self, key: str) -> float | None:
        pod = self.get("v1", "pods", key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return None
        if not any(
            "running" in (s.get("state") or {})
            for s in (pod.get("status") or {}).get("containerStatuses") or []
        ):
            return None
        port = str(await self.interceptor.start())
        if (pod["metadata"].get("annotations") or {}).get(HTTP_PORT_ANNOTATION) != port:
            self.store.patch(
                self.rt("v1", "pods"),
                pod["metadata"]["name"],
                {"metadata": {"annotations": {HTTP_PORT_ANNOTATION: port}}},
                "merge",
                namespace=NAMESPACE,
            )
        return None
