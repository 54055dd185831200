"""A minimal keep-alive HTTP/1.1 client for benchmarks: one request at a time per connection.

httpx spends more CPU per request than the server it measures at thousands of requests/s;
this client does only what a benchmark's loop needs, on an ``asyncio.Protocol`` (uvloop).

The parser is sans-I/O: ``ResponseParser.feed(bytes)`` returns the responses completed by
those bytes, in order, and never awaits. It handles what servers send to such a client:
``Content-Length`` bodies, ``Transfer-Encoding: chunked`` bodies (trailers skipped), and no
body for 1xx, 204 and 304. Invariants: bytes past a complete response stay buffered for
the next one; a malformed head raises ``ProtocolError`` and the parser is then unusable.
``Connection: close`` (or HTTP/1.0 without keep-alive) marks the response ``keep_alive=False``.

``Http1Connection`` sends one request and waits for its response; a connection lost with a
request outstanding fails that request with ``ConnectionError``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

MAX_HEAD_BYTES = 64 * 1024
NO_BODY = frozenset({204, 304})


class ProtocolError(Exception):
    """The server sent something that is not an HTTP/1.1 response."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class ResponseParser:
    """Incremental HTTP/1.1 response parser (see the module docstring)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head: tuple[int, dict[str, str], bool] | None = None
        self._length: int | None = None  # Content-Length body still to read
        self._chunked = False
        self._chunks = bytearray()

    def feed(self, data: bytes) -> list[Response]:
        """Take bytes from the socket; returns the responses they complete."""
        self._buffer += data
        done: list[Response] = []
        while True:
            if self._head is None and not self._parse_head():
                return done
            body = self._parse_body()
            if body is None:
                return done
            assert self._head is not None
            status, headers, keep_alive = self._head
            self._head = None
            done.append(Response(status, headers, body, keep_alive))

    def _parse_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise ProtocolError("response head too large")
            return False
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise ProtocolError(f"bad status line: {lines[0]!r}")
        status = int(code)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(f"bad header line: {line!r}")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
        self._head = (status, headers, keep_alive)
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if status < 200 or status in NO_BODY or self._chunked:
            self._length = 0
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError:
                raise ProtocolError("bad Content-Length") from None
            if self._length < 0:
                raise ProtocolError("bad Content-Length")
        else:
            # A body delimited by closing the connection cannot be kept alive: refuse it
            # rather than guess where it ends.
            raise ProtocolError("response without Content-Length or chunked encoding")
        return True

    def _parse_body(self) -> bytes | None:
        """The complete body, or None until enough bytes have come."""
        if self._chunked:
            return self._parse_chunks()
        assert self._length is not None
        if len(self._buffer) < self._length:
            return None
        body = bytes(self._buffer[: self._length])
        del self._buffer[: self._length]
        return body

    def _parse_chunks(self) -> bytes | None:
        while True:
            end = self._buffer.find(b"\r\n")
            if end < 0:
                return None
            size_text = bytes(self._buffer[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size: {size_text!r}") from None
            if size == 0:
                # Last chunk: skip the trailer section up to the empty line that ends it
                # (at once when there are no trailers).
                trailer_end = self._buffer.find(b"\r\n\r\n", end)
                if trailer_end < 0:
                    return None
                del self._buffer[: trailer_end + 4]
                body = bytes(self._chunks)
                self._chunks.clear()
                self._chunked = False
                return body
            if len(self._buffer) < end + 2 + size + 2:
                return None
            start = end + 2
            self._chunks += self._buffer[start : start + size]
            if self._buffer[start + size : start + size + 2] != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")
            del self._buffer[: start + size + 2]


class Http1Connection(asyncio.Protocol):
    """One keep-alive connection; ``request`` sends one request and awaits its response."""

    def __init__(self, host: str, port: int) -> None:
        self._host_header = f"Host: {host}:{port}\r\n".encode()
        self._parser = ResponseParser()
        self._transport: asyncio.Transport | None = None
        self._waiting: asyncio.Future[Response] | None = None
        self._lost: Exception | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> Http1Connection:
        loop = asyncio.get_running_loop()
        _transport, protocol = await loop.create_connection(lambda: cls(host, port), host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            responses = self._parser.feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            return
        for response in responses:
            waiting, self._waiting = self._waiting, None
            if waiting is None or waiting.done():
                self._fail(ProtocolError("a response nobody asked for"))
                return
            waiting.set_result(response)
            if not response.keep_alive:
                self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionError("connection closed by the server")
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not waiting.done():
            waiting.set_exception(ConnectionError(str(self._lost)))

    def _fail(self, exc: Exception) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not waiting.done():
            waiting.set_exception(exc)
        self.close()

    @property
    def is_open(self) -> bool:
        return self._lost is None and self._transport is not None

    def request(
        self, method: str, target: str, head: bytes, body: bytes = b""
    ) -> asyncio.Future[Response]:
        """Send a request; the future completes with its response.

        Args:
            method: the request method.
            target: the path (and query) to ask for.
            head: extra header lines, each ending in CRLF (e.g. the Authorization line).
            body: the body; a Content-Length line is added when it is not empty.

        Raises:
            ConnectionError: the connection is closed.
            RuntimeError: a request is already outstanding on this connection.
        """
        if not self.is_open:
            raise ConnectionError(str(self._lost or "not connected"))
        if self._waiting is not None:
            raise RuntimeError("one request at a time per connection")
        assert self._transport is not None
        self._waiting = asyncio.get_running_loop().create_future()
        length = b"Content-Length: %d\r\n" % len(body) if body else b""
        self._transport.write(
            b"%s %s HTTP/1.1\r\n%s%s%s\r\n%s"
            % (method.encode(), target.encode(), self._host_header, head, length, body)
        )
        return self._waiting

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
