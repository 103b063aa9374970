"""`kubectl port-forward` in-process: a local 127.0.0.1 port whose connections reach a pod's port through the
API server (`pods/<pod>/portforward`, WebSocket), using the official client's `kubernetes.stream.portforward`.

The official client gives one socket per WebSocket; HTTP clients want a TCP port they can open connections to,
so each accepted local connection gets its own port-forward stream, bridged by a small thread.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward

_CHUNK = 65536
_PROBE_SECONDS = 0.3


class PortForwardError(Exception):
    """The API server refused or could not open the port-forward (RBAC, kubelet, network)."""


class PortForward:
    """Forward `127.0.0.1:<local_port>` to `port` of pod `namespace/pod`; close() stops it."""

    def __init__(self, api_client: k8s.ApiClient, namespace: str, pod: str, port: int) -> None:
        self._core = k8s.CoreV1Api(api_client)
        self.namespace, self.pod, self.port = namespace, pod, port
        self._probe()  # fail now, with the API server's or the kubelet's reason, rather than on first use
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.local_port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.last_error = ""
        """The last failure of a forwarded connection (the kubelet's error channel, a broken stream)."""
        threading.Thread(target=self._accept, name=f"port-forward {pod}:{port}", daemon=True).start()

    def _probe(self) -> None:
        """Open one stream and wait briefly for the kubelet's verdict: it dials the pod's port as the
        WebSocket opens and reports a refusal on the port's error channel, not as an upgrade failure."""
        forward = self._open_stream()
        try:
            deadline = time.monotonic() + _PROBE_SECONDS
            error = forward.error(self.port)
            while error is None and time.monotonic() < deadline:
                time.sleep(0.02)
                error = forward.error(self.port)
        finally:
            forward.close()
        if error:
            raise PortForwardError(
                f"port-forward to pod {self.namespace}/{self.pod}:{self.port} failed: {error}"
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def _open_stream(self) -> Any:
        try:
            forward = portforward(
                self._core.connect_get_namespaced_pod_portforward,
                self.pod,
                self.namespace,
                ports=str(self.port),
            )
        except ApiException as exc:
            raise PortForwardError(
                f"port-forward to pod {self.namespace}/{self.pod}:{self.port} failed: {exc.reason or exc.status}"
            ) from None
        return forward

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                local, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._bridge, args=(local,), daemon=True).start()

    def _bridge(self, local: socket.socket) -> None:
        try:
            forward = self._open_stream()
        except PortForwardError as exc:
            self.last_error = str(exc)
            local.close()
            return
        with self._lock:
            self._connections.add(local)
        remote = forward.socket(self.port)
        try:
            _pump(local, remote, self._closed)
        except OSError as exc:
            self.last_error = f"port-forward to pod {self.namespace}/{self.pod}:{self.port} broke: {exc}"
        finally:
            with self._lock:
                self._connections.discard(local)
            with contextlib.suppress(OSError):
                local.close()
            error = forward.error(self.port)
            if error:
                self.last_error = f"port-forward to pod {self.namespace}/{self.pod}:{self.port}: {error}"
            forward.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def _pump(local: socket.socket, remote: Any, closed: threading.Event) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {local: remote, remote: local}
    while not closed.is_set():
        readable, _, _ = select.select(list(peers), [], [], 0.5)
        for source in readable:
            try:
                data = source.recv(_CHUNK)
            except OSError:
                return
            if not data:
                return
            peers[source].sendall(data)
