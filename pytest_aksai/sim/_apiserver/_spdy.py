"""A server side of SPDY/3.1, the stream multiplexing kubectl's port-forward (and exec's fallback) speak.

kubectl 1.30+ tunnels SPDY through a WebSocket (`SPDY/3.1+portforward.k8s.io`), one binary message per
chunk of the SPDY byte stream; older clients upgrade the HTTP connection to `SPDY/3.1` directly. Either
way the session is the same: the client opens streams (SYN_STREAM with headers such as `streamtype` and
`port`), the server answers each with SYN_REPLY and exchanges DATA frames; FIN half-closes a stream.

Frame layout (SPDY/3 draft, section 2.2): control frames start with the control bit, the version (3) and
the type; data frames with the 31-bit stream id; both then carry 8 bits of flags and a 24-bit length.
Header blocks are zlib streams primed with the dictionary of section 2.6.10.1, one compression context per
direction for the whole session. The peer (spdystream) does no flow control, so neither does this side.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import Awaitable, Callable

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
_VERSION = 3
_MAX_DATA = 32 * 1024
RST_CANCEL = 5

# The header-compression dictionary of SPDY/3: length-prefixed header names and values, then a text tail.
_DICTIONARY_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date etag "
    "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
    "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
    "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
    "method get status |200 OK| version HTTP/1.1 url public set-cookie keep-alive origin"
)
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def _dictionary() -> bytes:
    words = []
    for chunk in _DICTIONARY_WORDS.split("|"):
        words.extend([chunk] if chunk == "200 OK" else chunk.split())
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + _DICTIONARY_TAIL.encode()


DICTIONARY = _dictionary()


class SpdyStream:
    def __init__(self, session: SpdySession, stream_id: int, headers: dict[str, str]) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    async def read(self) -> bytes:
        """The next chunk the client sent; b"" once it half-closed the stream (or reset it)."""
        if self.remote_closed and self._incoming.empty():
            return b""
        return await self._incoming.get()

    def _deliver(self, data: bytes, fin: bool) -> None:
        if data:
            self._incoming.put_nowait(data)
        if fin and not self.remote_closed:
            self.remote_closed = True
            self._incoming.put_nowait(b"")

    async def write(self, data: bytes) -> None:
        for start in range(0, len(data), _MAX_DATA):
            await self.session._send_data(self.id, data[start : start + _MAX_DATA], 0)

    async def close(self) -> None:
        """Half-close: FIN on an empty data frame."""
        if not self.local_closed:
            self.local_closed = True
            await self.session._send_data(self.id, b"", FLAG_FIN)


StreamHandler = Callable[[SpdyStream], Awaitable[None]]


class SpdySession:
    """Feed it the client's bytes; it writes frames through `send` and hands each new stream to `on_stream`."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], on_stream: StreamHandler) -> None:
        self._send = send
        self._on_stream = on_stream
        self._buffer = b""
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY
        )
        self.streams: dict[int, SpdyStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self.closed = asyncio.Event()

    async def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                return
            frame, self._buffer = self._buffer[: 8 + length], self._buffer[8 + length :]
            await self._frame(frame)

    async def _frame(self, frame: bytes) -> None:
        first, second = struct.unpack(">II", frame[:8])
        flags = second >> 24
        payload = frame[8:]
        if not first & 0x80000000:
            stream = self.streams.get(first & 0x7FFFFFFF)
            if stream is not None:
                stream._deliver(payload, bool(flags & FLAG_FIN))
            return
        kind = first & 0xFFFF
        if kind == SYN_STREAM:
            stream_id = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            stream = SpdyStream(self, stream_id, self._headers(payload[10:]))
            self.streams[stream_id] = stream
            await self._control(SYN_REPLY, 0, struct.pack(">I", stream_id) + self._header_block({}))
            if flags & FLAG_FIN:
                stream._deliver(b"", True)
            task = asyncio.create_task(self._run(stream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == RST_STREAM:
            stream = self.streams.pop(struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF, None)
            if stream is not None:
                stream.local_closed = True
                stream._deliver(b"", True)
        elif kind == PING:
            await self._control(PING, 0, payload[:4])
        elif kind == GOAWAY:
            await self.close()
        elif kind == HEADERS:
            self._headers(payload[4:])  # keeps the inflate context in step
        # SETTINGS and WINDOW_UPDATE need no answer: neither side enforces flow control.

    async def _run(self, stream: SpdyStream) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await self._on_stream(stream)

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        count = struct.unpack(">I", raw[:4])[0]
        offset, headers = 4, {}
        for _ in range(count):
            name_len = struct.unpack(">I", raw[offset : offset + 4])[0]
            name = raw[offset + 4 : offset + 4 + name_len].decode()
            offset += 4 + name_len
            value_len = struct.unpack(">I", raw[offset : offset + 4])[0]
            value = raw[offset + 4 : offset + 4 + value_len].decode()
            offset += 4 + value_len
            headers[name.lower()] = value.split("\x00", 1)[0]
        return headers

    def _header_block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.lower().encode() + struct.pack(">I", len(v)) + v.encode()
            for k, v in headers.items()
        )
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    async def _control(self, kind: int, flags: int, payload: bytes) -> None:
        header = struct.pack(">HHI", 0x8000 | _VERSION, kind, (flags << 24) | len(payload))
        await self._write(header + payload)

    async def _send_data(self, stream_id: int, data: bytes, flags: int) -> None:
        await self._write(struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data)

    async def _write(self, data: bytes) -> None:
        if self.closed.is_set():
            raise ConnectionResetError("the SPDY session is closed")
        async with self._lock:
            await self._send(data)

    async def reset(self, stream: SpdyStream) -> None:
        self.streams.pop(stream.id, None)
        with contextlib.suppress(ConnectionError):
            await self._control(RST_STREAM, 0, struct.pack(">II", stream.id, RST_CANCEL))

    async def close(self) -> None:
        self.closed.set()
        for stream in self.streams.values():
            stream._deliver(b"", True)
        for task in list(self._tasks):
            task.cancel()
