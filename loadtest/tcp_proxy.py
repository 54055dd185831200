"""A TCP proxy for fault tests: put it between the hub and Redis or PostgreSQL and inject
network faults while traffic flows.

Faults, each switchable at any moment:

* ``latency``: every chunk waits this long before it is passed on, in both directions (order
  kept: one pump per direction), so a request/response round trip gains twice the value.
* ``cut()``: every open connection is closed at once, both sides, as a reset link would; new
  connections are accepted as before.
* ``black_hole``: one-way loss — what the server sends is dropped while requests still reach
  it, and connections stay open, so a client learns of it only from its own timeouts. Data
  dropped mid-stream leaves those connections unusable: a client must discard them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class TcpProxy:
    target_host: str
    target_port: int
    latency: float = 0.0
    black_hole: bool = False
    port: int = 0
    connections: int = 0  # accepted so far
    _server: asyncio.Server | None = None
    _open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url_for(self, url: str) -> str:
        """``url`` with its ``host:port`` replaced by this proxy's."""
        return url.replace(f"{self.target_host}:{self.target_port}", f"127.0.0.1:{self.port}")

    def cut(self) -> None:
        for client, server in list(self._open):
            for writer in (client, server):
                transport = writer.transport
                transport.abort()
        self._open.clear()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._open.add(pair)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, downstream=False)),
            asyncio.create_task(self._pump(up_reader, writer, downstream=True)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            self._open.discard(pair)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, downstream: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if self.latency:
                    await asyncio.sleep(self.latency)
                if downstream and self.black_hole:
                    continue  # the server's answer is lost
                writer.write(data)
                await writer.drain()
