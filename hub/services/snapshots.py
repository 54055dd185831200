"""Where a live channel's state comes from: Redis's live seats, loaded from PostgreSQL if needed.

The channel hub (``hub.channels.fanout``) is handed ``read_snapshot`` bound to the hub by
the lifespan; it sits below the services and does not import them.
"""

from __future__ import annotations

import uuid

from engines.money import cents_to_decimal
from hub.channels.fanout import Snapshot
from hub.context import Hub
from hub.errors import NotFound
from hub.services import events


async def read_snapshot(hub: Hub, event_id: uuid.UUID) -> Snapshot:
    """``(seq, one code per seat, current prices by section)``.

    Redis's seat state is read atomically with its seq. An event Redis does not hold yet
    goes through ``events.seat_states``, which loads it from PostgreSQL. An event only in
    Redis (load tests drive the inventory directly) gets no prices.

    Raises:
        NotFound: the event exists neither in Redis nor in PostgreSQL.
    """
    live = await hub.inventory.snapshot(event_id)
    try:
        event = await events.load_event(hub, event_id)
    except NotFound:
        if live is None:
            raise
        return live[0], live[1], {}
    prices = {
        section: float(cents_to_decimal(cents)) for section, cents in event.current_cents.items()
    }
    if live is None:
        await events.seat_states(hub, event)
        live = await hub.inventory.snapshot(event_id)
        if live is None:  # nothing keeps it in Redis yet: PostgreSQL's view, seq 0
            seq, seats = await events.seat_states(hub, event)
            return seq, seats, prices
    return live[0], live[1], prices
