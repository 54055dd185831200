"""Revocations shared by every process as they happen, so no request pays a round trip.

A logout (or any revocation) is written to PostgreSQL (durable), to Redis (for processes
without a live feed) and published on one channel. Each serving process keeps a pub/sub
link to that channel (the same explicit link the live channels use,
``hub.channels.subscriber``): every message adds a token id to the process's
``RevokedTokens``; whenever the link comes up the whole set is read again from PostgreSQL,
because pub/sub drops what is published while a link is down. While the link is down the
set is not live and tokens are checked against Redis (or PostgreSQL) per request again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid

import structlog

from hub.channels.subscriber import Subscriber
from hub.db import Database
from hub.db import tokens as tokens_db
from hub.db import users as users_db
from hub.store import Store
from hub.tokens import Accounts, RevokedTokens, Role, Standing

log = structlog.get_logger(__name__)

CHANNEL = "revocations"


async def announce(store: Store, jti: uuid.UUID, until: float) -> None:
    """Tell every serving process that ``jti`` is revoked until ``until`` (epoch seconds)."""
    await store.client.publish(store.keys.global_(CHANNEL), f"{jti} {until:.0f}".encode())


async def announce_standing(store: Store, user_id: uuid.UUID, standing: Standing) -> None:
    """Tell every serving process the current standing of ``user_id``."""
    after = "-" if standing.tokens_after is None else f"{standing.tokens_after:.6f}"
    message = f"account {user_id} {standing.role.value} {after}"
    await store.client.publish(store.keys.global_(CHANNEL), message.encode())


def standing_of(role: str, tokens_after: dt.datetime | None) -> Standing:
    """An account's standing from its row's ``role`` and ``tokens_after``."""
    return Standing(Role(role), None if tokens_after is None else tokens_after.timestamp())


class RevocationFeed:
    def __init__(
        self,
        redis_url: str,
        store: Store,
        db: Database,
        revoked: RevokedTokens,
        accounts: Accounts,
        token_ttl_seconds: int,
    ):
        self.store = store
        self.db = db
        self.revoked = revoked
        self.accounts = accounts
        self.token_ttl_seconds = token_ttl_seconds
        self.channel = store.keys.global_(CHANNEL)
        self._subscriber = Subscriber(redis_url, self.channel, self._on_message, self._on_link)
        self._reload: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._subscriber.start()

    async def stop(self) -> None:
        await self._subscriber.stop()
        if self._reload is not None:
            self._reload.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload

    def _on_message(self, name: bytes, data: bytes) -> None:
        try:
            words = data.decode().split()
            if words[0] == "account":
                _, user_id, role, after = words
                standing = Standing(Role(role), None if after == "-" else float(after))
                self.accounts.set(uuid.UUID(user_id), standing)
            else:
                jti, until = words
                self.revoked.add(uuid.UUID(jti), float(until))
        except (ValueError, IndexError):
            log.warning("revocation_message_malformed", data=data[:80])

    def _on_link(self, up: bool) -> None:
        if not up:
            self.revoked.live = False
            self.accounts.live = False
            return
        if self._reload is None or self._reload.done():
            self._reload = asyncio.get_running_loop().create_task(self._read_all())

    async def _read_all(self) -> None:
        # Subscribed first, then read: a revocation published in between is in both.
        for delay in (0.1, 0.5, 1.0, 2.0, 5.0):
            try:
                # Older cutoffs void only tokens that have expired anyway.
                since = dt.datetime.fromtimestamp(time.time() - self.token_ttl_seconds, dt.UTC)
                async with self.db.connection() as con:
                    revoked = await tokens_db.live_revocations(con)
                    rows = await users_db.standings(con, since)
                self.revoked.replace(revoked)
                self.accounts.replace(
                    {r["id"]: standing_of(r["role"], r["tokens_after"]) for r in rows}
                )
                log.info("revocations_loaded", count=len(self.revoked), accounts=len(rows))
                return
            except Exception as exc:  # PostgreSQL down: stay not-live, try again
                log.warning("revocations_load_failed", error=repr(exc))
                await asyncio.sleep(delay)
