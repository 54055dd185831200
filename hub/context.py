"""The hub: everything one hub process owns, as typed fields, created once.

``Hub`` is what a service can reach: the settings, the PostgreSQL pool, the Redis store,
the live inventory, and the per-process members built from them (verified tokens, the
event / venue-seat / layout caches, the hold-log writer, the payment provider, the
notification sender). ``AppHub`` adds what only a process serving the web app has: the
channel hub, the admin feed and the leadership campaign. The app's lifespan
(``hub.assembly``) builds an ``AppHub`` and starts its tasks; commands outside the web app
use ``open_hub``. Tests may replace a member (``hub.payments = provider``).

Nearly every module imports this one, so it imports nothing that imports it back: each
field's type lives in a module below it (``hub.tokens``, ``hub.records``, ``hub.senders``,
``hub.hold_log``, ``hub.payments``, ``hub.channels``, ``hub.leader``), and whatever needs
the services (the channels' snapshot reader, the leader's loops) is handed over by the
lifespan when it starts them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from argon2 import PasswordHasher

from hub.breakers import Breakers
from hub.cache import SharedLoads
from hub.channels.admin import AdminFeed
from hub.channels.caps import ConnectionCaps
from hub.channels.fanout import Channels
from hub.db import Database
from hub.hold_log import HoldLogWriter
from hub.inventory import Inventory
from hub.leader import Leadership
from hub.offload import Offload
from hub.payments import PaymentProvider, default_provider
from hub.ratelimit import RateLimits
from hub.records import Event, Layout, VenueSeats
from hub.revocations import RevocationFeed
from hub.senders import Sender, make_sender
from hub.settings import Settings
from hub.store import Store
from hub.tasks import CleanUps
from hub.tokens import Accounts, RevokedTokens, VerifiedTokens
from hub.waiting_rooms import AdmissionTokens, QueueScripts, RoomFeed, RoomRegistry

if TYPE_CHECKING:  # a type only: the engine (numpy, scipy) loads with the service that uses it
    from engines.recommend import Model

# Every hold and confirmation reads its event; a surge reads the same few events thousands
# of times a second. Events change rarely (an admin's edit, a cancellation), so each
# process keeps them for a second. Staleness is bounded and harmless: a booking re-checks
# the event's status inside its transaction, and a held seat keeps its quoted price.
EVENT_CACHE_SECONDS = 1.0
EVENT_CACHE_SIZE = 10_000
# Venue seats never change once written: kept until pushed out by newer venues.
VENUE_CACHE_SIZE = 64
LAYOUT_CACHE_SIZE = 64
# The current recommendation model and the one replacing it while requests switch over.
EVENT_MODEL_CACHE_SIZE = 2


@dataclass(kw_only=True, eq=False)
class Hub:
    """What a service can reach in one hub process.

    Built from ``settings``, ``db`` and ``store``; every other member is created once, here,
    from those three.
    """

    settings: Settings
    db: Database
    store: Store
    passwords: PasswordHasher = field(default_factory=PasswordHasher)
    inventory: Inventory = field(init=False)
    # Bearer tokens whose signature this process has checked.
    tokens: VerifiedTokens = field(init=False)
    # Revoked token ids, kept current by the app's revocation feed (not live without one).
    revoked: RevokedTokens = field(init=False)
    # Current roles and token cutoffs of accounts, kept current by the same feed.
    accounts: Accounts = field(init=False)
    # Rate limits, counted in Redis for every process (off when the settings say so).
    limits: RateLimits = field(init=False)
    # Events with a waiting room on (kept current by the app's room feed; not live without
    # one) and the admission tokens their holds need (hub.waiting_rooms).
    rooms: RoomRegistry = field(init=False)
    admission_tokens: AdmissionTokens = field(init=False)
    queue_scripts: QueueScripts = field(init=False)
    # Per-process caches; each key is loaded once however many ask at the same time.
    events: SharedLoads[uuid.UUID, Event] = field(init=False)
    venue_seats: SharedLoads[uuid.UUID, VenueSeats] = field(init=False)
    layouts: SharedLoads[uuid.UUID, Layout] = field(init=False)
    # Placed holds, written to PostgreSQL in batches (flushed by ``hold_log.flushing()``).
    hold_log: HoldLogWriter = field(init=False)
    payments: PaymentProvider = field(init=False)
    # Circuit breakers around the payment provider and email (``breakers.states()`` is the
    # view the health report and the admin stream read).
    breakers: Breakers = field(init=False)
    # Where the outbox's notifications go.
    sender: Sender = field(init=False)
    # Heavy background runs (pricing), in a niced child process started on first use.
    offload: Offload = field(init=False)
    # Event-recommendation models by version, each loaded from Redis once however many
    # requests wait (hub.services.event_recommendations).
    event_models: SharedLoads[str, Model] = field(init=False)
    # Failed requests' clean-ups, run to their end behind the answer (hub.tasks).
    cleanups: CleanUps = field(init=False)

    def __post_init__(self) -> None:
        self.inventory = Inventory(self.store.client, self.store.keys)
        self.tokens = VerifiedTokens()
        self.revoked = RevokedTokens()
        self.accounts = Accounts()
        self.limits = RateLimits(self.store, enabled=self.settings.rate_limits)
        self.rooms = RoomRegistry()
        self.admission_tokens = AdmissionTokens(self.settings.secret_key or "")
        self.queue_scripts = QueueScripts(self.store)
        self.events = SharedLoads(EVENT_CACHE_SIZE, EVENT_CACHE_SECONDS, name="events")
        self.venue_seats = SharedLoads(VENUE_CACHE_SIZE, name="venue_seats")
        self.layouts = SharedLoads(LAYOUT_CACHE_SIZE, name="layouts")
        self.hold_log = HoldLogWriter(self.db)
        self.payments = default_provider(self.settings)
        self.breakers = Breakers(self.settings, self.store)
        self.sender = make_sender(self.settings)
        self.offload = Offload(self.settings, open_hub)
        self.event_models = SharedLoads(EVENT_MODEL_CACHE_SIZE)
        self.cleanups = CleanUps()


@dataclass(kw_only=True, eq=False)
class AppHub(Hub):
    """The hub of a process serving the web app: a ``Hub`` and its live members.

    They are created with the hub but run only once the lifespan starts them: the
    channels' pub/sub link and housekeeping, the admin feed (while an admin watches), and
    the campaign for leadership.
    """

    channels: Channels = field(init=False)
    admin_feed: AdminFeed = field(init=False)
    # WebSocket connections per address and per user, counted in Redis for every process.
    ws_caps: ConnectionCaps = field(init=False)
    leadership: Leadership = field(init=False)
    revocations: RevocationFeed = field(init=False)
    room_feed: RoomFeed = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        assert self.settings.redis_url
        self.revocations = RevocationFeed(
            self.settings.redis_url,
            self.store,
            self.db,
            self.revoked,
            self.accounts,
            self.settings.token_ttl_seconds,
        )
        self.room_feed = RoomFeed(self.settings.redis_url, self.store, self.rooms)
        self.channels = Channels(self.settings, self.store.keys, self.inventory)
        self.admin_feed = AdminFeed(self.channels, self.store, self.db)
        self.ws_caps = ConnectionCaps(self.store)
        self.leadership = Leadership(self.store, self.settings.leader_lease_seconds)


@asynccontextmanager
async def open_hub(settings: Settings) -> AsyncIterator[Hub]:
    """Connect to PostgreSQL and Redis for a command that runs outside the web app."""
    assert settings.database_url and settings.redis_url
    db = await Database.connect(settings.database_url, min_size=1, max_size=4)
    store = Store.connect(settings.redis_url, prefix=settings.redis_prefix, max_connections=16)
    try:
        hub = Hub(settings=settings, db=db, store=store)
        try:
            async with hub.hold_log.flushing():
                yield hub
        finally:
            await hub.offload.stop()
    finally:
        await store.close()
        await db.close()
