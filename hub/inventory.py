"""Live seat state in Redis. The Lua scripts here are the only writers of seat state.

Keys of one event E (all carry the hash tag ``{E}``, see ``hub.store.Keys``):

- ``seats``  string, one byte per seat in seat-index order: 0 free, 1 held, 2 sold
- ``seq``    integer, bumped once per seat change (held, released, sold, expired)
- ``meta``   hash ``n`` (seat count); its presence means "loaded"
- ``holder`` hash seat index -> hold id, for every held seat
- ``hold:H`` hash of one hold: user, kind, status (held|confirming), seats and prices
             (comma-separated), created/expires/confirming-since in ms, extended flag
- ``expiry`` sorted set hold id -> expiry ms (the leader's sweeper reads it)
- ``owned``  hash user -> seats held plus owned, counted against ``max_tickets_per_user``
- channel ``ch``: msgpack maps ``{t: "seats", seq, changes: [[index, code], ...]}`` and
  ``{t: "reset", seq}`` after a (re)load; ``seq`` is the value after the last change.

Invariants every script keeps: a failed call changes nothing and publishes nothing; a
seat is held iff ``holder`` names a live hold that lists it; ``seq`` grows by exactly the
number of seat changes published. Time is Redis's own clock (``TIME``), one clock for
every hub process.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from hub.store import Keys


class SeatCode(enum.IntEnum):
    FREE = 0
    HELD = 1
    SOLD = 2


class HoldKind(enum.StrEnum):
    SINGLE = "single"  # counted against max_tickets_per_user
    GROUP = "group"  # bulk group booking: exempt from the per-user cap
    OFFER = "offer"  # a waitlist offer made in the user's name


class HoldStatus(enum.StrEnum):
    HELD = "held"
    CONFIRMING = "confirming"


class Refusal(enum.StrEnum):
    """Why a script refused (its first reply element); callers compare against these."""

    NOT_LOADED = "not_loaded"
    TAKEN = "taken"
    LIMIT = "limit"
    EXISTS = "exists"
    BAD_SEAT = "bad_seat"
    MISSING = "missing"
    CONFIRMING = "confirming"
    NOT_DUE = "not_due"
    EXPIRED = "expired"
    ALREADY = "already"
    MAX_LIFETIME = "max_lifetime"


class ReleaseMode(enum.StrEnum):
    """How ``Inventory.release`` may free a hold."""

    RELEASE = "release"  # the owner's release: refused while the hold is being confirmed
    EXPIRE = "expire"  # only a hold past its expiry, not one being confirmed
    FORCE = "force"  # whatever its state: PostgreSQL decided


_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function split(s)
  local out = {}
  if s == nil or s == '' then return out end
  for part in string.gmatch(s, '[^,]+') do out[#out + 1] = tonumber(part) end
  return out
end
local function set_code(seats_key, idx, code)
  redis.call('SETRANGE', seats_key, idx, string.char(code))
end
local function get_code(seats_key, idx)
  local b = redis.call('GETRANGE', seats_key, idx, idx)
  if b == '' then return -1 end
  return string.byte(b)
end
local function publish(ch_key, seq_key, changes)
  if #changes == 0 then return tonumber(redis.call('GET', seq_key) or '0') end
  local seq = redis.call('INCRBY', seq_key, #changes)
  redis.call('PUBLISH', ch_key, cmsgpack.pack({t = 'seats', seq = seq, changes = changes}))
  return seq
end
"""

# KEYS: seats seq meta holder hold expiry owned ch
# ARGV: hold_id user kind ttl_ms limit(-1 = none) n_candidates, then per candidate:
#       k idx1 price1 ... idxk pricek
# Holds the first candidate whose seats are all free (a named-seat hold has one candidate;
# best available offers its best few, so concurrent choosers take different ones). When
# none is free, reports the taken seats of the first candidate.
_HOLD = (
    _PRELUDE
    + """
if redis.call('EXISTS', KEYS[3]) == 0 then return {'not_loaded'} end
local n = tonumber(redis.call('HGET', KEYS[3], 'n'))
local hold_id, user, kind = ARGV[1], ARGV[2], ARGV[3]
local ttl, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local idxs, prices, taken = nil, nil, {}
local pos = 7
for c = 1, tonumber(ARGV[6]) do
  local k = tonumber(ARGV[pos])
  local these, their_prices, free = {}, {}, true
  for i = 1, k do
    local idx = tonumber(ARGV[pos + 2 * i - 1])
    if idx < 0 or idx >= n then return {'bad_seat', idx} end
    these[i] = idx
    their_prices[i] = ARGV[pos + 2 * i]
    if get_code(KEYS[1], idx) ~= 0 then
      free = false
      if c == 1 then taken[#taken + 1] = idx end
    end
  end
  if free then idxs, prices = these, their_prices break end
  pos = pos + 1 + 2 * k
end
if idxs == nil then return {'taken', taken} end
local k = #idxs
if limit >= 0 then
  local current = tonumber(redis.call('HGET', KEYS[7], user) or '0')
  if current + k > limit then return {'limit', current} end
end
if redis.call('EXISTS', KEYS[5]) == 1 then return {'exists'} end
local now = now_ms()
local changes = {}
for i = 1, k do
  set_code(KEYS[1], idxs[i], 1)
  redis.call('HSET', KEYS[4], idxs[i], hold_id)
  changes[i] = {idxs[i], 1}
end
local seats_csv = table.concat(idxs, ',')
redis.call('HSET', KEYS[5], 'user', user, 'kind', kind, 'status', 'held',
  'seats', seats_csv, 'prices', table.concat(prices, ','),
  'created', now, 'expires', now + ttl, 'extended', 0)
redis.call('ZADD', KEYS[6], now + ttl, hold_id)
if kind ~= 'group' then redis.call('HINCRBY', KEYS[7], user, k) end
local seq = publish(KEYS[8], KEYS[2], changes)
return {'ok', seq, now + ttl, seats_csv}
"""
)

# KEYS: seats seq holder hold expiry owned ch
# ARGV: hold_id user('' = any) mode   mode: release | expire | force
_RELEASE = (
    _PRELUDE
    + """
local hold_id, user, mode = ARGV[1], ARGV[2], ARGV[3]
local h = redis.call('HGETALL', KEYS[4])
if #h == 0 then redis.call('ZREM', KEYS[5], hold_id) return {'missing'} end
local hold = {}
for i = 1, #h, 2 do hold[h[i]] = h[i + 1] end
if user ~= '' and hold.user ~= user then return {'missing'} end
if mode ~= 'force' and hold.status == 'confirming' then return {'confirming'} end
if mode == 'expire' and tonumber(hold.expires) > now_ms() then return {'not_due'} end
local idxs = split(hold.seats)
local changes = {}
for i = 1, #idxs do
  if redis.call('HGET', KEYS[3], idxs[i]) == hold_id then
    redis.call('HDEL', KEYS[3], idxs[i])
    if get_code(KEYS[1], idxs[i]) == 1 then
      set_code(KEYS[1], idxs[i], 0)
      changes[#changes + 1] = {idxs[i], 0}
    end
  end
end
if hold.kind ~= 'group' then
  local left = redis.call('HINCRBY', KEYS[6], hold.user, -#idxs)
  if left <= 0 then redis.call('HDEL', KEYS[6], hold.user) end
end
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[5], hold_id)
local seq = publish(KEYS[7], KEYS[2], changes)
return {'ok', seq, hold.user, hold.seats, hold.kind}
"""
)

# KEYS: hold   ARGV: user
# Marks a live hold "confirming": nothing visible changes, seq does not move, and the
# sweeper leaves it alone. Returns its seats and quoted prices.
_BEGIN_CONFIRM = (
    _PRELUDE
    + """
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {'missing'} end
local hold = {}
for i = 1, #h, 2 do hold[h[i]] = h[i + 1] end
if hold.user ~= ARGV[1] then return {'missing'} end
if hold.status == 'confirming' then return {'confirming'} end
local now = now_ms()
if tonumber(hold.expires) <= now then return {'expired'} end
redis.call('HSET', KEYS[1], 'status', 'confirming', 'confirming_since', now)
return {'ok', hold.seats, hold.prices, hold.kind, hold.expires}
"""
)

# KEYS: hold   ARGV: (none). Back to "held" after a failed confirmation.
_ABORT_CONFIRM = """
if redis.call('HGET', KEYS[1], 'status') ~= 'confirming' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'held')
redis.call('HDEL', KEYS[1], 'confirming_since')
return 1
"""

# KEYS: seats seq holder hold expiry ch   ARGV: hold_id seats-csv
# The booking is committed in PostgreSQL: its seats become sold, the hold disappears. The
# seats come from the caller (what PostgreSQL wrote), so they end sold even if the hold was
# reconciled away meanwhile.
_FINISH_CONFIRM = (
    _PRELUDE
    + """
local hold_id = ARGV[1]
local idxs = split(ARGV[2])
local changes = {}
for i = 1, #idxs do
  if redis.call('HGET', KEYS[3], idxs[i]) == hold_id then redis.call('HDEL', KEYS[3], idxs[i]) end
  if get_code(KEYS[1], idxs[i]) ~= 2 then
    set_code(KEYS[1], idxs[i], 2)
    changes[#changes + 1] = {idxs[i], 2}
  end
end
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[5], hold_id)
return publish(KEYS[6], KEYS[2], changes)
"""
)

# KEYS: seats seq holder ch owned   ARGV: code user('' = none) count_delta idx1 idx2 ...
# Sets seats to a code decided by PostgreSQL (sold after a correction, free after a
# cancellation), dropping any hold's claim on them.
_SET_SEATS = (
    _PRELUDE
    + """
local code = tonumber(ARGV[1])
local changes = {}
for i = 4, #ARGV do
  local idx = tonumber(ARGV[i])
  redis.call('HDEL', KEYS[3], idx)
  if get_code(KEYS[1], idx) ~= code then
    set_code(KEYS[1], idx, code)
    changes[#changes + 1] = {idx, code}
  end
end
if ARGV[2] ~= '' then
  local left = redis.call('HINCRBY', KEYS[5], ARGV[2], tonumber(ARGV[3]))
  if left <= 0 then redis.call('HDEL', KEYS[5], ARGV[2]) end
end
return publish(KEYS[4], KEYS[2], changes)
"""
)

# KEYS: seats seq meta holder expiry owned ch
# ARGV: n force(0|1) n_sold sold_idx... then user count pairs
# Builds seat state from PostgreSQL's sold seats. Without force it does nothing when the
# event is loaded already (so concurrent first uses are safe). With force it keeps the
# live holds whose seats are not sold. seq never goes back: it restarts no lower than the
# clock in ms, so a watcher that saw the old sequence always notices the reload.
_LOAD = (
    _PRELUDE
    + """
if ARGV[2] == '0' and redis.call('EXISTS', KEYS[3]) == 1 then return {'loaded'} end
local n = tonumber(ARGV[1])
local n_sold = tonumber(ARGV[3])
local bytes = {}
for i = 1, n do bytes[i] = 0 end
for i = 4, 3 + n_sold do bytes[tonumber(ARGV[i]) + 1] = 2 end
local holders = redis.call('HGETALL', KEYS[4])
local kept = {}
for i = 1, #holders, 2 do
  local idx = tonumber(holders[i])
  if idx < n and bytes[idx + 1] == 0 then bytes[idx + 1] = 1 kept[#kept + 1] = idx end
end
local chunk, parts = {}, {}
for i = 1, n do
  chunk[#chunk + 1] = bytes[i]
  if #chunk == 4096 or i == n then
    parts[#parts + 1] = string.char(unpack(chunk))
    chunk = {}
  end
end
redis.call('SET', KEYS[1], table.concat(parts))
redis.call('DEL', KEYS[6])
for i = 4 + n_sold, #ARGV, 2 do redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 1]) end
local seq = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now_ms())
redis.call('SET', KEYS[2], seq)
redis.call('HSET', KEYS[3], 'n', n)
redis.call('PUBLISH', KEYS[7], cmsgpack.pack({t = 'reset', seq = seq}))
return {'ok', seq, #kept}
"""
)

# KEYS: seq seats meta   -> {seq, seats} read atomically; nothing unless loaded
_SNAPSHOT = """
if redis.call('EXISTS', KEYS[3]) == 0 then return {false, false} end
return {redis.call('GET', KEYS[1]) or false, redis.call('GET', KEYS[2]) or false}
"""

# KEYS: hold expiry   ARGV: add_ms max_lifetime_ms
_EXTEND = (
    _PRELUDE
    + """
local h = redis.call('HMGET', KEYS[1], 'status', 'extended', 'created', 'expires')
if not h[1] then return {'missing'} end
if h[2] == '1' then return {'already'} end
if h[1] ~= 'held' then return {'confirming'} end
local now = now_ms()
if tonumber(h[4]) <= now then return {'expired'} end
local new = math.min(tonumber(h[4]) + tonumber(ARGV[1]), tonumber(h[3]) + tonumber(ARGV[2]))
if new <= tonumber(h[4]) then return {'max_lifetime'} end
redis.call('HSET', KEYS[1], 'expires', new, 'extended', 1)
redis.call('ZADD', KEYS[2], new, ARGV[3])
return {'ok', new}
"""
)


# KEYS: holder expiry   ARGV: seat indexes -> the distinct holds holding them that are due
_DUE_HOLDERS = (
    _PRELUDE
    + """
local now, seen, due = now_ms(), {}, {}
for i = 1, #ARGV do
  local hold = redis.call('HGET', KEYS[1], ARGV[i])
  if hold and not seen[hold] then
    seen[hold] = true
    local expires = redis.call('ZSCORE', KEYS[2], hold)
    if expires and tonumber(expires) <= now then due[#due + 1] = hold end
  end
end
return due
"""
)

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class AssignmentBusy(Exception):
    """The event's seat-assignment lock was not free in time."""


@dataclass(frozen=True, slots=True)
class HoldRecord:
    hold_id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    kind: HoldKind
    status: HoldStatus
    seats: tuple[int, ...]
    prices: tuple[int, ...]
    created_ms: int
    expires_ms: int
    extended: bool
    confirming_since_ms: int | None


@dataclass(frozen=True, slots=True)
class HoldPlaced:
    seq: int
    expires_ms: int
    seats: tuple[int, ...]  # the candidate that was held


@dataclass(frozen=True, slots=True)
class HoldRefused:
    reason: str  # taken | limit | not_loaded | bad_seat | exists
    taken: tuple[int, ...] = ()
    current: int = 0


@dataclass(frozen=True, slots=True)
class Released:
    seq: int
    hold_id: uuid.UUID
    user_id: uuid.UUID
    seats: tuple[int, ...]
    kind: HoldKind


@dataclass(frozen=True, slots=True)
class ConfirmStarted:
    seats: tuple[int, ...]
    prices: tuple[int, ...]
    kind: HoldKind
    expires_ms: int


class Inventory:
    """Typed calls to the seat-state scripts of every event."""

    def __init__(self, client: Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._hold = client.register_script(_HOLD)
        self._release = client.register_script(_RELEASE)
        self._begin = client.register_script(_BEGIN_CONFIRM)
        self._abort = client.register_script(_ABORT_CONFIRM)
        self._finish = client.register_script(_FINISH_CONFIRM)
        self._set_seats = client.register_script(_SET_SEATS)
        self._load = client.register_script(_LOAD)
        self._snapshot = client.register_script(_SNAPSHOT)
        self._extend = client.register_script(_EXTEND)
        self._unlock = client.register_script(_UNLOCK)
        self._due_holders = client.register_script(_DUE_HOLDERS)
        # One per event this process has assigned seats for: a few hundred at most.
        self._local_locks: dict[uuid.UUID, asyncio.Lock] = {}

    async def _pipelined(
        self,
        script: AsyncScript,
        keys: list[str],
        args: Sequence[str | int],
        also: Callable[[Pipeline], object],
    ) -> Any:
        """Run ``script`` and the commands ``also`` queues in one round trip; return the
        script's result. (redis-py's own script-in-pipeline support asks Redis whether the
        script exists first: a second round trip on every call.) A Redis that lost its
        scripts (restarted) gets them loaded and the pipeline runs again, once."""
        for attempt in (1, 2):
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                also(pipe)
                try:
                    return (await pipe.execute())[0]
                except NoScriptError:
                    if attempt == 2:
                        raise
                    await self.client.script_load(script.script)
        raise AssertionError("unreachable")

    def _k(self, event_id: uuid.UUID, *names: str) -> list[str]:
        return [self.keys.event(event_id, name) for name in names]

    def _hold_key(self, event_id: uuid.UUID, hold_id: uuid.UUID) -> str:
        return self.keys.event(event_id, f"hold:{hold_id}")

    def channel(self, event_id: uuid.UUID) -> str:
        return self.keys.event(event_id, "ch")

    async def place_hold(
        self,
        event_id: uuid.UUID,
        hold_id: uuid.UUID,
        user_id: uuid.UUID,
        kind: HoldKind,
        seats: Sequence[int],
        prices: Sequence[int],
        ttl_ms: int,
        limit: int | None,
        index_ttl_s: int | None = None,
        *,
        alternatives: Sequence[tuple[Sequence[int], Sequence[int]]] = (),
    ) -> HoldPlaced | HoldRefused:
        """Hold every seat or none: ``seats`` (quoted ``prices``) if all are free, else the
        first of the ``alternatives`` ``(seats, prices)`` whose seats all are. ``limit``
        caps the user's held plus owned seats.

        With ``index_ttl_s`` the hold's index entry is written in the same round trip (and
        removed again if the hold was refused): ``GET /holds/{id}`` names no event, so the
        entry maps the hold to its event and owner; it outlives the hold, so an expired hold
        can be told apart from one that never was (see ``hold_ref``)."""
        keys = [*self._k(event_id, "seats", "seq", "meta", "holder")]
        keys += [self._hold_key(event_id, hold_id), *self._k(event_id, "expiry", "owned", "ch")]
        args: list[str | int] = [
            str(hold_id),
            str(user_id),
            kind.value,
            ttl_ms,
            -1 if limit is None else limit,
            1 + len(alternatives),
        ]
        for these, their_prices in ((seats, prices), *alternatives):
            args.append(len(these))
            for idx, price in zip(these, their_prices, strict=True):
                args += [idx, price]
        if index_ttl_s is None:
            result = await self._hold(keys=keys, args=args)
        else:
            index = (self._index_key(hold_id), f"{event_id} {user_id}", index_ttl_s)
            result = await self._pipelined(
                self._hold, keys, args, lambda pipe: pipe.set(index[0], index[1], ex=index[2])
            )
        status = _s(result[0])
        if status != "ok" and index_ttl_s is not None:
            await self.client.delete(self._index_key(hold_id))
        if status == "ok":
            return HoldPlaced(
                seq=int(result[1]), expires_ms=int(result[2]), seats=_ints(_s(result[3]))
            )
        if status == "taken":
            return HoldRefused("taken", taken=tuple(int(i) for i in result[1]))
        if status == "limit":
            return HoldRefused("limit", current=int(result[1]))
        return HoldRefused(status)

    async def release(
        self,
        event_id: uuid.UUID,
        hold_id: uuid.UUID,
        *,
        user_id: uuid.UUID | None = None,
        mode: str = "release",
    ) -> Released | str:
        """Release a hold's seats. ``mode``: release (not while confirming), expire (only
        when due), force. Returns ``Released`` or the refusal: missing, confirming, not_due."""
        keys = [*self._k(event_id, "seats", "seq", "holder"), self._hold_key(event_id, hold_id)]
        keys += self._k(event_id, "expiry", "owned", "ch")
        result = await self._release(keys=keys, args=[str(hold_id), str(user_id or ""), mode])
        if _s(result[0]) != "ok":
            return _s(result[0])
        return Released(
            seq=int(result[1]),
            hold_id=hold_id,
            user_id=uuid.UUID(_s(result[2])),
            seats=_ints(_s(result[3])),
            kind=HoldKind(_s(result[4])),
        )

    async def begin_confirm(
        self, event_id: uuid.UUID, hold_id: uuid.UUID, user_id: uuid.UUID
    ) -> ConfirmStarted | str:
        """Mark a hold confirming. Returns the hold's seats or: missing, confirming, expired."""
        result = await self._begin(keys=[self._hold_key(event_id, hold_id)], args=[str(user_id)])
        if _s(result[0]) != "ok":
            return _s(result[0])
        return ConfirmStarted(
            seats=_ints(_s(result[1])),
            prices=_ints(_s(result[2])),
            kind=HoldKind(_s(result[3])),
            expires_ms=int(result[4]),
        )

    async def abort_confirm(self, event_id: uuid.UUID, hold_id: uuid.UUID) -> bool:
        return bool(await self._abort(keys=[self._hold_key(event_id, hold_id)], args=[]))

    async def finish_confirm(
        self, event_id: uuid.UUID, hold_id: uuid.UUID, seats: Sequence[int], *, forget: bool = False
    ) -> int:
        """The seats of a committed booking become sold and the hold goes; returns the new
        seq. With ``forget`` the hold's index entry goes too, in the same round trip."""
        keys = [*self._k(event_id, "seats", "seq", "holder"), self._hold_key(event_id, hold_id)]
        keys += self._k(event_id, "expiry", "ch")
        csv = ",".join(str(int(i)) for i in seats)
        if not forget:
            return int(await self._finish(keys=keys, args=[str(hold_id), csv]))
        index = self._index_key(hold_id)
        seq = await self._pipelined(
            self._finish, keys, [str(hold_id), csv], lambda pipe: pipe.delete(index)
        )
        return int(seq)

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
        return int(await self._set_seats(keys=keys, args=args))

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
        result = await self._load(keys=keys, args=args)
        return _s(result[0]) == "ok"

    @contextlib.asynccontextmanager
    async def assignment_lock(
        self, event_id: uuid.UUID, *, ttl_ms: int = 2000, wait_s: float = 2.0
    ) -> AsyncIterator[None]:
        """Hold the event's short seat-assignment lock: a token with a TTL in Redis (so a
        crashed holder cannot block the event), released by compare-and-delete.

        Within a process, choosers queue on an asyncio lock first (FIFO, no polling), so
        only one per process polls Redis, briefly, against the other processes.

        Raises:
            AssignmentBusy: not acquired within ``wait_s``.
        """
        local = self._local_locks.setdefault(event_id, asyncio.Lock())
        try:
            async with asyncio.timeout(wait_s):
                await local.acquire()
        except TimeoutError:
            raise AssignmentBusy(str(event_id)) from None
        try:
            key = self.keys.event(event_id, "assign")
            token = uuid.uuid4().hex
            deadline = time.monotonic() + wait_s
            pause = 0.0005
            while not await self.client.set(key, token, nx=True, px=ttl_ms):
                if time.monotonic() >= deadline:
                    raise AssignmentBusy(str(event_id))
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.004)
            try:
                yield
            finally:
                await asyncio.shield(self._unlock(keys=[key], args=[token]))
        finally:
            local.release()

    async def is_loaded(self, event_id: uuid.UUID) -> bool:
        return bool(await self.client.exists(self.keys.event(event_id, "meta")))

    async def snapshot(self, event_id: uuid.UUID) -> tuple[int, bytes] | None:
        """(seq, one status byte per seat), read atomically; None when not loaded."""
        seq, seats = await self._snapshot(keys=self._k(event_id, "seq", "seats", "meta"), args=[])
        if seq is None or seats is None:
            return None
        return int(seq), bytes(seats)

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
    ) -> int | str:
        """Extend once; returns the new expiry ms or: missing, already, confirming, expired,
        max_lifetime."""
        keys = [self._hold_key(event_id, hold_id), self.keys.event(event_id, "expiry")]
        result = await self._extend(keys=keys, args=[add_ms, max_lifetime_ms, str(hold_id)])
        if _s(result[0]) != "ok":
            return _s(result[0])
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
        """``(event id, owner)`` of a hold placed within the index's lifetime, or None."""
        value = await self.client.get(self._index_key(hold_id))
        if value is None:
            return None
        event_id, user_id = _s(value).split(" ")
        return uuid.UUID(event_id), uuid.UUID(user_id)

    async def forget_hold(self, hold_id: uuid.UUID) -> None:
        """Drop the index entry of a hold that ended by its owner's hand (booked, released)."""
        await self.client.delete(self._index_key(hold_id))

    def _index_key(self, hold_id: uuid.UUID) -> str:
        # Global, not under the event's hash tag: it is written after the hold script.
        return self.keys.global_(f"hold-event:{hold_id}")

    async def due_holders(self, event_id: uuid.UUID, seats: Sequence[int]) -> list[uuid.UUID]:
        """The holds past their expiry that hold any of ``seats``, in one round trip."""
        if not seats:
            return []
        keys = self._k(event_id, "holder", "expiry")
        found = await self._due_holders(keys=keys, args=list(seats))
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
