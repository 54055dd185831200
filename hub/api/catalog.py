"""Where the app's parts are listed: HTTP endpoint modules, WebSocket routes, pages, and the
subsystems the lifespan starts. Adding a feature means adding it here, once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from hub.api import accounts, bookings, events, holds, venues, waitlist
from hub.api.routing import Api

if TYPE_CHECKING:
    from hub.app import Part


def build_api() -> Api:
    api = Api()
    for module in (accounts, venues, events, holds, bookings, waitlist):
        api.include(module.api)
    return api


def websocket_routes() -> list[BaseRoute]:
    from hub.channels import websocket_routes as channel_routes

    return [*channel_routes()]


def page_routes() -> list[BaseRoute]:
    from hub.api import pages

    return pages.routes()


def subsystem_parts() -> list[Part]:
    from hub.channels import channels_part
    from hub.leader import leadership_part
    from hub.services.expiry import expiry_loop
    from hub.services.hold_log import hold_log_part
    from hub.services.notifications import outbox_loop

    return [hold_log_part, channels_part, leadership_part([expiry_loop, outbox_loop])]
