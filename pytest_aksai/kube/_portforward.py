"""`kubectl port-forward` in-process: a local 127.0.0.1 port whose connections reach a pod's port through the
API server (`pods/<pod>/portforward`, WebSocket), using the official client's `kubernetes.stream.portforward`.

The official client gives one socket per WebSocket; HTTP clients want a TCP port they can open connections to,
so each accepted local connection gets its own port-forward stream, bridged by a small thread.

The accept thread alone owns the listening socket: `close()` wakes it through a socket pair and waits for it
to close the listener itself. Closing a listener from another thread while `accept()` may be entering the
kernel would let that `accept()` run on whatever socket reuses the file descriptor next — another forward's
listener — and hand it a connection meant for that forward.
"""

from __future__ import annotations

import contextlib
import re
import select
import selectors
import socket
import threading
import time
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward

from pytest_aksai._errors import ReadOnlyRefusal
from pytest_aksai.kube._connect import is_readonly
from pytest_aksai.kube._retry import MAX_RETRIES, RETRIED_STATUSES, backoff, clock_of

_CHUNK = 65536
_PROBE_SECONDS = 0.3
_JOIN_SECONDS = 5.0


class PortForwardError(Exception):
    """The API server refused or could not open the port-forward (RBAC, kubelet, network)."""


class PortForward:
    """Forward `127.0.0.1:<local_port>` to `port` of pod `namespace/pod`; close() stops it."""

    _opening = threading.Lock()
    """The official client's `stream()` swaps its ApiClient's `request` for the WebSocket one while a stream
    opens and swaps it back after: two streams opening at once can leave the swap in place for good."""

    def __init__(self, api_client: k8s.ApiClient, namespace: str, pod: str, port: int) -> None:
        if is_readonly(api_client):
            raise ReadOnlyRefusal(f"create pods/portforward {pod!r} in namespace {namespace!r}")
        # A client of its own, so that REST calls of other threads never meet the swapped `request`.
        self._api_client = k8s.ApiClient(api_client.configuration)
        self._core = k8s.CoreV1Api(self._api_client)
        self.namespace, self.pod, self.port = namespace, pod, port
        self._probe()  # fail now, with the API server's or the kubelet's reason, rather than on first use
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.local_port = int(self._listener.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._closed = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.last_error = ""
        """The last failure of a forwarded connection (the kubelet's error channel, a broken stream)."""
        self._thread = threading.Thread(target=self._accept, name=f"port-forward {pod}:{port}", daemon=True)
        self._thread.start()

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
        """A new stream; a throttled, failing or reset WebSocket upgrade is tried again under the kube
        layer's retry policy (the WebSocket client is not urllib3's, so the pool's `Retry` does not cover it)."""
        attempt = 0
        while True:
            try:
                with self._opening:
                    return portforward(
                        self._core.connect_get_namespaced_pod_portforward,
                        self.pod,
                        self.namespace,
                        ports=str(self.port),
                    )
            except ApiException as exc:
                attempt += 1
                if attempt > MAX_RETRIES or not _retryable_upgrade(exc):
                    raise PortForwardError(
                        f"port-forward to pod {self.namespace}/{self.pod}:{self.port} failed: "
                        f"{exc.reason or exc.status}"
                    ) from None
            clock = clock_of(self._api_client.configuration.retries)
            time.sleep(backoff(attempt) / (clock.time_scale if clock else 1.0))

    def _accept(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            try:
                while not self._closed.is_set():
                    for key, _ in selector.select():
                        if key.fileobj is self._wake_r or self._closed.is_set():
                            return
                        try:
                            local, _ = self._listener.accept()
                        except (BlockingIOError, InterruptedError):
                            continue
                        except OSError:
                            return
                        local.setblocking(True)
                        threading.Thread(target=self._bridge, args=(local,), daemon=True).start()
            finally:
                # Only this thread ever touches the listener, so its descriptor cannot be reused under it.
                self._listener.close()
                self._wake_r.close()

    def _bridge(self, local: socket.socket) -> None:
        with self._lock:
            if self._closed.is_set():
                local.close()
                return
            self._connections.add(local)
        try:
            forward = self._open_stream()
        except PortForwardError as exc:
            self.last_error = str(exc)
            self._drop(local)
            return
        broke = ""
        try:
            _pump(local, forward.socket(self.port), self._closed)
        except OSError as exc:
            broke = f"port-forward to pod {self.namespace}/{self.pod}:{self.port} broke: {exc}"
        finally:
            self._drop(local)
            error = forward.error(self.port)
            # The kubelet's own words (its error channel) say more than the broken pipe they caused.
            if error:
                self.last_error = f"port-forward to pod {self.namespace}/{self.pod}:{self.port}: {error}"
            elif broke:
                self.last_error = broke
            forward.close()

    def _drop(self, local: socket.socket) -> None:
        with self._lock:
            self._connections.discard(local)
        with contextlib.suppress(OSError):
            local.close()

    def close(self) -> None:
        """Stop accepting, end the forwarded connections, and return once the local port is closed."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if threading.current_thread() is not self._thread:
            self._thread.join(_JOIN_SECONDS)
        with contextlib.suppress(OSError):
            self._wake_w.close()
        with self._lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def _retryable_upgrade(exc: ApiException) -> bool:
    """The official client reports every WebSocket failure as status 0 with the cause's text: a handshake
    answered 429 or 5xx, or a connection lost or reset before it, is worth another try; a 403 or 404 is not."""
    if exc.status:
        return int(exc.status) in RETRIED_STATUSES
    handshake = re.search(r"Handshake status (\d{3})", str(exc.reason or ""))
    return handshake is None or int(handshake.group(1)) in RETRIED_STATUSES


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
