"""Where the app's members are listed: HTTP endpoint modules, WebSocket routes, pages, and the
loops the leader runs. Adding a feature means adding it here, once.

``hub.app`` imports this module; nothing here imports the app back.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from hub.api import (
    accounts,
    analytics,
    bookings,
    bulk,
    discounts,
    event_recommendations,
    events,
    health,
    holds,
    pages,
    pricing,
    seat_recommendations,
    sockets,
    venues,
    waiting_room,
    waitlist,
)
from hub.api.routing import Api
from hub.assembly import LeaderLoop
from hub.services.admission import admission_loop
from hub.services.event_recommendations import recommendation_loop
from hub.services.expiry import expiry_loop, housekeeping_loop
from hub.services.health import health_loop
from hub.services.notifications import outbox_loop
from hub.services.pricing import pricing_loop
from hub.services.refunds import refund_loop
from hub.services.rollups import rollup_loop


def build_api() -> Api:
    api = Api()
    for module in (
        accounts,
        venues,
        events,
        holds,
        bookings,
        waitlist,
        waiting_room,
        pricing,
        discounts,
        bulk,
        seat_recommendations,
        event_recommendations,
        analytics,
        health,
    ):
        api.include(module.api)
    return api


def websocket_routes() -> list[BaseRoute]:
    return sockets.websocket_routes()


def page_routes() -> list[BaseRoute]:
    return pages.routes()


def leader_loops() -> list[LeaderLoop]:
    """The loops only the leader process runs (one of each across all processes)."""
    return [
        expiry_loop,
        housekeeping_loop,
        outbox_loop,
        refund_loop,
        pricing_loop,
        rollup_loop,
        recommendation_loop,
        health_loop,
        admission_loop,
    ]
