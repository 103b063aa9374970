"""Runs the simulated cluster: the API server on its own event loop, bootstrap, controllers, faults."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from pytest_aksai.sim import contract
from pytest_aksai.sim.contract import Fault

from . import _core
from ._addons import resolve
from ._apiserver import ApiError, ApiServer, Store
from ._apiserver._http import error_response
from ._apiserver._tls import make_serving_cert
from ._clock import VirtualClock
from ._context import SimContext
from ._faults import FAULTS_CONFIGMAP_NAME, FAULTS_CONFIGMAP_NAMESPACE, ActiveFaults
from ._scenarios import load_scenario

BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def sim_crds(addons: Sequence[str]) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of the installed add-ons (each add-on's `crd-*.yaml`)."""
    return [crd for addon in resolve(addons) for crd in addon.crds()]


_FLAKY_ERRORS = {
    # What kube-apiserver answers when it sheds load (max-in-flight / priority and fairness: 429 with
    # Retry-After 1), fails internally (500), or cannot reach etcd or an aggregated API (503).
    "429": lambda: ApiError(
        429,
        "Too many requests, please try again later.",
        details={"retryAfterSeconds": 1},
        retry_after=1,
    ),
    "500": lambda: ApiError(
        500,
        "Internal error occurred: the simulated cluster's api-flaky fault failed this request",
        details={"causes": [{"message": "api-flaky"}]},
    ),
    "503": lambda: ApiError(
        503, "the server is currently unable to handle the request", reason="ServiceUnavailable"
    ),
}


class Runtime:
    def __init__(
        self, *, scenario: str, time_scale: float, faults: Sequence[str], host: str, port: int
    ) -> None:
        self.scenario = scenario
        self.clock = VirtualClock(time_scale)
        self.faults = ActiveFaults(faults)
        self.host = host
        self.port = port
        self.internal_token = secrets.token_urlsafe(24)
        self.store = Store(self.clock)
        self.server = ApiServer(
            self.store, issuer="", internal_token=self.internal_token, middlewares=[self._flaky_middleware]
        )
        self.tls = make_serving_cert([host])
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.server_url = ""
        self.ctx: SimContext | None = None

    @web.middleware
    async def _flaky_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if (
            self.faults.is_active(Fault.API_FLAKY)
            and request.headers.get("Authorization", "")[7:] != self.internal_token
        ):
            percent, kinds = contract.api_flaky_parameter(self.faults.parameter(Fault.API_FLAKY))
            if random.random() * 100 < percent:
                kind = random.choice(kinds)
                if kind == "reset":
                    if request.transport is not None:
                        request.transport.abort()  # the client sees a connection reset
                    return web.Response(status=500)
                return error_response(_FLAKY_ERRORS[kind]())
        response: web.StreamResponse = await handler(request)
        return response

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        self.store.attach_loop(loop)
        self._runner = web.AppRunner(
            self.server.app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.host, self.port, reuse_address=True, ssl_context=self.tls.server_context()
        )
        await site.start()
        sockets = getattr(site, "_server").sockets  # noqa: B009 - aiohttp exposes the bound port only here
        port = sockets[0].getsockname()[1]
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self.server_url = f"https://{host}:{port}"
        self.server.tokens.issuer = self.server_url
        self._bootstrap()
        self.ctx = SimContext(
            store=self.store,
            clock=self.clock,
            faults=self.faults,
            scenario=self.scenario,
            server_url=self.server_url,
            pod_logs=self.server.pod_logs,
            internal_token=self.internal_token,
            issuer=self.server_url,
            ca_pem=self.tls.ca_pem,
            serving_cert=self.tls,
        )
        self._tasks.append(asyncio.create_task(self._sync_faults(), name="aksai-sim-faults"))
        self._tasks.extend(await _core.start(self.ctx))
        return self.server_url

    def _bootstrap(self) -> None:
        store = self.store
        namespaces = store.resource("v1", "namespaces")
        for name in BOOTSTRAP_NAMESPACES:
            store.create_raw(namespaces, {"metadata": {"name": name}})
        crds = store.resource("apiextensions.k8s.io/v1", "customresourcedefinitions")
        for crd in sim_crds(load_scenario(self.scenario).addons):
            store.create_raw(crds, crd)
        configmaps = store.resource("v1", "configmaps")
        store.create_raw(
            configmaps,
            {
                "metadata": {"name": contract.SIM_CONFIGMAP, "namespace": contract.SIM_NAMESPACE},
                "data": {
                    contract.KEY_TIME_SCALE: repr(self.clock.time_scale),
                    contract.KEY_SCENARIO: self.scenario,
                    contract.KEY_EPOCH: self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            },
        )
        store.create_raw(
            configmaps,
            {
                "metadata": {"name": FAULTS_CONFIGMAP_NAME, "namespace": FAULTS_CONFIGMAP_NAMESPACE},
                "data": self.faults.as_data(),
            },
        )

    async def _sync_faults(self) -> None:
        configmaps = self.store.resource("v1", "configmaps")
        watch = self.store.watch(
            configmaps, FAULTS_CONFIGMAP_NAMESPACE, field_selector=f"metadata.name={FAULTS_CONFIGMAP_NAME}"
        )
        async for event_type, obj in watch:
            if event_type == "DELETED":
                self.faults.replace({})
            else:
                self.faults.replace({str(k): str(v) for k, v in (obj.get("data") or {}).items()})

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.store.close_all_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
