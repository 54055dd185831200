"""The process's one Redis pub/sub link: a dedicated connection, subscribed on demand.

Why not redis-py's ``PubSub``: it reconnects and re-subscribes silently inside its retry
layer, and pub/sub drops whatever was published while the link was down, so a silent
reconnect would leave every mirror quietly stale. This link is small and explicit: an
asyncio stream, the hiredis parser, one supervisor task. Any error — a closed socket, no
answer to a PING within ``ping_seconds`` twice, a parser error, a bug — ends the session
at once; the supervisor reports ``on_link(False)``, reconnects with capped exponential
backoff, subscribes everything wanted in one command and reports ``on_link(True)`` when
Redis has confirmed all of it, so the owner re-reads every mirror.

``subscribe`` resolves when Redis confirmed the subscription (so a snapshot read after it
cannot miss a message published after it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import hiredis
import structlog

log = structlog.get_logger(__name__)

OnMessage = Callable[[bytes, bytes], None]
OnLink = Callable[[bool], None]


def _command(*parts: bytes | str) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Subscriber:
    def __init__(
        self,
        url: str,
        control_channel: str,
        on_message: OnMessage,
        on_link: OnLink,
        *,
        ping_seconds: float = 5.0,
        max_backoff_seconds: float = 2.0,
    ) -> None:
        self._url = url
        self._control = control_channel.encode()
        self._on_message = on_message
        self._on_link = on_link
        self._ping_seconds = ping_seconds
        self._max_backoff = max_backoff_seconds
        self.wanted: set[bytes] = set()
        self._confirmed: set[bytes] = set()
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.up = False
        self.sessions = 0  # how many times the link came up (tests and metrics read it)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.cancel()

    async def subscribe(self, channel: str) -> None:
        """Want ``channel``; returns once Redis confirmed it (waits out an outage)."""
        name = channel.encode()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(name, []).append(waiter)
        first = name not in self.wanted
        self.wanted.add(name)
        if self._writer is not None and self.up:
            if name in self._confirmed:
                self._resolve(name)
            elif first:
                self._writer.write(_command(b"SUBSCRIBE", name))
        await waiter

    def unsubscribe(self, channel: str) -> None:
        name = channel.encode()
        if name not in self.wanted:
            return
        self.wanted.discard(name)
        self._confirmed.discard(name)
        if self._writer is not None and self.up:
            self._writer.write(_command(b"UNSUBSCRIBE", name))

    def _resolve(self, name: bytes) -> None:
        for waiter in self._waiters.pop(name, []):
            if not waiter.done():
                waiter.set_result(None)

    async def _supervise(self) -> None:
        delay = 0.05
        while True:
            was_up = False
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure means: reconnect and re-read
                log.warning("pubsub_link_lost", error=repr(exc), retry_in=round(delay, 2))
            finally:
                was_up, self.up = self.up, False
                self._confirmed.clear()
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
                if was_up:
                    self._on_link(False)
            if was_up:
                delay = 0.05
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(self._url)
        if parts.scheme == "unix":
            return await asyncio.open_unix_connection(parts.path)
        return await asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 6379)

    async def _session(self) -> None:
        async with asyncio.timeout(3):
            reader, writer = await self._open()
        self._writer = writer
        parser = hiredis.Reader()
        parts = urlsplit(self._url)
        expect_auth = parts.password is not None
        if expect_auth:
            user = unquote(parts.username) if parts.username else "default"
            writer.write(_command(b"AUTH", user, unquote(parts.password or "")))
        batch = [self._control, *sorted(self.wanted)]
        unconfirmed = set(batch)
        writer.write(_command(b"SUBSCRIBE", *batch))
        awaiting_pong = False
        while True:
            try:
                async with asyncio.timeout(self._ping_seconds):
                    data = await reader.read(1 << 16)
            except TimeoutError:
                if awaiting_pong:
                    raise ConnectionError("no answer to PING") from None
                writer.write(_command(b"PING"))
                awaiting_pong = True
                continue
            if not data:
                raise ConnectionError("Redis closed the connection")
            awaiting_pong = False
            parser.feed(data)
            while (reply := parser.gets()) is not False:
                if isinstance(reply, hiredis.ReplyError):
                    raise ConnectionError(f"Redis refused: {reply}")
                if expect_auth and reply == b"OK":
                    expect_auth = False
                    continue
                kind = reply[0]
                if kind == b"message":
                    self._on_message(reply[1], reply[2])
                elif kind == b"subscribe":
                    name = reply[1]
                    if name in self.wanted:
                        self._confirmed.add(name)
                    if unconfirmed:
                        unconfirmed.discard(name)
                        if not unconfirmed:
                            self.up = True
                            self.sessions += 1
                            log.info("pubsub_link_up", channels=len(batch) - 1)
                            for waiting in list(self._waiters):
                                if waiting in self.wanted:
                                    self._resolve(waiting)
                            self._on_link(True)
                    else:
                        self._resolve(name)
                # unsubscribe confirmations and pongs need nothing
