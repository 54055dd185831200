"""``Inventory``: typed calls to the seat-state scripts of every event, and the reads of
the keys they write. The package docstring (``hub.inventory``) has the keys and the state
tables the scripts implement."""

from __future__ import annotations

import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Sequence

import msgpack
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from engines.seats import SeatCode
from hub.inventory.locks import AssignmentLocks
from hub.inventory.records import (
    ConfirmStarted,
    HoldKind,
    HoldPlaced,
    HoldRecord,
    HoldRefused,
    HoldRequest,
    HoldStatus,
    Refusal,
    Released,
    ReleaseMode,
)
from hub.inventory.scripts import Scripts
from hub.store import Keys

_OK = "ok"
REMEMBERED_HOLDS = 100_000  # the first word of a script's answer when it did what it was asked
#: Events per pipelined round trip of the many-event calls (``snapshots`` ...): big enough
#: that the round trips do not count, small enough not to hold Redis up for long.
PIPELINE_CHUNK = 1_000


class Inventory:
    """Typed calls to the seat-state scripts of every event."""

    def __init__(self, client: Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._scripts = Scripts(client)
        # (event, owner) of the holds this process placed, newest last (see ``hold_ref``).
        self._refs: OrderedDict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]] = OrderedDict()
        self._locks = AssignmentLocks(client, keys, self._scripts.unlock)

    def _k(self, event_id: uuid.UUID, *names: str) -> list[str]:
        return [self.keys.event(event_id, name) for name in names]

    def _hold_key(self, event_id: uuid.UUID, hold_id: uuid.UUID) -> str:
        return self.keys.event(event_id, f"hold:{hold_id}")

    def channel(self, event_id: uuid.UUID) -> str:
        return self.keys.event(event_id, "ch")

    async def place_hold(
        self, event_id: uuid.UUID, request: HoldRequest
    ) -> HoldPlaced | HoldRefused:
        """Hold every seat of one candidate or none (see ``HoldRequest``).

        The hold's index entry (with ``index_ttl_s``) is removed again if the hold was
        refused: ``GET /holds/{id}`` names no event, so the entry maps the hold to its event
        and owner; it outlives the hold, so an expired hold can be told apart from one that
        never was (see ``hold_ref``)."""
        r = request
        keys = [*self._k(event_id, "seats", "seq", "meta", "holder")]
        keys += [self._hold_key(event_id, r.hold_id), *self._k(event_id, "expiry", "owned", "ch")]
        keys += self._k(event_id, "ver")
        args: list[str | int] = [
            str(r.hold_id),
            str(r.user_id),
            r.kind.value,
            r.ttl_ms,
            -1 if r.limit is None else r.limit,
            -1 if r.version is None else r.version,
            1 + len(r.alternatives),
        ]
        for these, their_prices in ((r.seats, r.prices), *r.alternatives):
            args.append(len(these))
            for idx, price in zip(these, their_prices, strict=True):
                args += [idx, price]
        if r.index_ttl_s is None:
            result = await self._scripts.hold(keys=keys, args=args)
        else:
            index = (self._index_key(r.hold_id), f"{event_id} {r.user_id}", r.index_ttl_s)
            result = await self._scripts.pipelined(
                self._scripts.hold,
                keys,
                args,
                lambda pipe: pipe.set(index[0], index[1], ex=index[2]),
            )
        refusal = _refusal(result)
        if refusal is not None and r.index_ttl_s is not None:
            await self.client.delete(self._index_key(r.hold_id))
        if refusal is None:
            if r.index_ttl_s is not None:
                self._remember(r.hold_id, (event_id, r.user_id))
            return HoldPlaced(
                seq=int(result[1]), expires_ms=int(result[2]), seats=_ints(_s(result[3]))
            )
        if refusal is Refusal.TAKEN:
            return HoldRefused(
                refusal, taken=tuple(int(i) for i in result[1]), due=bool(int(result[2]))
            )
        if refusal is Refusal.LIMIT:
            return HoldRefused(refusal, current=int(result[1]))
        return HoldRefused(refusal)

    async def release(
        self,
        event_id: uuid.UUID,
        hold_id: uuid.UUID,
        *,
        user_id: uuid.UUID | None = None,
        mode: ReleaseMode = ReleaseMode.RELEASE,
        forget: int | None = None,
    ) -> Released | Refusal:
        """Release a hold's seats (see ``ReleaseMode``). Returns ``Released`` or the refusal:
        missing (also: not ``user_id``'s hold), confirming, not_due.

        With ``forget`` (the index entry's lifetime in seconds) the hold's index entry goes
        too, in the same round trip; if the hold turned out to be confirming, and so still
        there, the entry is written back (the owner's), so the confirmation can be found."""
        keys = [*self._k(event_id, "seats", "seq", "holder"), self._hold_key(event_id, hold_id)]
        keys += self._k(event_id, "expiry", "owned", "ch", "waitlist")
        args = [str(hold_id), str(user_id or ""), ReleaseMode(mode).value]
        if forget is not None:
            index = self._index_key(hold_id)
            self._refs.pop(hold_id, None)
            result = await self._scripts.pipelined(
                self._scripts.release, keys, args, lambda pipe: pipe.delete(index)
            )
        else:
            result = await self._scripts.release(keys=keys, args=args)
        refusal = _refusal(result)
        if refusal is Refusal.CONFIRMING and forget is not None and user_id is not None:
            await self.client.set(self._index_key(hold_id), f"{event_id} {user_id}", ex=forget)
            self._remember(hold_id, (event_id, user_id))
        if refusal is not None:
            return refusal
        return Released(
            seq=int(result[1]),
            hold_id=hold_id,
            user_id=uuid.UUID(_s(result[2])),
            seats=_ints(_s(result[3])),
            kind=HoldKind(_s(result[4])),
            waitlist=int(result[5]),
        )

    async def mark_waitlist(self, event_id: uuid.UUID) -> int:
        """Someone joined the event's waitlist: releases offer their seats from now on.
        Returns the new mark."""
        return int(await self.client.incr(self.keys.event(event_id, "waitlist")))

    async def clear_waitlist(self, event_id: uuid.UUID, seen: int) -> bool:
        """Nobody waits any more: drop the mark, unless a join changed it since ``seen``."""
        key = self.keys.event(event_id, "waitlist")
        return bool(await self._scripts.unlock(keys=[key], args=[str(seen)]))

    async def begin_confirm(
        self, event_id: uuid.UUID, hold_id: uuid.UUID, user_id: uuid.UUID
    ) -> ConfirmStarted | Refusal:
        """Mark a hold confirming. Returns the hold's seats or: missing, confirming, expired."""
        keys = [self._hold_key(event_id, hold_id)]
        result = await self._scripts.begin_confirm(keys=keys, args=[str(user_id)])
        refusal = _refusal(result)
        if refusal is not None:
            return refusal
        return ConfirmStarted(
            seats=_ints(_s(result[1])),
            prices=_ints(_s(result[2])),
            kind=HoldKind(_s(result[3])),
            expires_ms=int(result[4]),
        )

    async def abort_confirm(self, event_id: uuid.UUID, hold_id: uuid.UUID) -> bool:
        """Put a confirming hold back to held; False when it was not confirming."""
        keys = [self._hold_key(event_id, hold_id)]
        return bool(await self._scripts.abort_confirm(keys=keys, args=[]))

    async def note_charge(self, event_id: uuid.UUID, hold_id: uuid.UUID, note: bytes) -> bool:
        """Keep ``note`` (the charge taken for the hold's confirmation) in the hold's record
        while it is confirming; False when it is not (nothing is written). The booking's
        finish deletes it with the record; ``take_charge`` removes it otherwise."""
        keys = [self._hold_key(event_id, hold_id)]
        return bool(await self._scripts.note_charge(keys=keys, args=[note]))

    async def take_charge(self, event_id: uuid.UUID, hold_id: uuid.UUID) -> bytes | None:
        """Remove the hold's charge note and return it, if this caller removed it (two
        callers never both get it); None when there is none."""
        key = self._hold_key(event_id, hold_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hget(key, "charge")
            pipe.hdel(key, "charge")
            note, removed = await pipe.execute()
        return bytes(note) if removed and note is not None else None

    async def finish_confirm(
        self, event_id: uuid.UUID, hold_id: uuid.UUID, seats: Sequence[int], *, forget: bool = False
    ) -> int:
        """The seats of a committed booking become sold and the hold goes; returns the new
        seq. With ``forget`` the hold's index entry goes too, in the same round trip.

        Idempotent (seats already sold stay as they are, unpublished), so a connection error
        is tried once more: after a Redis restart the first pipeline on a pooled connection
        fails (it died with the old server), and the booking's seats would otherwise stay
        held until the leader settles the confirming hold."""
        keys = [*self._k(event_id, "seats", "seq", "holder"), self._hold_key(event_id, hold_id)]
        keys += self._k(event_id, "expiry", "ch")
        args = [str(hold_id), ",".join(str(int(i)) for i in seats)]
        index = self._index_key(hold_id)
        if forget:
            self._refs.pop(hold_id, None)

        async def finish() -> int:
            if not forget:
                return int(await self._scripts.finish_confirm(keys=keys, args=args))
            return int(
                await self._scripts.pipelined(
                    self._scripts.finish_confirm, keys, args, lambda pipe: pipe.delete(index)
                )
            )

        try:
            return await finish()
        except RedisConnectionError:
            return await finish()

    async def set_seats(
        self,
        event_id: uuid.UUID,
        seats: Sequence[int],
        code: SeatCode,
        *,
        user_id: uuid.UUID | None = None,
        count_delta: int = 0,
    ) -> int:
        """Force seats to a state PostgreSQL decided (sold or free); returns the new seq."""
        keys = self._k(event_id, "seats", "seq", "holder", "ch", "owned")
        args: list[str | int] = [int(code), str(user_id or ""), count_delta, *seats]
        return int(await self._scripts.set_seats(keys=keys, args=args))

    async def free_unsold(
        self, event_id: uuid.UUID, seq: int, seats: Sequence[int], *, user_id: uuid.UUID | None
    ) -> int | None:
        """Free those of ``seats`` still shown sold, if the event's seq is still ``seq``
        (nothing changed since the caller's read); the freed seats leave ``user_id``'s count.

        Returns:
            How many seats were freed; None when the seq moved (read again and retry).
        """
        keys = self._k(event_id, "seats", "seq", "holder", "ch", "owned")
        args: list[str | int] = [seq, str(user_id or ""), *seats]
        new_seq, freed = await self._scripts.free_unsold(keys=keys, args=args)
        return None if int(new_seq) < 0 else int(freed)

    async def load(
        self,
        event_id: uuid.UUID,
        n_seats: int,
        sold: Sequence[int],
        owned: dict[uuid.UUID, int],
        *,
        force: bool = False,
    ) -> bool:
        """Build the event's seat state from PostgreSQL's facts; False if already loaded."""
        keys = self._k(event_id, "seats", "seq", "meta", "holder", "expiry", "owned", "ch")
        args: list[str | int] = [n_seats, 1 if force else 0, len(sold), *sold]
        for user, count in owned.items():
            args += [str(user), count]
        result = await self._scripts.load(keys=keys, args=args)
        return _s(result[0]) == _OK

    def assignment_lock(
        self, event_id: uuid.UUID, *, ttl_ms: int = 2000, wait_s: float = 2.0
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """The event's short seat-assignment lock (see ``hub.inventory.locks``).

        Raises:
            AssignmentBusy: on entry, when not acquired within ``wait_s``.
        """
        return self._locks.hold(event_id, ttl_ms=ttl_ms, wait_s=wait_s)

    async def is_loaded(self, event_id: uuid.UUID) -> bool:
        return bool(await self.client.exists(self.keys.event(event_id, "meta")))

    async def snapshot(self, event_id: uuid.UUID) -> tuple[int, bytes] | None:
        """(seq, one status byte per seat), read atomically; None when not loaded."""
        found = await self.versioned_snapshot(event_id)
        return None if found is None else (found[0], found[1])

    async def versioned_snapshot(self, event_id: uuid.UUID) -> tuple[int, bytes, int] | None:
        """(seq, seat bytes, the event's version), read atomically; None when not loaded."""
        keys = self._k(event_id, "seq", "seats", "meta", "ver")
        seq, seats, version = await self._scripts.snapshot(keys=keys, args=[])
        if seq is None or seats is None:
            return None
        return int(seq), bytes(seats), int(version or 0)

    async def snapshots(
        self, event_ids: Sequence[uuid.UUID], *, chunk: int = PIPELINE_CHUNK
    ) -> list[tuple[int, bytes] | None]:
        """`snapshot` of many events, one pipelined round trip per ``chunk`` of them.

        Each event's answer is read atomically (one script call each), not all of them at
        one instant. A Redis that lost its scripts gets them loaded and the chunk read
        again, once (a read: running it twice changes nothing)."""
        out: list[tuple[int, bytes] | None] = []
        sha = self._scripts.snapshot.sha
        for start in range(0, len(event_ids), chunk):
            part = event_ids[start : start + chunk]
            for attempt in (1, 2):
                async with self.client.pipeline(transaction=False) as pipe:
                    for event_id in part:
                        pipe.evalsha(sha, 4, *self._k(event_id, "seq", "seats", "meta", "ver"))
                    try:
                        found = await pipe.execute()
                        break
                    except NoScriptError:
                        if attempt == 2:
                            raise
                        await self.client.script_load(self._scripts.snapshot.script)
            out.extend(
                None if seq is None or seats is None else (int(seq), bytes(seats))
                for seq, seats, _ in found
            )
        return out

    async def version(self, event_id: uuid.UUID) -> int:
        """The event's version: bumped by ``bump_version`` whenever the stored event changes
        (0 before the first change). It is not seat state and survives a reload; lost with
        Redis, it restarts at 0, which every cached copy from before then fails to match."""
        return int(await self.client.get(self.keys.event(event_id, "ver")) or 0)

    async def bump_version(self, event_id: uuid.UUID) -> int:
        """Mark every process's copy of the event stale (after a committed change)."""
        return int(await self.client.incr(self.keys.event(event_id, "ver")))

    async def bump_versions_and_publish(
        self,
        items: Sequence[tuple[uuid.UUID, dict[str, object]]],
        *,
        chunk: int = PIPELINE_CHUNK,
    ) -> list[int]:
        """`bump_version` then `publish`, for many events: one pipelined round trip per
        ``chunk`` of them. Each event's version is bumped before its message goes out, and
        every bump has been made when this returns.

        Returns:
            The new version of each event, in the order given.
        """
        versions: list[int] = []
        for start in range(0, len(items), chunk):
            async with self.client.pipeline(transaction=False) as pipe:
                for event_id, message in items[start : start + chunk]:
                    pipe.incr(self.keys.event(event_id, "ver"))
                    pipe.publish(self.channel(event_id), msgpack.packb(message))
                answers = await pipe.execute()
            versions.extend(int(v) for v in answers[::2])
        return versions

    async def get_hold(self, event_id: uuid.UUID, hold_id: uuid.UUID) -> HoldRecord | None:
        raw = await self.client.hgetall(self._hold_key(event_id, hold_id))
        if not raw:
            return None
        h = {_s(k): _s(v) for k, v in raw.items()}
        return HoldRecord(
            hold_id=hold_id,
            event_id=event_id,
            user_id=uuid.UUID(h["user"]),
            kind=HoldKind(h["kind"]),
            status=HoldStatus(h["status"]),
            seats=_ints(h["seats"]),
            prices=_ints(h["prices"]),
            created_ms=int(h["created"]),
            expires_ms=int(h["expires"]),
            extended=h.get("extended") == "1",
            confirming_since_ms=int(h["confirming_since"]) if "confirming_since" in h else None,
        )

    async def extend(
        self, event_id: uuid.UUID, hold_id: uuid.UUID, add_ms: int, max_lifetime_ms: int
    ) -> int | Refusal:
        """Extend once; returns the new expiry ms or: missing, already, confirming, expired,
        max_lifetime."""
        keys = [self._hold_key(event_id, hold_id), self.keys.event(event_id, "expiry")]
        args: list[str | int] = [add_ms, max_lifetime_ms, str(hold_id)]
        result = await self._scripts.extend(keys=keys, args=args)
        refusal = _refusal(result)
        if refusal is not None:
            return refusal
        return int(result[1])

    async def due_holds(
        self, event_ids: Sequence[uuid.UUID], now_ms: int, limit: int = 500
    ) -> list[list[uuid.UUID]]:
        """For each event, up to ``limit`` holds due by ``now_ms``: one round trip for all."""
        async with self.client.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.zrangebyscore(self.keys.event(event_id, "expiry"), "-inf", now_ms, 0, limit)
            found = await pipe.execute()
        return [[uuid.UUID(_s(m)) for m in members] for members in found]

    async def hold_ref(self, hold_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID] | None:
        """``(event id, owner)`` of a hold placed within the index's lifetime, or None.

        A hold's event and owner never change, so the holds this process placed are
        answered from memory (a buyer's release usually comes back on the connection, and
        so to the process, that placed the hold). Memory may still name a hold another
        process has since released: callers that find the hold itself gone ask
        ``indexed`` before they say how it ended."""
        known = self._refs.get(hold_id)
        if known is not None:
            return known
        value = await self.client.get(self._index_key(hold_id))
        if value is None:
            return None
        event_id, user_id = _s(value).split(" ")
        return uuid.UUID(event_id), uuid.UUID(user_id)

    async def indexed(self, hold_id: uuid.UUID) -> bool:
        """Whether the hold's index entry is still there (it goes when the hold is booked
        or released; an expired hold keeps it), asking Redis, not memory."""
        return bool(await self.client.exists(self._index_key(hold_id)))

    def _remember(self, hold_id: uuid.UUID, ref: tuple[uuid.UUID, uuid.UUID]) -> None:
        self._refs[hold_id] = ref
        if len(self._refs) > REMEMBERED_HOLDS:
            self._refs.popitem(last=False)

    def _index_key(self, hold_id: uuid.UUID) -> str:
        # Global, not under the event's hash tag: it is written after the hold script.
        return self.keys.global_(f"hold-event:{hold_id}")

    async def due_holders(self, event_id: uuid.UUID, seats: Sequence[int]) -> list[uuid.UUID]:
        """The holds past their expiry that hold any of ``seats``, in one round trip."""
        if not seats:
            return []
        keys = self._k(event_id, "holder", "expiry")
        found = await self._scripts.due_holders(keys=keys, args=list(seats))
        return sorted(uuid.UUID(_s(h)) for h in found)

    async def hold_ids(self, event_id: uuid.UUID) -> list[uuid.UUID]:
        """Every live hold of the event (the expiry index lists each one)."""
        members = await self.client.zrange(self.keys.event(event_id, "expiry"), 0, -1)
        return [uuid.UUID(_s(m)) for m in members]

    async def owned_count(self, event_id: uuid.UUID, user_id: uuid.UUID) -> int:
        value = await self.client.hget(self.keys.event(event_id, "owned"), str(user_id))
        return int(value or 0)

    async def publish(self, event_id: uuid.UUID, message: dict[str, object]) -> None:
        """Publish a non-seat message (price tick, offer ...) on the event's channel."""
        await self.client.publish(self.channel(event_id), msgpack.packb(message))

    async def server_time_ms(self) -> int:
        seconds, micros = await self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ints(csv: str) -> tuple[int, ...]:
    return tuple(int(part) for part in csv.split(",") if part)


def _refusal(result: list[object]) -> Refusal | None:
    """None when a script answered ``{'ok', ...}``, else its refusal."""
    word = _s(result[0])
    return None if word == _OK else Refusal(word)
