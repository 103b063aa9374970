"""SimCluster: the simulated cluster on its own event loop in a daemon thread."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from pytest_aksai.sim.contract import DEFAULT_TIME_SCALE, KUBECONFIG_CONTEXT, RESTRICTED_CONTEXT, parse_fault

__all__ = ["SimCluster", "SimClusterError"]

_START_TIMEOUT = 60.0


class SimClusterError(RuntimeError):
    """The simulated cluster could not start."""


class SimCluster:
    """The simulated cluster on its own asyncio loop in a daemon thread; a context manager."""

    def __init__(
        self,
        *,
        scenario: str = "default",
        time_scale: float = DEFAULT_TIME_SCALE,
        faults: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        kubeconfig_path: Path | None = None,
    ) -> None:
        if not time_scale > 0:
            raise SimClusterError(
                f"the time scale (--time-scale, time_scale=) must be a number > 0 (cluster seconds "
                f"per wall second), got {time_scale!r}; use e.g. 60 for one cluster minute per "
                "wall second"
            )
        if not 0 <= port < 65536:
            raise SimClusterError(f"port must be 0 (any free port) or 1-65535, got {port!r}")
        for fault in faults:
            try:
                parse_fault(fault)
            except ValueError as exc:
                raise SimClusterError(str(exc)) from None
        self.scenario = scenario
        self.time_scale = float(time_scale)
        self.faults = tuple(faults)
        self.host = host
        self.port = port
        self._own_dir: Path | None = None
        if kubeconfig_path is None:
            self._own_dir = Path(tempfile.mkdtemp(prefix="aksai-sim-"))
            kubeconfig_path = self._own_dir / "kubeconfig"
        self.kubeconfig_path: Path = Path(kubeconfig_path)
        self.server_url = ""
        self.ca_pem = b""
        """The CA of the API server's serving certificate (PEM)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runtime: object | None = None

    def start(self) -> SimCluster:
        if self._thread is not None:
            return self
        from ._runtime import Runtime

        runtime = Runtime(
            scenario=self.scenario,
            time_scale=self.time_scale,
            faults=self.faults,
            host=self.host,
            port=self.port,
        )
        self._runtime = runtime
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="aksai-sim", daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(runtime.start(), loop)
        try:
            self.server_url = future.result(_START_TIMEOUT)
        except OSError as exc:
            self.stop()
            raise SimClusterError(
                f"the simulated cluster could not listen on {self.host}:{self.port}: {exc}; "
                "pick another --port (0 chooses a free one)"
            ) from exc
        except Exception as exc:
            self.stop()
            raise SimClusterError(f"the simulated cluster failed to start: {exc}") from exc
        self.ca_pem = runtime.tls.ca_pem
        self._write_kubeconfig(
            runtime.server.tokens.admin_token, runtime.server.tokens.restricted_token, runtime.tls.ca_pem
        )
        return self

    def _write_kubeconfig(self, token: str, restricted_token: str, ca_pem: bytes) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {
                    "name": KUBECONFIG_CONTEXT,
                    "cluster": {
                        "server": self.server_url,
                        "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                    },
                }
            ],
            "users": [
                {"name": f"{KUBECONFIG_CONTEXT}-admin", "user": {"token": token}},
                {"name": RESTRICTED_CONTEXT, "user": {"token": restricted_token}},
            ],
            "contexts": [
                {
                    "name": KUBECONFIG_CONTEXT,
                    "context": {
                        "cluster": KUBECONFIG_CONTEXT,
                        "user": f"{KUBECONFIG_CONTEXT}-admin",
                        "namespace": "default",
                    },
                },
                {
                    "name": RESTRICTED_CONTEXT,
                    "context": {
                        "cluster": KUBECONFIG_CONTEXT,
                        "user": RESTRICTED_CONTEXT,
                        "namespace": "default",
                    },
                },
            ],
            "current-context": KUBECONFIG_CONTEXT,
        }
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.kubeconfig_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)

    def stop(self) -> None:
        loop, thread, runtime = self._loop, self._thread, self._runtime
        self._loop = self._thread = self._runtime = None
        if loop is not None and runtime is not None and thread is not None and thread.is_alive():
            from ._runtime import Runtime

            assert isinstance(runtime, Runtime)
            future = asyncio.run_coroutine_threadsafe(runtime.stop(), loop)
            try:
                future.result(_START_TIMEOUT)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(_START_TIMEOUT)
                loop.close()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def audit_events(self) -> list[Any]:
        """The API server's audit log: each resource request with its user, verb, group, resource,
        subresource, namespace, name and whether RBAC allowed it (`_apiserver._rbac.AuditEvent`), oldest
        first. Requests the `api-flaky` fault failed never reached the API server and are not in it."""
        loop, runtime = self._loop, self._runtime
        if loop is None or runtime is None:
            return []
        from ._runtime import Runtime

        assert isinstance(runtime, Runtime)

        async def copy() -> list[Any]:
            return runtime.server.audit.events()

        return asyncio.run_coroutine_threadsafe(copy(), loop).result(_START_TIMEOUT)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The cluster's event loop (for tests that inspect the store in-process)."""
        return self._loop

    def __enter__(self) -> SimCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
