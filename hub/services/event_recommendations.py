"""Event recommendations: the model the leader builds and shares through Redis, and each
user's answers, cached in Redis until that user books or cancels.

The model. ``engines.recommend.build_model`` over every confirmed booking and the whole
catalogue (``hub.db.event_recommendations``: one statement for the catalogue, one cursor for
the bookings, in one read-only snapshot whose clock is the build's ``now``). The leader's
``recommendation_loop`` rebuilds it every ``reco_rebuild_seconds`` and as soon as
``reco_rebuild_bookings`` bookings were made or an event was created since the last
build; the build runs in the
niced offload child (``hub.offload``, unless ``reco_offload`` is off), which also publishes
it, so a serving process never spends its CPU on a million booking rows.

Sharing. A model is stored in Redis as npz bytes under its own key, named by ``meta`` (a
small JSON: ``version``, ``built_at``, ``by``). Each process loads a version once, when it
first sees it named, however many requests wait for it (``hub.event_models``, a
``SharedLoads`` keyed by version). Before any model exists, the first request of a process
has one built and published the same way, unless another process won the race to publish
(``SET NX``), whose model it then loads. Meta and model keys expire unless the leader keeps
them alive, so nothing outlives a hub that stopped; a replaced model lingers
``REPLACED_GRACE_SECONDS`` for processes still loading it.

Answers. One Redis round trip per request reads the meta, the answers' epoch, the user's
generation and the cached answer for this ``limit``. A cached answer is served only if it
was computed with the current model version, epoch and generation and before its
``until`` (its first event's start, or its TTL). Otherwise: the user's live history (one
query), the engine, one query that drops events cancelled, started or sold out since the
build (rerun without them if any were), then, when fewer than ``limit`` remain, the
bookable events created since the build (soonest first, score 0, method ``popular``: nothing
ranks them yet, but a new event is recommendable from its first second), and the answer is
stored with the generation read *before* the history. A booking or cancellation sets a new
random generation after its commit (``forget_answers``: one ``SET``), so an answer computed
from the older history can never be served again, even one stored after the invalidation; a
cancelled event bumps the epoch (``forget_all_answers``), which retires every cached answer
at once. The generation key lives at least as long as any answer could, so its expiry cannot
revive an old one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import secrets
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import scipy.sparse as sp
import structlog

from engines.recommend import (
    Booking,
    EventInfo,
    Method,
    Model,
    RecommendConfig,
    build_model,
    recommend,
)
from hub import jsonenc
from hub.context import Hub
from hub.db import Connection, Record
from hub.db import event_recommendations as reco_db
from hub.errors import NotFound, ValidationError

log = structlog.get_logger(__name__)

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
#: At most this many engine passes per request: a pass that finds events closed since the
#: build asks again without them (rare: the model is rebuilt every few minutes).
MAX_PASSES = 3
#: How often the leader checks whether the model is due (at most; sooner with a short
#: rebuild interval).
CHECK_SECONDS = 5.0
#: Bookings read per cursor batch while building.
BOOKING_BATCH = 50_000
#: A replaced model stays readable this long for processes that are loading it.
REPLACED_GRACE_SECONDS = 300
#: Meta and model keys expire after this long without the leader's renewal (at least; see
#: `_model_ttl`): a hub whose leader stopped does not keep a model forever.
MIN_MODEL_TTL_SECONDS = 3_600

#: Events created this long before a model's build may still be missing from it (their
#: transaction committed after the build's snapshot): a request looks for them too.
NEWCOMER_SLACK = dt.timedelta(seconds=60)
#: Extra rows asked for, since some of those found in the slack are known to the model.
NEWCOMER_SPARE = 20
NEWCOMER_REASON = "New on sale: too new to be ranked by bookings yet"

_NO_VERSION = ""


# --- keys ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Keys:
    meta: str
    epoch: str
    model_prefix: str
    answers_prefix: str
    generation_prefix: str

    @classmethod
    def of(cls, hub: Hub) -> _Keys:
        keys = hub.store.keys
        return cls(
            meta=keys.global_("reco:meta"),
            epoch=keys.global_("reco:epoch"),
            model_prefix=keys.global_("reco:model:"),
            answers_prefix=keys.global_("reco:answers:"),
            generation_prefix=keys.global_("reco:gen:"),
        )

    def model(self, version: str) -> str:
        return self.model_prefix + version

    def answers(self, user_id: uuid.UUID) -> str:
        return f"{self.answers_prefix}{user_id}"

    def generation(self, user_id: uuid.UUID) -> str:
        return f"{self.generation_prefix}{user_id}"


class Builder(StrEnum):
    """Who built a model: the leader's loop, or a process that found none on first use."""

    LEADER = "leader"
    FIRST_USE = "first_use"


@dataclass(frozen=True, slots=True)
class Meta:
    """What names the current model in Redis."""

    version: str
    built_at: float  # POSIX seconds, the database's clock at the build's read
    by: Builder

    def encode(self) -> bytes:
        return jsonenc.dumps(dataclasses.asdict(self))

    @classmethod
    def decode(cls, raw: bytes | str | None) -> Meta | None:
        if raw is None:
            return None
        data = jsonenc.loads(raw)
        return cls(
            version=data["version"], built_at=float(data["built_at"]), by=Builder(data["by"])
        )


def _model_ttl(hub: Hub) -> int:
    return max(MIN_MODEL_TTL_SECONDS, int(4 * hub.settings.reco_rebuild_seconds))


# --- use case: recommend -------------------------------------------------------------------


async def recommend_events(
    hub: Hub, user_id: uuid.UUID, *, limit: int = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    """Up to ``limit`` upcoming events for the user, best first.

    Returns:
        ``[{event_id, score, method, reasons}]``: never an event that has started, is
        cancelled or sold out, or that the user has booked.

    Raises:
        ValidationError: ``limit`` outside 1 to `MAX_LIMIT` (naming ``limit``).
        NotFound: no such user.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError.field("limit", f"must be between 1 and {MAX_LIMIT}")
    keys = _Keys.of(hub)
    field = f"n{limit}"
    async with hub.store.client.pipeline(transaction=False) as pipe:
        pipe.get(keys.meta)
        pipe.get(keys.epoch)
        pipe.get(keys.generation(user_id))
        pipe.hget(keys.answers(user_id), field)
        raw_meta, raw_epoch, raw_generation, cached = await pipe.execute()
    meta = Meta.decode(raw_meta)
    stamp = _Stamp(
        version=meta.version if meta else _NO_VERSION,
        epoch=int(raw_epoch or 0),
        generation=(raw_generation or b"").decode(),
    )
    if cached is not None:
        answer = stamp.valid(cached, time.time())
        if answer is not None:
            return answer
    model = await _current_model(hub, meta)
    now = dt.datetime.now(dt.UTC)
    async with hub.db.connection() as con:
        known, history = await reco_db.history(con, user_id)
        if not known:
            raise NotFound(f"No such user: {user_id}")
        answer = await _open_only(con, model, history, now=now, limit=limit)
        starts = {
            item["event_id"]: float(model.starts_at[model.index[item["event_id"]]])
            for item in answer
        }
        if len(answer) < limit:
            newcomers = await _newcomers(con, model, [*history, *starts], limit - len(answer))
            answer += [_newcomer(event_id) for event_id, _ in newcomers]
            starts.update((event_id, starts_at.timestamp()) for event_id, starts_at in newcomers)
    until = min([now.timestamp() + hub.settings.reco_cache_seconds, *starts.values()])
    async with hub.store.client.pipeline(transaction=False) as pipe:
        pipe.hset(keys.answers(user_id), field, stamp.seal(answer, until))
        pipe.expire(keys.answers(user_id), hub.settings.reco_cache_seconds)
        await pipe.execute()
    return answer


async def _open_only(
    con: Connection, model: Model, history: Sequence[str], *, now: dt.datetime, limit: int
) -> list[dict[str, Any]]:
    """The engine's answer without the events closed since the build (cancelled, started,
    sold out), which are checked against PostgreSQL and excluded for another pass."""
    closed: set[str] = set()
    checked: set[str] = set()
    picks = recommend(model, history, now=now, limit=limit)
    for _ in range(MAX_PASSES):
        fresh = [pick.event_id for pick in picks if pick.event_id not in checked]
        checked.update(fresh)
        found = await reco_db.closed_among(con, fresh)
        if not found:
            break
        closed |= found
        picks = recommend(model, history, now=now, limit=limit, exclude=closed)
    return [
        {
            "event_id": pick.event_id,
            "score": pick.score,
            "method": pick.method.value,
            "reasons": list(pick.reasons),
        }
        for pick in picks
        if pick.event_id not in closed
    ][:limit]


async def _newcomers(
    con: Connection, model: Model, excluded: Sequence[str], wanted: int
) -> list[tuple[str, dt.datetime]]:
    """Bookable events the model does not know yet (created since its build, give or take
    `NEWCOMER_SLACK` for transactions that committed after the build's snapshot was read),
    soonest first: they have no bookings to rank by, so they come after every ranked one."""
    since = model.built_at - NEWCOMER_SLACK
    rows = await reco_db.newcomers(con, since, excluded, wanted + NEWCOMER_SPARE)
    return [row for row in rows if row[0] not in model.index][:wanted]


def _newcomer(event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "score": 0.0,
        "method": Method.POPULAR.value,
        "reasons": [NEWCOMER_REASON],
    }


@dataclass(frozen=True, slots=True)
class _Stamp:
    """What a cached answer must have been computed with to be served."""

    version: str
    epoch: int
    generation: str

    def seal(self, answer: list[dict[str, Any]], until: float) -> bytes:
        return jsonenc.dumps(
            {"v": self.version, "e": self.epoch, "g": self.generation, "u": until, "r": answer}
        )

    def valid(self, raw: bytes, now: float) -> list[dict[str, Any]] | None:
        entry = jsonenc.loads(raw)
        fresh = (
            entry["v"] == self.version
            and entry["e"] == self.epoch
            and entry["g"] == self.generation
            and now < entry["u"]
        )
        return entry["r"] if fresh else None


# --- use case: invalidation (booking and cancellation paths) --------------------------------


async def forget_answers(hub: Hub, user_id: uuid.UUID) -> None:
    """After a booking or cancellation of the user committed: none of their cached answers
    is served again (one ``SET``). Never raises: the booking stands whatever happens here;
    a failure is logged and the answers then last at most ``reco_cache_seconds``."""
    keys = _Keys.of(hub)
    try:
        # The generation must outlive every answer stored before it changed (see the
        # module docstring): answers last at most reco_cache_seconds from their writing.
        await hub.store.client.set(
            keys.generation(user_id),
            secrets.token_hex(8),
            ex=hub.settings.reco_cache_seconds + 1,
        )
    except Exception as exc:
        log.error("reco_forget_failed", user_id=str(user_id), error=repr(exc))


async def forget_all_answers(hub: Hub) -> None:
    """After an event was cancelled: every cached answer is retired (one ``INCR``)."""
    try:
        await hub.store.client.incr(_Keys.of(hub).epoch)
    except Exception as exc:
        log.error("reco_forget_all_failed", error=repr(exc))


# --- the model in this process ---------------------------------------------------------------


class _ModelGone(Exception):
    """Meta names a model whose bytes are no longer in Redis."""


async def _current_model(hub: Hub, meta: Meta | None) -> Model:
    """The model ``meta`` names, loaded once per process; with none, one built now."""
    if meta is not None:
        try:
            return await hub.event_models.get(meta.version, lambda: _load(hub, meta.version))
        except _ModelGone:
            log.warning("reco_model_missing", version=meta.version)
    try:
        return await hub.event_models.get(_NO_VERSION, lambda: _first_model(hub, meta))
    finally:
        # Only the requests that found no model share this build; later ones read the meta.
        hub.event_models.forget(_NO_VERSION)


async def _first_model(hub: Hub, missing: Meta | None) -> Model:
    # With a model's bytes gone from under its meta, the new one replaces it; otherwise it
    # is published only if nobody else published one meanwhile.
    version = await rebuild(hub, by=Builder.FIRST_USE, replace=missing is not None)
    return await hub.event_models.get(version, lambda: _load(hub, version))


async def _load(hub: Hub, version: str) -> Model:
    data = await hub.store.client.get(_Keys.of(hub).model(version))
    if not isinstance(data, bytes):  # gone (the client never decodes to str)
        raise _ModelGone(version)
    started = time.perf_counter()
    model = await asyncio.to_thread(decode_model, data)
    log.info(
        "reco_model_loaded",
        version=version,
        bytes=len(data),
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return model


# --- building and publishing -------------------------------------------------------------------


async def recommendation_loop(hub: Hub) -> None:
    """Leader loop: rebuild the model when it is missing, was built by a first use, is
    older than ``reco_rebuild_seconds``, ``reco_rebuild_bookings`` bookings were made or an
    event was created since; otherwise keep its keys alive."""
    pause = min(CHECK_SECONDS, hub.settings.reco_rebuild_seconds)
    while True:
        try:
            if await rebuild_due(hub):
                await rebuild(hub, by=Builder.LEADER, replace=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reco_rebuild_failed")
        await asyncio.sleep(pause)


async def rebuild_due(hub: Hub) -> bool:
    """Whether the leader should build a new model now (renewing the current one's keys
    when not)."""
    keys = _Keys.of(hub)
    meta = Meta.decode(await hub.store.client.get(keys.meta))
    if meta is None or meta.by is not Builder.LEADER:
        return True
    since = dt.datetime.fromtimestamp(meta.built_at, dt.UTC)
    cap = hub.settings.reco_rebuild_bookings
    async with hub.db.connection() as con:
        bookings, new_events, now = await reco_db.changes_since(con, since, cap)
    if (
        bookings >= cap
        or new_events
        or (now - since).total_seconds() >= hub.settings.reco_rebuild_seconds
    ):
        return True
    ttl = _model_ttl(hub)
    async with hub.store.client.pipeline(transaction=False) as pipe:
        pipe.expire(keys.meta, ttl)
        pipe.expire(keys.model(meta.version), ttl)
        alive = (await pipe.execute())[1]
    return not alive  # the model's bytes are gone: build again


async def rebuild(hub: Hub, *, by: Builder, replace: bool) -> str:
    """Build a model from PostgreSQL and publish it, in the offload child unless
    ``reco_offload`` is off.

    Args:
        by: who asks.
        replace: publish over the current model; otherwise only if there is none.

    Returns:
        The version now current: this build's, or (``replace`` false) the one that was
        published first.
    """
    if hub.settings.reco_offload:
        version: str = await hub.offload.run(build_and_publish, by, replace)
        return version
    return await build_and_publish(hub, by, replace)


async def build_and_publish(hub: Hub, by: Builder, replace: bool) -> str:
    """Read, build, encode and publish (see `rebuild`); the job the offload child runs."""
    if not replace:  # a first use queued behind another build needs none of its own
        existing = Meta.decode(await hub.store.client.get(_Keys.of(hub).meta))
        if existing is not None:
            return existing.version
    started = time.perf_counter()
    catalogue, bookings, now = await _read_inputs(hub)
    model, data = await asyncio.to_thread(_build, catalogue, bookings, now)
    meta = Meta(version=uuid.uuid4().hex, built_at=now.timestamp(), by=by)
    current = await _publish(hub, meta, data, replace=replace)
    log.info(
        "reco_model_built",
        version=meta.version,
        published=current == meta.version,
        by=by,
        events=len(model.event_ids),
        open_events=int(model.open_events.size),
        bookings=len(bookings),
        bytes=len(data),
        seconds=round(time.perf_counter() - started, 2),
    )
    return current


async def _read_inputs(hub: Hub) -> tuple[list[Record], list[Booking], dt.datetime]:
    """The catalogue and every confirmed booking, from one snapshot, and its clock."""
    bookings: list[Booking] = []
    users: dict[str, str] = {}
    async with hub.db.connection() as con:
        async with con.transaction(isolation="repeatable_read", readonly=True):
            catalogue = await reco_db.catalogue(con)
            events = {row["event_id"]: row["event_id"] for row in catalogue}
            async for rows in reco_db.confirmed_bookings(con, BOOKING_BATCH):
                bookings.extend(_bookings(rows, users, events))
            now = catalogue[0]["now"] if catalogue else await con.fetchval("SELECT now()")
    return catalogue, bookings, now


def _bookings(
    rows: Iterable[Record], users: dict[str, str], events: dict[str, str]
) -> Iterable[Booking]:
    """Engine bookings; each id string is kept once (a million rows name 5,000 events)."""
    for user_id, event_id, created_at in rows:
        user = users.setdefault(user_id, user_id)
        yield Booking(user, events.get(event_id, event_id), created_at)


def _build(
    catalogue: Sequence[Record], bookings: Sequence[Booking], now: dt.datetime
) -> tuple[Model, bytes]:
    events = [
        EventInfo(
            event_id=row["event_id"],
            name=row["name"],
            category=row["category"],
            keywords=tuple(row["keywords"]),
            venue_id=row["venue_id"],
            venue_name=row["venue_name"],
            price_cents=row["price_cents"],
            starts_at=row["starts_at"],
            cancelled=row["cancelled"],
            sold_out=row["sold_out"],
        )
        for row in catalogue
    ]
    model = build_model(bookings, events, now)
    return model, encode_model(model)


async def _publish(hub: Hub, meta: Meta, data: bytes, *, replace: bool) -> str:
    """Store the model and name it in the meta; returns the version now current."""
    keys = _Keys.of(hub)
    ttl = _model_ttl(hub)
    client = hub.store.client
    if replace:
        previous = Meta.decode(await client.get(keys.meta))
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(keys.model(meta.version), data, ex=ttl)
            pipe.set(keys.meta, meta.encode(), ex=ttl)
            if previous is not None and previous.version != meta.version:
                pipe.expire(keys.model(previous.version), REPLACED_GRACE_SECONDS)
            await pipe.execute()
        return meta.version
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(keys.model(meta.version), data, ex=ttl)
        pipe.set(keys.meta, meta.encode(), ex=ttl, nx=True)
        pipe.get(keys.meta)
        _, named, current = await pipe.execute()
    if named:
        return meta.version
    await client.delete(keys.model(meta.version))  # lost the race: the winner's stands
    winner = Meta.decode(current)
    assert winner is not None
    return winner.version


# --- the model as bytes -------------------------------------------------------------------------

_FORMAT = 1
_ARRAYS = (
    "starts_at",
    "open_events",
    "open_position",
    "mean_features",
    "popularity",
    "recent",
    "total",
)
_MATRICES = ("neighbours", "features", "open_features")


def encode_model(model: Model) -> bytes:
    """The model as npz bytes (no pickle): its arrays and sparse matrices as they are, its
    strings and settings in a JSON header. `decode_model` gives back an equal model."""
    header = {
        "format": _FORMAT,
        "config": dataclasses.asdict(model.config),
        "built_at": model.built_at.isoformat(),
        "event_ids": model.event_ids,
        "names": model.names,
        "category_labels": model.category_labels,
        "feature_labels": model.feature_labels,
    }
    arrays: dict[str, np.ndarray] = {"header": np.frombuffer(jsonenc.dumps(header), dtype=np.uint8)}
    for name in _ARRAYS:
        arrays[name] = getattr(model, name)
    for name in _MATRICES:
        matrix: sp.csr_array = getattr(model, name)
        arrays[f"{name}.data"] = matrix.data
        arrays[f"{name}.indices"] = matrix.indices
        arrays[f"{name}.indptr"] = matrix.indptr
        arrays[f"{name}.shape"] = np.array(matrix.shape, dtype=np.int64)
    out = io.BytesIO()
    np.savez(out, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def decode_model(data: bytes) -> Model:
    """The model `encode_model` wrote.

    Raises:
        ValueError: bytes of another format.
    """
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        header = jsonenc.loads(stored["header"].tobytes())
        if header.get("format") != _FORMAT:
            raise ValueError(f"unknown model format {header.get('format')!r}")
        arrays = {name: stored[name] for name in _ARRAYS}
        matrices = {
            name: sp.csr_array(
                (stored[f"{name}.data"], stored[f"{name}.indices"], stored[f"{name}.indptr"]),
                shape=tuple(int(n) for n in stored[f"{name}.shape"]),
            )
            for name in _MATRICES
        }
    event_ids = tuple(header["event_ids"])
    return Model(
        config=RecommendConfig(**header["config"]),
        built_at=dt.datetime.fromisoformat(header["built_at"]),
        event_ids=event_ids,
        index={event_id: i for i, event_id in enumerate(event_ids)},
        names=tuple(header["names"]),
        category_labels=tuple(header["category_labels"]),
        starts_at=arrays["starts_at"],
        open_events=arrays["open_events"],
        open_position=arrays["open_position"],
        neighbours=matrices["neighbours"],
        features=matrices["features"],
        open_features=matrices["open_features"],
        feature_labels=tuple(header["feature_labels"]),
        mean_features=arrays["mean_features"],
        popularity=arrays["popularity"],
        recent=arrays["recent"],
        total=arrays["total"],
    )
