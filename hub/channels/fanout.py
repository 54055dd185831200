"""Per-process hub of event channels: Redis pub/sub in, conflated frames out.

Idea: each watched event has one ``Channel`` with a ``Mirror`` of its seats. The process's
single ``Subscriber`` feeds every published message to its channel; seat changes are
applied to the mirror in ``seq`` order and flushed as one ``seats`` message (plus
``counts`` when they changed), encoded once per subprotocol and written to each watcher's
transport without awaiting any of them.

When to flush (leading-edge conflation): the first change after a quiet tick is flushed at
once; changes that follow within a tick of that flush wait for its end and go out
together. Flushes of one event are thus at least a tick apart ("conflated per tick"), and
the tick is counted from the start of the previous flush, not from the first change after
it: a flush to 5,000 watchers takes ~55 ms on the 2-core box (the loopback ``write``
syscalls), and counting from the next change stretched the period to ~160 ms, which a
change then waited on top of the send.

Invariants:
- an event's channel is subscribed exactly while it has local watchers;
- every watcher receives a snapshot at seq S and then ``seats`` messages whose ``from``
  equals the previous message's ``seq`` (S for the first) — a fresh snapshot restarts it;
- a gap, a ``reset`` or a pub/sub outage re-reads the mirror from Redis and sends every
  watcher a fresh snapshot;
- a watcher whose transport buffer exceeds ``ws_backlog_bytes`` is "behind": it gets
  nothing more until it drains, then one fresh snapshot; still behind after
  ``ws_behind_seconds`` it is closed with 1013.

Watchers that asked for seat recommendations are the channel's ``RecoBoard``
(``hub.channels.reco``): told after each flush, each price change and each load, it
recomputes on its own schedule, off the flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import structlog

from engines.seats import count_seats
from hub import metrics
from hub.channels import codec
from hub.channels.codec import Encoded, Subprotocol
from hub.channels.mirror import Applied, Mirror
from hub.channels.peers import Peer
from hub.channels.reco import RecoBoard, RecoWish
from hub.channels.subscriber import Subscriber
from hub.errors import NotFound
from hub.inventory import Inventory
from hub.settings import Settings
from hub.store import Keys

log = structlog.get_logger(__name__)

_PROTOS = tuple(Subprotocol)
FREEZE_ABOVE_WATCHERS = 1000

# ``(seq, one status byte per seat, current prices by section)`` of one event.
Snapshot = tuple[int, bytes, dict[str, Any]]
# Reads an event's snapshot (from Redis, loading it from PostgreSQL if needed); raises
# ``NotFound`` for an unknown event. The lifespan gives it to ``start``: it reads through
# the services, which take the hub that holds this channel hub.
SnapshotReader = Callable[[uuid.UUID], Awaitable[Snapshot]]


class Channel:
    __slots__ = (
        "buffer",
        "event_id",
        "flush_handle",
        "last_counts",
        "last_flush",
        "loading",
        "mirror",
        "name",
        "peers",
        "prices",
        "reco",
        "snap_cache",
        "stale",
    )

    def __init__(self, event_id: uuid.UUID, name: str) -> None:
        self.event_id = event_id
        self.name = name
        self.peers: dict[Peer, None] = {}
        self.mirror: Mirror | None = None
        self.prices: dict[str, Any] = {}
        self.loading: asyncio.Task[None] | None = None
        self.stale = False
        # seat messages received while (re)loading, applied after the snapshot
        self.buffer: list[tuple[int, list[list[int]]]] = []
        self.flush_handle: asyncio.Handle | None = None
        self.last_counts: dict[str, int] | None = None
        # loop time at which the last flush that sent something started
        self.last_flush = float("-inf")
        self.snap_cache: list[Encoded | None] = [None] * len(_PROTOS)
        self.reco: RecoBoard | None = None

    def reco_state(self) -> tuple[bytearray, dict[str, Any]] | None:
        """What the recommendations are computed from: the mirrored seats and prices."""
        if self.mirror is None or self.loading is not None:
            return None
        return self.mirror.seats, self.prices


class Channels:
    """The channel hub of one process; the lifespan starts and stops it."""

    def __init__(self, settings: Settings, keys: Keys, inventory: Inventory) -> None:
        assert settings.redis_url is not None
        self.inventory = inventory
        self.tick = settings.ws_tick_ms / 1000
        self.backlog = settings.ws_backlog_bytes
        self.behind_deadline = settings.ws_behind_seconds
        self.gc_freeze_seconds = settings.ws_gc_freeze_seconds
        self.events: dict[uuid.UUID, Channel] = {}
        self._by_name: dict[bytes, Channel] = {}
        self.behind: set[Peer] = set()
        self.per_ip: Counter[str] = Counter()
        self.per_user: Counter[uuid.UUID] = Counter()
        self.deliveries = 0
        self.subscriber = Subscriber(
            settings.redis_url,
            keys.global_("hub:control"),
            self._on_message,
            self._on_link,
        )
        self._housekeeping: asyncio.Task[None] | None = None
        self._frozen_at = 0.0
        self._frozen_at_watchers = 0
        self._read_snapshot: SnapshotReader | None = None

    async def start(self, read_snapshot: SnapshotReader) -> None:
        """Link to Redis pub/sub and start housekeeping; channels load through
        ``read_snapshot`` from now on."""
        self._read_snapshot = read_snapshot
        await self.subscriber.start()
        self._housekeeping = asyncio.get_running_loop().create_task(self._keep_house())

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        for channel in list(self.events.values()):
            self._drop_channel(channel)
        await self.subscriber.stop()

    # -- watchers -------------------------------------------------------------------

    def watch(self, event_id: uuid.UUID, peer: Peer) -> None:
        """Add a watcher; it gets a snapshot now, or as soon as the channel has loaded."""
        channel = self.events.get(event_id)
        if channel is None:
            channel = Channel(event_id, self.inventory.channel(event_id))
            self.events[event_id] = channel
            self._by_name[channel.name.encode()] = channel
            self._reload(channel)
        channel.peers[peer] = None
        peer.event_id = event_id
        if channel.loading is None:
            peer.write(self._snapshot(channel, peer.proto))
            self.deliveries += 1

    def unwatch(self, peer: Peer) -> None:
        self.behind.discard(peer)
        channel = self.events.get(peer.event_id) if peer.event_id else None
        if channel is None:
            return
        self.want_reco(peer, None)
        channel.peers.pop(peer, None)
        if not channel.peers:
            self._drop_channel(channel)

    def want_reco(self, peer: Peer, wish: RecoWish | None) -> None:
        """Start, change (``wish``) or stop (None) a watcher's ``reco`` messages."""
        channel = self.events.get(peer.event_id) if peer.event_id else None
        if channel is None or peer not in channel.peers:
            return
        peer.reco = None if wish is None else wish.prefs
        board = channel.reco
        if wish is None:
            if board is not None:
                board.leave(peer)
                if not len(board):
                    board.close()
                    channel.reco = None
            return
        if board is None:
            board = channel.reco = RecoBoard(wish.venue, channel.reco_state, self._deliver)
        board.join(peer, wish)

    def resync(self, peer: Peer) -> None:
        """A fresh snapshot for one watcher (it asked, or it has drained after falling behind)."""
        channel = self.events.get(peer.event_id) if peer.event_id else None
        if channel is None or channel.loading is not None or peer.behind_since is not None:
            return  # a loading channel sends everyone a snapshot; a behind peer gets one later
        if peer.buffered() > self.backlog:  # asking faster than it reads
            self._fall_behind(peer, time.monotonic())
            return
        peer.write(self._snapshot(channel, peer.proto))
        self.deliveries += 1

    def _drop_channel(self, channel: Channel) -> None:
        if channel.loading is not None:
            channel.loading.cancel()
        if channel.flush_handle is not None:
            channel.flush_handle.cancel()
        if channel.reco is not None:
            channel.reco.close()
        self.subscriber.unsubscribe(channel.name)
        self.events.pop(channel.event_id, None)
        self._by_name.pop(channel.name.encode(), None)

    # -- pub/sub in -----------------------------------------------------------------

    def _on_link(self, up: bool) -> None:
        if up:
            for channel in list(self.events.values()):
                self._reload(channel)

    def _on_message(self, name: bytes, data: bytes) -> None:
        channel = self._by_name.get(name)
        if channel is None:
            return
        try:
            message = msgpack.unpackb(data, raw=False)
            kind = message["t"]
        except Exception:
            log.warning("channel_message_unreadable", event_id=str(channel.event_id))
            return
        if kind == "seats":
            self._on_seats(channel, int(message["seq"]), message["changes"])
        elif kind == "reset":
            self._reload(channel)
        elif kind == "offer":
            self._send_offer(channel, message)
        elif kind == "price":
            channel.prices = dict(message.get("prices") or {})
            channel.snap_cache = [None] * len(_PROTOS)
            self._broadcast(channel, [self._with_seq(channel, message)])
            if channel.reco is not None:
                channel.reco.changed()
        else:
            self._broadcast(channel, [self._with_seq(channel, message)])

    def _on_seats(self, channel: Channel, seq: int, changes: list[list[int]]) -> None:
        mirror = channel.mirror
        if mirror is None or channel.loading is not None:
            channel.buffer.append((seq, changes))
            return
        outcome = mirror.apply(seq, changes)
        if outcome is Applied.APPLIED:
            self._schedule_flush(channel)
        elif outcome is Applied.GAP:
            log.warning("channel_gap", event_id=str(channel.event_id), at=mirror.seq, got=seq)
            self._reload(channel)

    def _send_offer(self, channel: Channel, message: dict[str, Any]) -> None:
        user = str(message.pop("user_id", ""))
        encoded: list[Encoded | None] = [None] * len(_PROTOS)
        for peer in list(channel.peers):
            if peer.user_id is not None and str(peer.user_id) == user:
                enc = encoded[peer.proto] or codec.encode(message, peer.proto)
                encoded[peer.proto] = enc
                peer.write(enc)
                self.deliveries += 1

    def _with_seq(self, channel: Channel, message: dict[str, Any]) -> dict[str, Any]:
        if channel.mirror is not None:
            message["seq"] = channel.mirror.flushed_seq
        return message

    # -- loading --------------------------------------------------------------------

    def _reload(self, channel: Channel) -> None:
        """Re-read the channel's mirror from Redis (again, if a load is under way)."""
        if channel.loading is not None:
            channel.stale = True
            return
        if channel.flush_handle is not None:
            channel.flush_handle.cancel()
            channel.flush_handle = None
        channel.loading = asyncio.get_running_loop().create_task(self._load(channel))

    async def _load(self, channel: Channel) -> None:
        read_snapshot = self._read_snapshot
        assert read_snapshot is not None, "watchers arrive only after start()"
        delay = 0.1
        try:
            while True:
                channel.stale = False
                channel.buffer.clear()
                try:
                    await self.subscriber.subscribe(channel.name)
                    seq, seats, prices = await read_snapshot(channel.event_id)
                except NotFound as exc:
                    for peer in list(channel.peers):
                        peer.close(4404, exc.detail[:120])
                    return
                except Exception as exc:  # Redis or PostgreSQL away: try again
                    log.warning(
                        "channel_load_failed", event_id=str(channel.event_id), error=repr(exc)
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                if channel.stale:
                    continue
                mirror = Mirror(seq, seats)
                outcome = Applied.STALE
                for msg_seq, changes in channel.buffer:
                    outcome = mirror.apply(msg_seq, changes)
                    if outcome is Applied.GAP:
                        break
                if outcome is Applied.GAP:
                    continue
                break
            channel.buffer.clear()
            channel.mirror = mirror
            channel.prices = prices
            channel.snap_cache = [None] * len(_PROTOS)
            channel.last_counts = mirror.counts()
            channel.loading = None
            for peer in list(channel.peers):
                if peer.behind_since is None:
                    peer.write(self._snapshot(channel, peer.proto))
                    self.deliveries += 1
            if mirror.pending:
                self._schedule_flush(channel)
            if channel.reco is not None:
                channel.reco.changed()
            log.debug("channel_loaded", event_id=str(channel.event_id), seq=seq)
        finally:
            if channel.loading is asyncio.current_task():
                channel.loading = None

    # -- out ------------------------------------------------------------------------

    def _snapshot(self, channel: Channel, proto: Subprotocol) -> Encoded:
        cached = channel.snap_cache[proto]
        if cached is not None:
            return cached
        assert channel.mirror is not None
        seq, seats = channel.mirror.flushed_state()
        message = {
            "t": "snapshot",
            "seq": seq,
            "seats": seats,
            "prices": channel.prices,
            "counts": count_seats(seats),
        }
        encoded = codec.encode(message, proto)
        channel.snap_cache[proto] = encoded
        return encoded

    def _schedule_flush(self, channel: Channel) -> None:
        """Flush the tick that just began: at once after a quiet tick (the leading edge),
        else when a tick has passed since the previous flush started."""
        if channel.flush_handle is not None:
            return
        loop = asyncio.get_running_loop()
        due = channel.last_flush + self.tick
        if due <= loop.time():
            # call_soon, not a direct call: the other messages of the same Redis read are
            # applied first and go out in this flush.
            channel.flush_handle = loop.call_soon(self._flush, channel)
        else:
            channel.flush_handle = loop.call_at(due, self._flush, channel)

    def _flush(self, channel: Channel) -> None:
        channel.flush_handle = None
        mirror = channel.mirror
        if mirror is None or channel.loading is not None:
            return
        tick = mirror.take_tick()
        if tick is None:
            return
        channel.last_flush = asyncio.get_running_loop().time()
        channel.snap_cache = [None] * len(_PROTOS)
        messages: list[dict[str, Any]] = [
            {"t": "seats", "from": tick.from_seq, "seq": tick.seq, "changes": tick.changes}
        ]
        counts = count_seats(mirror.seats)
        if counts != channel.last_counts:
            channel.last_counts = counts
            messages.append({"t": "counts", "seq": tick.seq, **counts})
        self._broadcast(channel, messages)
        if channel.reco is not None:
            channel.reco.changed()  # after the flush, so a pass never holds one back

    def _broadcast(self, channel: Channel, messages: list[dict[str, Any]]) -> None:
        """Write the messages to every watcher that keeps up. Never awaits."""
        encoded: list[Encoded | None] = [None] * len(_PROTOS)
        limit = self.backlog
        now = time.monotonic()
        sent = 0
        for peer in list(channel.peers):
            if peer.behind_since is not None or peer.queued:
                continue
            if peer.buffered() > limit:
                self._fall_behind(peer, now)
                continue
            enc = encoded[peer.proto]
            if enc is None:
                enc = encoded[peer.proto] = _encode_all(messages, peer.proto)
            peer.write(enc)
            sent += 1
        delivered = sent * len(messages)
        self.deliveries += delivered
        metrics.WS_DELIVERIES.inc(delivered)

    def _deliver(self, peer: Peer, message: Encoded) -> bool:
        """Write one message to one watcher that keeps up (the broadcast's rule); True when
        written."""
        if peer.behind_since is not None:
            return False
        if peer.buffered() > self.backlog:
            self._fall_behind(peer, time.monotonic())
            return False
        peer.write(message)
        self.deliveries += 1
        metrics.WS_DELIVERIES.inc()
        return True

    def _fall_behind(self, peer: Peer, now: float) -> None:
        peer.behind_since = now
        self.behind.add(peer)
        metrics.WS_DROPPED.labels("behind").inc()
        log.info("client_behind", ip=peer.ip, buffered=peer.buffered())

    # -- housekeeping ---------------------------------------------------------------

    async def _keep_house(self) -> None:
        last_gc = time.monotonic()
        while True:
            await asyncio.sleep(min(self.tick, 0.1))
            try:
                self._check_behind(time.monotonic())
            except Exception:
                log.exception("channel_housekeeping_failed")
            if time.monotonic() - last_gc >= 1.0:
                last_gc = time.monotonic()
                self._tune_gc()

    def _tune_gc(self) -> None:
        """Keep many long-lived connections out of full collections, which paused
        180-390 ms over 5-10k connections (DESIGN §5): freeze as soon as the crowd grew by
        a tenth, and every ``ws_gc_freeze_seconds`` while it lasts. Frozen objects are never
        collected, so cycles of connections closed meanwhile wait until the crowd is gone:
        then unfreeze and let the collector have them while a pass is cheap.

        A freeze moves garbage not yet collected into the frozen set with the living (each
        upgraded connection leaves its HTTP protocol behind in a cycle with its parser), so
        a full collection comes first: it walks only what is not frozen already — what was
        made since the last freeze — and garbage frozen would be kept for good (issue 18
        item 7: ~10 MB kept after 1,000 of 5,000 watchers died)."""
        watchers = sum(len(channel.peers) for channel in self.events.values())
        now = time.monotonic()
        if watchers >= FREEZE_ABOVE_WATCHERS:
            grown = watchers > self._frozen_at_watchers * 1.1
            if grown or now - self._frozen_at >= self.gc_freeze_seconds:
                started = time.perf_counter()
                collected = gc.collect()
                gc.freeze()
                log.info(
                    "gc_frozen",
                    watchers=watchers,
                    collected=collected,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )
                self._frozen_at, self._frozen_at_watchers = now, watchers
        elif self._frozen_at_watchers:  # (gc.get_freeze_count() walks every frozen object)
            gc.unfreeze()
            self._frozen_at_watchers = 0

    def _check_behind(self, now: float) -> None:
        low = self.backlog // 4
        for peer in list(self.behind):
            if not peer.open:
                self.behind.discard(peer)
            elif peer.buffered() <= low:
                peer.behind_since = None
                self.behind.discard(peer)
                self.resync(peer)
                metrics.WS_DROPPED.labels("resynced").inc()
                log.info("client_resynced", ip=peer.ip)
            elif peer.behind_since is not None and now - peer.behind_since > self.behind_deadline:
                self.behind.discard(peer)
                peer.close(1013, "too slow: try again later")
                metrics.WS_DROPPED.labels("closed").inc()
                log.info("client_dropped", ip=peer.ip, buffered=peer.buffered())


def _encode_all(messages: list[dict[str, Any]], proto: Subprotocol) -> Encoded:
    encoded = codec.encode(messages[0], proto)
    for message in messages[1:]:
        encoded = encoded + codec.encode(message, proto)
    return encoded
