"""PostgreSQL access. Only this package imports asyncpg.

``Database`` owns the pool; the modules beside it hold the SQL of one aggregate each
(users, venues, events, bookings ...) as plain functions taking a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg
import msgspec
import structlog

from hub.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

CLOSE_GRACE_SECONDS = 10.0

# Errors that mean "the database is not reachable", as opposed to "this statement is wrong".
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    # "terminating connection due to administrator command": the server is shutting down
    # (or restarting after a crash) under a statement in flight.
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # A pooled connection the server closed while it sat idle: asyncpg has read the FATAL
    # message but not yet the end of the stream, and refuses the next statement with
    # "cannot switch to state ...; another operation (2) is in progress".
    asyncpg.exceptions.InternalClientError,
)

# What drops a connection rather than pooling it again or rolling back on it.
UNAVAILABLE_OR_CANCELLED: tuple[type[BaseException], ...] = (asyncio.CancelledError, *UNAVAILABLE)

Connection = asyncpg.Connection
Record = asyncpg.Record
UniqueViolation = asyncpg.UniqueViolationError
SerializationFailure = asyncpg.SerializationError


def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead: its server, user, password and options
    (``?host=/var/run/postgresql``, a Unix socket's directory, among them) kept."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def database_of(url: str) -> str:
    """The database a DSN names."""
    return unquote(urlsplit(url).path.lstrip("/"))


class CommitUnknown(ServiceUnavailable):
    """The connection was lost while the transaction's COMMIT was on its way: it may have
    been committed or not, and only PostgreSQL, once it answers again, can tell."""


class CommitWatch:
    """What became of a transaction's COMMIT, for a caller that may be cancelled around it.

    ``committed``: the commit succeeded (set before the connection goes back to the pool,
    so a caller cancelled while it is released still knows). ``unknown``: the COMMIT was
    sent but its answer never came — the connection was lost or the caller was cancelled
    (the request's deadline) while waiting. The server may have committed; only asking it
    again, under a lock the transaction held, tells."""

    __slots__ = ("committed", "unknown")

    def __init__(self) -> None:
        self.committed = False
        self.unknown = False


async def _init_connection(con: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await con.set_type_codec(
            name,
            encoder=lambda value: msgspec.json.encode(value).decode(),
            decoder=msgspec.json.decode,
            schema="pg_catalog",
        )


async def _keep_session(con: asyncpg.Connection) -> None:
    """Reset on release: nothing beyond what asyncpg always does (roll back an open
    transaction). The default also runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` — a round trip per use that the hub never needs: it takes only
    transaction-scoped advisory locks, never LISTENs, SETs or keeps cursors. (Migrations
    use a session lock, on a connection of their own.)"""


class Database:
    """The asyncpg pool and the few operations everything shares."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 20) -> Database:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            reset=_keep_session,
            command_timeout=30,
            max_inactive_connection_lifetime=300,
        )
        return cls(pool)

    async def close(self) -> None:
        """Close the pool; connections still held after ``CLOSE_GRACE_SECONDS`` are
        terminated (a shutdown must not wait forever on a request that will never end)."""
        try:
            await asyncio.wait_for(self.pool.close(), CLOSE_GRACE_SECONDS)
        except TimeoutError:
            log.warning("database_pool_terminated", held=self.pool.get_size())
            self.pool.terminate()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; an unreachable server becomes ``ServiceUnavailable``.

        A connection that met the server going away is closed, not pooled again (asyncpg
        may still be waiting on it for the end of the failed statement, and would hand it
        to the next user in that state). Once the block has finished, a failure to give
        the connection back is logged, not raised: the block's work (a transaction it
        committed) is done, and asyncpg has dropped the connection."""
        finished = False
        try:
            async with self.pool.acquire(timeout=10) as con:
                try:
                    yield con
                except UNAVAILABLE_OR_CANCELLED:
                    # Cancelled too (the request's deadline): the server may not be
                    # answering, and giving the connection back would wait on it to cancel
                    # the statement and roll back, up to command_timeout (30 s).
                    # (Closed by asyncpg already, it has gone back to the pool by itself.)
                    with contextlib.suppress(asyncpg.InterfaceError):
                        con.terminate()
                    raise
                finished = True
        except UNAVAILABLE as exc:
            if finished:
                log.warning("database_release_failed", error=repr(exc))
                return
            raise ServiceUnavailable(f"PostgreSQL is unavailable: {type(exc).__name__}") from exc
        except TimeoutError as exc:
            raise ServiceUnavailable("PostgreSQL connection pool exhausted") from exc

    @asynccontextmanager
    async def transaction(
        self, *, watch: CommitWatch | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        """A connection in a transaction, committed when the block ends without error.

        Args:
            watch: told whether the commit succeeded or its outcome is unknown (see the
                class); for a caller whose work must not be undone once it may stand.

        Raises:
            CommitUnknown: the server went away while committing (see the class).
            ServiceUnavailable: it went away before; nothing was committed.
        """
        async with self.connection() as con:
            tx = con.transaction()
            await tx.start()
            try:
                yield con
            except UNAVAILABLE_OR_CANCELLED:
                # No ROLLBACK to wait for: connection() drops the connection, and the
                # server rolls back a transaction whose connection is gone. (A ROLLBACK
                # after a cancellation would wait on a silent server for command_timeout.)
                raise
            except BaseException:
                await tx.rollback()
                raise
            try:
                await tx.commit()
            except UNAVAILABLE_OR_CANCELLED as exc:
                if watch is not None:
                    watch.unknown = True
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise CommitUnknown(
                    f"PostgreSQL went away during a commit: {type(exc).__name__}"
                ) from exc
            if watch is not None:
                watch.committed = True

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.connection() as con:
            return list(await con.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self.connection() as con:
            return await con.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.connection() as con:
            return await con.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        async with self.connection() as con:
            return await con.execute(sql, *args)

    async def ping(self) -> float:
        """Round-trip time of ``SELECT 1`` in milliseconds."""
        started = time.perf_counter()
        await self.fetchval("SELECT 1")
        return (time.perf_counter() - started) * 1000

    def stats(self) -> dict[str, int]:
        return {
            "size": self.pool.get_size(),
            "idle": self.pool.get_idle_size(),
            "min": self.pool.get_min_size(),
            "max": self.pool.get_max_size(),
        }
