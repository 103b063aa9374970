"""Run one simulated vLLM server on a local port."""

from __future__ import annotations

from aiohttp import web

from pytest_aksai.sim._faults import ActiveFaults

from ._app import create_app, engine_of
from ._config import EngineConfig, GpuPerf, ServedModel
from ._engine import SimEngine


class ModelServer:
    """The vLLM server of one ready model pod, on 127.0.0.1. Start and stop it on the sim's event loop."""

    def __init__(
        self,
        model: ServedModel,
        engine: EngineConfig,
        gpu: GpuPerf,
        faults: ActiveFaults,
        *,
        speedup: float = 1.0,
        legacy_metrics: bool = False,
        version: str | None = None,
    ) -> None:
        self.app = create_app(
            model, engine, gpu, faults, speedup=speedup, legacy_metrics=legacy_metrics, version=version
        )
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._host = "127.0.0.1"

    @property
    def engine(self) -> SimEngine:
        return engine_of(self.app)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on host:port (0 picks a free port); returns the bound port."""
        if self._runner is not None:
            raise RuntimeError(f"the model server is already running at {self.url}")
        # handler_cancellation: a client that goes away aborts its request, freeing its batch slot.
        runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._host = host
        sockets = [s for s in runner.addresses if isinstance(s, tuple)]
        self._port = int(sockets[0][1])
        return self._port

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def mark_dead(self) -> None:
        """The engine core dies: in-flight requests fail and /health answers 503."""
        self.engine.mark_dead()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Base URL of the server (the OpenAI base URL is `url + "/v1"`)."""
        return f"http://{self._host}:{self._port}"
