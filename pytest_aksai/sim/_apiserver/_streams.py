"""`pods/<name>/exec|attach|portforward`: the streaming subresources, in every protocol clients speak.

- exec/attach over WebSocket with the channel subprotocols `v5.channel.k8s.io` (kubectl 1.30+, the Python
  client), `v4`…`v1`: one byte of channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize, 255 close) then
  the data; the error channel carries the final `Status` (v4+) or the error text (older).
- exec/attach and port-forward over SPDY/3.1 (`Upgrade: SPDY/3.1`, older kubectl and its fallback): one
  stream per channel named by its `streamtype` header.
- port-forward tunnelled through a WebSocket (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+): the SPDY byte
  stream in binary messages; and `v4.channel.k8s.io` with `?ports=` (the Python client).

The container side is the core's runtime (`Store.container_runtime`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from aiohttp import web

from ._errors import ApiError
from ._spdy import SpdySession, SpdyStream
from ._store import Obj

if TYPE_CHECKING:
    from ._server import ApiServer

_CHANNEL_PROTOCOLS = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
)
PORT_FORWARD_PROTOCOL = "portforward.k8s.io"
TUNNEL_PREFIX = "SPDY/3.1+"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


class ExecStartError(Exception):
    """Raised by the runtime when the process cannot start; the message is the runtime's."""


class Runtime(Protocol):
    async def exec(self, pod: Obj, container: Obj, argv: list[str], streams: Any) -> int: ...

    async def attach(self, pod: Obj, container: Obj, streams: Any) -> int: ...

    def listening_port(self, pod: Obj, port: int) -> int | None: ...


def _bool(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _status(exit_code: int | None, error: str | None, argv: list[str]) -> dict[str, Any]:
    if error is not None:
        return {
            "metadata": {},
            "status": "Failure",
            "message": f"Internal error occurred: error executing command in container: {error}",
            "reason": "InternalError",
            "details": {"causes": [{"message": f"error executing command in container: {error}"}]},
            "code": 500,
        }
    if not exit_code:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command "
            f"[{' '.join(argv)}], exit code {exit_code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
    }


class _Session:
    """What a running exec sees of its client, whatever carries it."""

    def __init__(self, tty: bool, has_stdin: bool, send: Callable[[int, bytes], Awaitable[None]]) -> None:
        self.tty = tty
        self.has_stdin = has_stdin
        self._send = send
        self.stdin: asyncio.Queue[bytes] = asyncio.Queue()

    async def read_stdin(self) -> bytes:
        return await self.stdin.get() if self.has_stdin else b""

    async def write_stdout(self, data: bytes) -> None:
        if data:
            await self._send(STDOUT, data.replace(b"\n", b"\r\n") if self.tty else data)

    async def write_stderr(self, data: bytes) -> None:
        if data:
            await self._send(
                STDOUT if self.tty else STDERR, data.replace(b"\n", b"\r\n") if self.tty else data
            )


class StreamHandlers:
    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.store = server.store

    @property
    def runtime(self) -> Runtime:
        runtime = getattr(self.store, "container_runtime", None)
        if runtime is None:
            raise ApiError(503, "the container runtime is not running", reason="ServiceUnavailable")
        return runtime  # type: ignore[no-any-return]

    def _pod(self, namespace: str, name: str) -> Obj:
        pods = self.store.storage_type("", "pods")
        assert pods is not None
        return self.store.get_raw(pods, name, namespace)

    def _container(self, pod: Obj, name: str | None, running: bool = True) -> Obj:
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or [])
        pod_name = pod["metadata"]["name"]
        if not spec.get("nodeName"):
            raise ApiError(400, f"pod {pod_name} does not have a host assigned", reason="BadRequest")
        if not name:
            if len(containers) != 1:
                names = " ".join(str(c.get("name")) for c in containers)
                raise ApiError(
                    400,
                    f"a container name must be specified for pod {pod_name}, choose one of: [{names}]",
                    reason="BadRequest",
                )
            name = str(containers[0].get("name"))
        everything = (
            containers + list(spec.get("initContainers") or []) + list(spec.get("ephemeralContainers") or [])
        )
        container: Obj | None = next((c for c in everything if c.get("name") == name), None)
        if container is None:
            raise ApiError(400, f"container {name} is not valid for pod {pod_name}", reason="BadRequest")
        statuses = [
            *((pod.get("status") or {}).get("containerStatuses") or []),
            *((pod.get("status") or {}).get("initContainerStatuses") or []),
        ]
        state: dict[str, Any] = next((s.get("state") or {} for s in statuses if s.get("name") == name), {})
        if running and "running" not in state:
            raise ApiError(404, f'container not found ("{name}")', reason="NotFound")
        return container

    # ---- exec / attach -----------------------------------------------------------------------------------
    async def exec(self, request: web.Request, namespace: str, name: str, attach: bool) -> web.StreamResponse:
        query = request.query
        argv = list(query.getall("command", []))
        if not attach and not argv:
            raise ApiError(400, "you must specify at least 1 command", reason="BadRequest")
        tty = _bool(query.get("tty"))
        has_stdin = _bool(query.get("stdin"))
        if not any(_bool(query.get(k)) for k in ("stdin", "stdout", "stderr")):
            raise ApiError(400, "you must specify at least 1 of stdin, stdout, stderr", reason="BadRequest")
        pod = self._pod(namespace, name)
        container = self._container(pod, query.get("container"))
        runtime = self.runtime

        async def run(session: _Session) -> dict[str, Any]:
            try:
                if attach:
                    code = await runtime.attach(pod, container, session)
                else:
                    code = await runtime.exec(pod, container, argv, session)
            except ExecStartError as exc:
                return _status(None, str(exc), argv)
            return _status(code, None, argv)

        upgrade = request.headers.get("Upgrade", "").lower()
        if upgrade == "websocket":
            return await self._exec_websocket(request, tty, has_stdin, run)
        if upgrade.startswith("spdy/"):
            return await self._exec_spdy(request, tty, has_stdin, run)
        raise ApiError(400, "Upgrade request required", reason="BadRequest")

    async def _exec_websocket(
        self,
        request: web.Request,
        tty: bool,
        has_stdin: bool,
        run: Callable[[_Session], Coroutine[Any, Any, dict[str, Any]]],
    ) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=_CHANNEL_PROTOCOLS, autoping=True, max_msg_size=0)
        await ws.prepare(request)
        protocol = ws.ws_protocol or ""

        async def send(channel: int, data: bytes) -> None:
            await ws.send_bytes(bytes((channel,)) + data)

        session = _Session(tty, has_stdin, send)
        process = asyncio.create_task(run(session))

        async def read_client() -> None:
            async for message in ws:
                raw = _payload(message)
                if not raw:
                    continue
                channel, data = raw[0], raw[1:]
                if channel == STDIN and data:
                    session.stdin.put_nowait(bytes(data))
                elif channel == CLOSE and data[:1] == bytes((STDIN,)):
                    session.stdin.put_nowait(b"")
            session.stdin.put_nowait(b"")
            await asyncio.sleep(0.05)
            process.cancel()

        reader = asyncio.create_task(read_client())
        try:
            status = await process
            if protocol.startswith(("v4.", "v5.")):
                await send(ERROR, json.dumps(status).encode())
            elif status["status"] != "Success":
                await send(ERROR, str(status["message"]).encode())
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _exec_spdy(
        self,
        request: web.Request,
        tty: bool,
        has_stdin: bool,
        run: Callable[[_Session], Coroutine[Any, Any, dict[str, Any]]],
    ) -> web.StreamResponse:
        offered = [p.strip() for p in request.headers.getall("X-Stream-Protocol-Version", [])]
        offered = [p for chunk in offered for p in chunk.split(",") if p]
        protocol = next((p for p in _CHANNEL_PROTOCOLS if p in offered), None)
        if protocol is None:
            raise ApiError(
                403,
                f"unable to upgrade: unable to negotiate protocol: client supports {offered}, server supports {list(_CHANNEL_PROTOCOLS)}",
            )
        streams: dict[str, SpdyStream] = {}
        wanted = {"error", *(k for k in ("stdin", "stdout", "stderr") if _bool(request.query.get(k)))}
        if tty:
            wanted.discard("stderr")
        ready = asyncio.Event()

        async def on_stream(stream: SpdyStream) -> None:
            kind = stream.header("streamtype")
            streams[kind] = stream
            if wanted <= streams.keys():
                ready.set()
            if kind == "stdin":
                while chunk := await stream.read():
                    session.stdin.put_nowait(chunk)
                session.stdin.put_nowait(b"")

        async def send(channel: int, data: bytes) -> None:
            stream = streams.get({STDOUT: "stdout", STDERR: "stderr", ERROR: "error"}[channel])
            if stream is not None:
                await stream.write(data)

        session = _Session(tty, has_stdin, send)
        transport = await _upgrade_spdy(request, protocol)

        async def after_ready(spdy: SpdySession) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), 5.0)
            status = await run(session)
            error = streams.get("error")
            if error is not None:
                if protocol.startswith(("v4.", "v5.")):
                    await error.write(json.dumps(status).encode())
                elif status["status"] != "Success":
                    await error.write(str(status["message"]).encode())
            for stream in list(streams.values()):
                with contextlib.suppress(ConnectionError):
                    await stream.close()
            await asyncio.sleep(0.05)
            await spdy.close()

        await transport.serve(on_stream, after_ready)
        return transport.response

    # ---- port-forward ------------------------------------------------------------------------------------
    async def port_forward(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        pod = self._pod(namespace, name)
        pod_name = pod["metadata"]["name"]
        if (pod.get("status") or {}).get("phase") != "Running":
            raise ApiError(
                400,
                f"unable to forward port because pod is not running. Current status="
                f"{(pod.get('status') or {}).get('phase', 'Pending')}",
                reason="BadRequest",
            )
        runtime = self.runtime
        sandbox = secrets.token_hex(32)
        upgrade = request.headers.get("Upgrade", "").lower()

        async def forward(stream_pair: tuple[SpdyStream | None, SpdyStream], port: int) -> None:
            error_stream, data_stream = stream_pair
            local = runtime.listening_port(pod, port)
            connection = None
            if local is not None:
                with contextlib.suppress(OSError):
                    connection = await asyncio.open_connection("127.0.0.1", local)
            if connection is None:
                message = _forward_error(port, sandbox, pod)
                if error_stream is not None:
                    await error_stream.write(message.encode())
                    await error_stream.close()
                await data_stream.close()
                return
            reader, writer = connection

            async def upstream() -> None:
                while chunk := await reader.read(65536):
                    await data_stream.write(chunk)
                await data_stream.close()

            pump = asyncio.create_task(upstream())
            try:
                while chunk := await data_stream.read():
                    writer.write(chunk)
                    await writer.drain()
                with contextlib.suppress(OSError):
                    writer.write_eof()
                await pump
            finally:
                pump.cancel()
                writer.close()
                if error_stream is not None:
                    with contextlib.suppress(ConnectionError):
                        await error_stream.close()

        if upgrade == "websocket":
            offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
            if TUNNEL_PREFIX + PORT_FORWARD_PROTOCOL in offered:
                return await self._port_forward_tunnel(request, forward)
            return await self._port_forward_channels(request, pod_name, runtime, pod, sandbox)
        if upgrade.startswith("spdy/"):
            transport = await _upgrade_spdy(request, PORT_FORWARD_PROTOCOL)
            await transport.serve(_pairing(forward), None)
            return transport.response
        raise ApiError(400, "Upgrade request required", reason="BadRequest")

    async def _port_forward_tunnel(
        self,
        request: web.Request,
        forward: Callable[[tuple[SpdyStream | None, SpdyStream], int], Awaitable[None]],
    ) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            protocols=(TUNNEL_PREFIX + PORT_FORWARD_PROTOCOL,), autoping=True, max_msg_size=0
        )
        await ws.prepare(request)
        session = SpdySession(ws.send_bytes, _pairing(forward))
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    await session.feed(bytes(message.data))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            await session.close()
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _port_forward_channels(
        self, request: web.Request, pod_name: str, runtime: Runtime, pod: Obj, sandbox: str
    ) -> web.StreamResponse:
        """`v4.channel.k8s.io` with `?ports=`: per port a data channel (2i) and an error channel (2i+1), each
        opened by a frame with the port number (2 bytes, little endian)."""
        requested = ",".join(request.query.getall("ports", []))
        try:
            ports = [int(p) for p in requested.split(",") if p]
        except ValueError:
            raise ApiError(400, f'invalid port "{requested}"', reason="BadRequest") from None
        if not ports or any(not 0 < p < 65536 for p in ports):
            raise ApiError(400, 'query parameter "port" is required', reason="BadRequest")
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",), autoping=True, max_msg_size=0)
        await ws.prepare(request)
        writers: dict[int, asyncio.StreamWriter] = {}
        pumps: list[asyncio.Task[None]] = []
        for index, port in enumerate(ports):
            header = port.to_bytes(2, "little")
            await ws.send_bytes(bytes((2 * index,)) + header)
            await ws.send_bytes(bytes((2 * index + 1,)) + header)
            local = runtime.listening_port(pod, port)
            connection = None
            if local is not None:
                with contextlib.suppress(OSError):
                    connection = await asyncio.open_connection("127.0.0.1", local)
            if connection is None:
                await ws.send_bytes(bytes((2 * index + 1,)) + _forward_error(port, sandbox, pod).encode())
                continue
            reader, writer = connection
            writers[index] = writer

            async def upstream(index: int = index, reader: asyncio.StreamReader = reader) -> None:
                while chunk := await reader.read(65536):
                    await ws.send_bytes(bytes((2 * index,)) + chunk)
                await ws.close()

            pumps.append(asyncio.create_task(upstream()))
        if not writers:
            await ws.close()
            return ws
        try:
            async for message in ws:
                raw = _payload(message)
                if not raw:
                    continue
                channel, data = raw[0], raw[1:]
                target = writers.get(channel // 2) if channel % 2 == 0 else None
                if target is not None and data:
                    target.write(data)
                    await target.drain()
        finally:
            for pump in pumps:
                pump.cancel()
            for writer in writers.values():
                writer.close()
        return ws


def _payload(message: aiohttp.WSMessage) -> bytes:
    """A channel message's bytes: clients send binary frames, some (the Python client's str writes) text."""
    if message.type == aiohttp.WSMsgType.BINARY:
        return bytes(message.data)
    if message.type == aiohttp.WSMsgType.TEXT:
        return str(message.data).encode()
    return b""


def _forward_error(port: int, sandbox: str, pod: Obj) -> str:
    uid = pod["metadata"].get("uid", "")
    netns = f"/var/run/netns/cni-{uid}"
    return (
        f"error forwarding port {port} to pod {sandbox}, uid : failed to execute portforward in network "
        f'namespace "{netns}": failed to connect to localhost:{port} inside namespace "{sandbox}", IPv4: '
        f"dial tcp4 127.0.0.1:{port}: connect: connection refused IPv6 dial tcp6 [::1]:{port}: connect: "
        "connection refused "
    )


def _pairing(
    forward: Callable[[tuple[SpdyStream | None, SpdyStream], int], Awaitable[None]],
) -> Callable[[SpdyStream], Awaitable[None]]:
    """Port-forward streams come in pairs (error, data) sharing a `requestid`; forward once the data one is here."""
    errors: dict[str, SpdyStream] = {}

    async def on_stream(stream: SpdyStream) -> None:
        request_id = stream.header("requestid")
        try:
            port = int(stream.header("port"))
        except ValueError:
            await stream.session.reset(stream)
            return
        if stream.header("streamtype") == "error":
            errors[request_id] = stream
            return
        for _ in range(50):  # the error stream is created first; tolerate either order
            if request_id in errors:
                break
            await asyncio.sleep(0.01)
        await forward((errors.pop(request_id, None), stream), port)

    return on_stream


class _SpdyUpgrade:
    """A connection upgraded to raw SPDY/3.1: aiohttp hands over its bytes, we write to the transport."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self.request = request
        self.response = response
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()

    # the parser interface aiohttp's protocol feeds once a connection is upgraded
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.incoming.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.incoming.put_nowait(b"")

    async def serve(
        self,
        on_stream: Callable[[SpdyStream], Awaitable[None]],
        after: Callable[[SpdySession], Coroutine[Any, Any, None]] | None,
    ) -> None:
        transport = self.request.transport
        assert transport is not None

        async def send(data: bytes) -> None:
            if transport.is_closing():
                raise ConnectionResetError("connection closed")
            transport.write(data)

        session = SpdySession(send, on_stream)
        finisher = asyncio.create_task(after(session)) if after is not None else None
        try:
            while not session.closed.is_set():
                getter = asyncio.create_task(self.incoming.get())
                closed = asyncio.create_task(session.closed.wait())
                done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                closed.cancel()
                if getter not in done:
                    getter.cancel()
                    break
                data = getter.result()
                if not data:
                    break
                await session.feed(data)
        finally:
            await session.close()
            if finisher is not None:
                finisher.cancel()
            transport.close()


async def _upgrade_spdy(request: web.Request, protocol: str) -> _SpdyUpgrade:
    response = web.StreamResponse(
        status=101,
        headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": protocol},
    )
    await response.prepare(request)
    upgrade = _SpdyUpgrade(request, response)
    request.protocol.set_parser(upgrade)  # type: ignore[arg-type]
    return upgrade
