"""Idempotency keys on booking creation, scoped to the user and kept at least 24 hours.

The first request claims the key with one atomic insert; the work it then does records its
response in the same transaction that writes the booking, so "booked" and "key answered"
can never disagree. Same key and body afterwards → that response again; another body → 422;
a duplicate while the first is still running → 409. A failed attempt gives its claim back,
so a retry after a 409 seat or a declined card can proceed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from hub import jsonenc
from hub.context import Hub
from hub.db import Connection
from hub.db import idempotency as idempotency_db
from hub.errors import Conflict, IdempotencyConflict, ValidationError

log = structlog.get_logger(__name__)

KEEP_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Claim:
    """We hold the key: record the response with ``record`` inside the work's transaction."""

    user_id: uuid.UUID
    key: str
    request_hash: str

    async def record(self, con: Connection, status: int, payload: Any) -> None:
        await idempotency_db.record(con, self.user_id, self.key, status, jsonenc.dumps(payload))


@dataclass(frozen=True, slots=True)
class Replay:
    """The first response to this key and body, to be sent again as it was."""

    status: int
    body: bytes


def request_hash(route: str, body: Any) -> str:
    """A digest of what was asked: the route and the body, keys in a canonical order."""
    canonical = jsonenc.dumps(_sorted(body))
    return hashlib.sha256(route.encode() + b"\n" + canonical).hexdigest()


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def check_key(key: str) -> str:
    """Raises ValidationError naming the header when the key is empty, long or not ASCII."""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationError.field(
            "Idempotency-Key", f"1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


async def claim(hub: Hub, user_id: uuid.UUID, key: str, digest: str) -> Claim | Replay:
    """Claim ``key`` for this request, or find what answered it before.

    Returns:
        A ``Claim`` to do the work under, or the ``Replay`` of the first response.

    Raises:
        IdempotencyConflict: the key was used with another request body.
        Conflict: the first request with this key is still in flight.
    """
    for _ in range(5):
        async with hub.db.connection() as con:
            claimed, row = await idempotency_db.claim(con, user_id, key, digest, KEEP_SECONDS)
        if claimed:
            return Claim(user_id, key, digest)
        if row is None:
            continue  # its claimant just gave it back: try to claim it again
        if row["request_hash"] != digest:
            raise IdempotencyConflict("This Idempotency-Key was used with another request")
        if row["state"] == "done":
            log.info("idempotent_replay", user_id=str(user_id))
            return Replay(row["response_status"], bytes(row["response_body"]))
        break
    raise Conflict("A request with this Idempotency-Key is still in flight; retry later")


async def give_back(hub: Hub, claim: Claim) -> None:
    """Release the claim of a failed attempt (settled: it happens even if cancelled; a
    failure is logged, and the claim then goes stale and is taken over)."""

    async def release() -> None:
        async with hub.db.connection() as con:
            await idempotency_db.release(con, claim.user_id, claim.key, claim.request_hash)

    await hub.cleanups.settle(release(), "idempotency_release")


async def once(
    hub: Hub,
    user_id: uuid.UUID,
    key: str | None,
    digest: str,
    work: Callable[[Claim | None], Awaitable[dict[str, Any]]],
) -> dict[str, Any] | Replay:
    """Do ``work`` at most once per ``Idempotency-Key`` (when one was sent).

    Returns:
        What ``work`` returned (it records its own response through the claim, in its
        transaction), or the ``Replay`` of the first response to this key and body.

    Raises:
        IdempotencyConflict: the key was used with another body; Conflict: the first
        request with this key is still in flight; whatever ``work`` raises (the claim is
        given back first, so the client may retry with the same key).
    """
    claimed: Claim | None = None
    if key is not None:
        found = await claim(hub, user_id, check_key(key), digest)
        if isinstance(found, Replay):
            return found
        claimed = found
    try:
        return await work(claimed)
    except BaseException:
        if claimed is not None:
            await give_back(hub, claimed)
        raise
