"""A made-up but lifelike booking history, generated as numpy columns (no I/O, no clock).

The demo seeds two years of it so that analytics, forecasts and recommendations have
something real to show from the first start; the analytics benchmark seeds a million
bookings of it. ``generate`` is a pure function of its arguments (the seed, ``now``, the
venues' seats and the events and customers that exist already): the same call gives the
same rows, ids included.

How it is made, in order:

1. Events. Past ones start on days drawn with more weight on Fridays and Saturdays, on
   busier months (``MONTH_FACTOR``) and later in the history (``GROWTH`` a year); each has a
   category, an appeal (log-normal) and sales opening on a Friday 30-110 days before. A few
   (``hit_share``) are hits: they sell every seat, most of it in a burst right after going
   on sale. Events that start after ``now`` (given or generated) are on sale.
2. How many bookings. A hit sells all its seats; the other events share the bookings in
   proportion to capacity x appeal x season, capped at what their seats hold
   (water-filling). An on-sale event keeps only the bookings made before ``now``, and the
   past events share the rest again, so the total is exact.
3. When. A booking's moment within its event's sale is a burst after the on-sale or a
   rise towards the start; its weekday (weekends busier, ``WEEKDAY_BOOKINGS``) and hour
   of day (``HOUR_BOOKINGS``) are drawn by rejection, so both show in any analysis.
4. Who. Customers join over the history (most when bookings are many) and some leave;
   each has an activity level (heavy-tailed: repeat customers) and a stable taste (a
   favourite and a second category). A booking goes to an active customer with weight
   activity x taste of its category; no customer books an event twice.
5. Seats. Each venue sells its rows nearest the stage first; an event's bookings take
   consecutive seats of that order in the order they were made, so no seat is sold twice
   and a sold-out event has every seat sold. A cancelled booking's tickets are inactive.
6. Holds and money. Every booking came from a hold placed minutes before; more holds
   lapsed or were let go (conversion ``conversion``, lower on hits). A booking pays the
   event's section prices; a cancelled one (``cancel_rate``) was refunded in full.

Invariants: at most one active ticket per event and seat; every time is before ``now``
and every booking and cancellation before its event's start; no hold is left live.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hub.demo_history.catalogue import CATEGORIES, DAY, EMAIL_DOMAIN, UNUSABLE_PASSWORD
from hub.demo_history.model import (
    History,
    KnownCustomer,
    KnownEvent,
    Plan,
    Table,
    VenuePlan,
    uuids,
    venue_plan,
)
from hub.demo_history.rows import history_rows, references, seat_tickets
from hub.demo_history.sales import assign_customers, make_customers, plan_bookings, plan_events

__all__ = [
    "CATEGORIES",
    "EMAIL_DOMAIN",
    "UNUSABLE_PASSWORD",
    "History",
    "KnownCustomer",
    "KnownEvent",
    "Plan",
    "Table",
    "VenuePlan",
    "generate",
    "references",
    "uuids",
    "venue_plan",
]


def generate(
    plan: Plan,
    known_events: Sequence[KnownEvent] = (),
    known_customers: Sequence[KnownCustomer] = (),
) -> History:
    """Generate the history (see the module docstring).

    Raises:
        ValueError: the plan cannot be met (no venue for new events, or more bookings than
            the past events' seats hold).
    """
    if (plan.past_events or plan.upcoming_events) and not plan.venues:
        raise ValueError("new events need at least one venue")
    rng = np.random.default_rng(plan.seed)
    start = plan.now - plan.days * DAY
    ev = plan_events(rng, plan, start, known_events)
    open_ = ev.starts > plan.now
    bk = plan_bookings(rng, plan, ev, open_)
    customers = make_customers(rng, plan, start, bk.created, known_customers)
    bk_user = assign_customers(rng, customers, ev.category[bk.event], bk.created, bk.event)
    seats, ticket_booking = seat_tickets(ev, bk)
    return history_rows(rng, plan, ev, bk, bk_user, customers, seats, ticket_booking)
