"""Steps 1-4 of the package docstring: the events, how many bookings each sells and when,
and who buys them. Arrays over events (``Events``) and over bookings (``Bookings``, sorted
by event and time), all times epoch seconds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hub.demo_history.catalogue import (
    AHEAD,
    CATALOGUE,
    CATEGORIES,
    CATEGORY_HOURS,
    CATEGORY_PRICE,
    CATEGORY_SHARE,
    DAY,
    EVENT_WEEKDAY,
    GROWTH,
    HOUR,
    HOUR_BOOKINGS_P,
    MONDAY_DAY,
    MONTH_FACTOR,
    ON_SALE_HOUR,
    ON_SALE_WEEKDAY,
    QUANTITY_MEAN,
    QUANTITY_P,
    WEEKDAY_BOOKINGS,
    YEAR,
)
from hub.demo_history.model import KnownCustomer, KnownEvent, Plan, VenuePlan, uuids

# --- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Events:
    """Every event of the history, the known ones last; one entry per event."""

    ids: np.ndarray  # (E, 16) uint8
    new: np.ndarray  # bool: generated here (else known)
    venue: np.ndarray  # index into venues
    venues: tuple[VenuePlan, ...]
    category: np.ndarray  # index into CATEGORIES
    stem: np.ndarray  # index into the category's stems
    starts: np.ndarray  # epoch seconds
    on_sale: np.ndarray  # epoch seconds
    appeal: np.ndarray
    hit: np.ndarray  # bool
    prices: list[np.ndarray]  # cents per section of the event's venue

    @property
    def capacity(self) -> np.ndarray:
        return np.array([v.capacity for v in self.venues], dtype=np.int64)[self.venue]


def weekday(seconds: np.ndarray) -> np.ndarray:
    """Day of the week (0 Monday .. 6 Sunday) of each instant."""
    return (seconds // DAY - MONDAY_DAY) % 7


def month(seconds: np.ndarray) -> np.ndarray:
    """Calendar month (0-11) of each instant."""
    return seconds.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12


def _growth(seconds: np.ndarray, start: int) -> np.ndarray:
    return 1.0 + GROWTH * (seconds - start) / YEAR


def _day_weight(days: np.ndarray, start: int) -> np.ndarray:
    """How likely an event is on each day (epoch seconds of midnight)."""
    return EVENT_WEEKDAY[weekday(days)] * MONTH_FACTOR[month(days)] * _growth(days, start)


def _event_days(rng: np.random.Generator, n: int, lo: int, hi: int, start: int) -> np.ndarray:
    """``n`` event days (epoch seconds of midnight) in [lo, hi), by ``_day_weight``."""
    days = np.arange(lo // DAY, max(hi // DAY, lo // DAY + 1)) * DAY
    cdf = np.cumsum(_day_weight(days, start))
    return np.sort(days[np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")])


def _upcoming(plan: Plan, start: int, first_day: int, known: int) -> int:
    """New on-sale events: the given number, or the past events' pace over ``AHEAD``."""
    if plan.upcoming_events is not None:
        return plan.upcoming_events
    past = np.arange(first_day // DAY, (plan.now - DAY) // DAY) * DAY
    ahead = np.arange((plan.now + DAY) // DAY, (plan.now + AHEAD) // DAY) * DAY
    if past.size == 0:
        return 0
    pace = _day_weight(ahead, start).sum() / _day_weight(past, start).sum()
    return max(0, round(plan.past_events * pace) - known)


def plan_events(
    rng: np.random.Generator, plan: Plan, start: int, known: Sequence[KnownEvent]
) -> Events:
    venues = list(plan.venues)
    for event in known:
        if all(event.venue is not v for v in venues):
            venues.append(event.venue)
    first_day = start + 14 * DAY
    upcoming = _upcoming(plan, start, first_day, len(known))
    n_new = plan.past_events + upcoming
    days = np.concatenate(
        [
            _event_days(rng, plan.past_events, first_day, plan.now - DAY, start),
            _event_days(rng, upcoming, plan.now + DAY, plan.now + AHEAD, start),
        ]
    )
    category = rng.choice(len(CATEGORIES), size=n_new, p=CATEGORY_SHARE)
    hour = np.array([rng.choice(CATEGORY_HOURS[c]) for c in category], dtype=np.int64)
    starts = days + hour * HOUR + rng.choice([0, 1800], size=n_new) * (category != 6)
    stem = np.array([rng.integers(len(CATALOGUE[CATEGORIES[c]][0])) for c in category])
    appeal = rng.lognormal(0.0, 0.5, size=n_new)
    hit = np.zeros(n_new, dtype=bool)
    n_hits = round(plan.hit_share * n_new)
    if n_hits:
        hit[rng.choice(n_new, size=n_hits, replace=False)] = True
    window = np.where(hit, rng.uniform(45, 75, n_new), rng.uniform(30, 110, n_new))
    on_sale = _on_sale(starts - (window * DAY).astype(np.int64))
    venue = rng.integers(len(plan.venues), size=n_new) if n_new else np.zeros(0, np.int64)
    factor = CATEGORY_PRICE[category] * rng.uniform(0.85, 1.15, n_new) * np.where(hit, 1.25, 1.0)
    prices = [
        np.maximum(500, np.rint(venues[v].section_cents * f / 50) * 50).astype(np.int64)
        for v, f in zip(venue.tolist(), factor.tolist(), strict=True)
    ]
    # Known events: on sale since 40-90 days before they start (not before the history),
    # never hits.
    k = len(known)
    k_starts = np.array([e.starts_at for e in known], dtype=np.int64)
    k_window = (rng.uniform(40, 90, k) * DAY).astype(np.int64)
    k_on_sale = _on_sale(np.minimum(k_starts - k_window, plan.now - 7 * DAY))
    return Events(
        ids=np.concatenate(
            [uuids(rng, n_new), np.array([list(e.id) for e in known], np.uint8).reshape(k, 16)]
        ),
        new=np.concatenate([np.ones(n_new, bool), np.zeros(k, bool)]),
        venue=np.concatenate(
            [venue, np.array([_index(venues, e.venue) for e in known], dtype=np.int64)]
        ).astype(np.int64),
        venues=tuple(venues),
        category=np.concatenate(
            [category, np.array([CATEGORIES.index(e.category) for e in known], np.int64)]
        ).astype(np.int64),
        stem=np.concatenate([stem, np.zeros(k, np.int64)]).astype(np.int64),
        starts=np.concatenate([starts, k_starts]),
        on_sale=np.maximum(np.concatenate([on_sale, k_on_sale]), start),
        appeal=np.concatenate([appeal, np.clip(rng.lognormal(0.0, 0.3, k), 0.5, 1.4)]),
        hit=np.concatenate([hit, np.zeros(k, bool)]),
        prices=prices + [np.asarray(e.prices, dtype=np.int64) for e in known],
    )


def _on_sale(moments: np.ndarray) -> np.ndarray:
    """Sales open on the Friday at 10:00 UTC on or before each moment's day."""
    days = moments // DAY
    return (days - (days - MONDAY_DAY - ON_SALE_WEEKDAY) % 7) * DAY + ON_SALE_HOUR * HOUR


def _index(venues: Sequence[VenuePlan], venue: VenuePlan) -> int:
    return next(i for i, v in enumerate(venues) if v is venue)


# --- how many, and when ----------------------------------------------------------------------


def _weights(ev: Events) -> np.ndarray:
    """How much of the demand each event draws: capacity x appeal x season (growth shows
    in how many events there are), less for a sale cut short by the start of the history."""
    return (
        ev.capacity
        * ev.appeal
        * MONTH_FACTOR[month(ev.starts)]
        * np.clip(np.maximum(ev.starts - ev.on_sale, DAY) / (80 * DAY), 0.2, 1.0)
    )


def _water_fill(total: int, weight: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Integers ``b <= cap``, adding up to ``total``, proportional to ``weight`` where no
    cap binds."""
    if total < 0:
        raise ValueError("the hits alone sell more than the bookings asked for: fewer events")
    if total > int(cap.sum()):
        raise ValueError(
            f"{total} bookings do not fit in the past events' seats ({int(cap.sum())} at most):"
            " add events or venues"
        )
    if total == 0 or cap.size == 0:
        return np.zeros(cap.size, dtype=np.int64)
    # The level λ at which sum(min(cap, λ w)) = total, over the events sorted by cap / w.
    ratio = cap / np.maximum(weight, 1e-12)
    order = np.argsort(ratio)
    capped = np.concatenate([[0.0], np.cumsum(cap[order])])[:-1]
    rest = np.cumsum(weight[order][::-1])[::-1]
    level = (total - capped) / rest  # λ if events order[i:] are uncapped
    i = int(np.searchsorted(level <= ratio[order], True))
    share = np.minimum(cap, level[min(i, level.size - 1)] * weight)
    counts = np.floor(share).astype(np.int64)
    short = total - int(counts.sum())
    room = np.flatnonzero(counts < cap)
    # Largest remainders first; ties by index, so the result is deterministic.
    pick = room[np.lexsort((room, -(share[room] - counts[room])))][:short]
    counts[pick] += 1
    return counts


@dataclass(frozen=True, slots=True, eq=False)
class Bookings:
    """Every booking: its event, when it was made and how many tickets it has."""

    event: np.ndarray  # index into events, sorted by event then time
    created: np.ndarray  # epoch seconds
    quantity: np.ndarray


def sale_times(
    rng: np.random.Generator, on_sale: np.ndarray, starts: np.ndarray, burst: np.ndarray
) -> np.ndarray:
    """A booking moment within each sale [on_sale, starts): right after the opening for
    bursts; otherwise rising towards the start, on a weekday and an hour drawn by weight."""
    n = on_sale.size
    out = np.empty(n, dtype=np.int64)
    todo = np.arange(n)
    weekday_limit = WEEKDAY_BOOKINGS.max()
    for _ in range(60):
        if todo.size == 0:
            break
        lo, hi, b = on_sale[todo], starts[todo] - HOUR, burst[todo]
        span = np.maximum(hi - lo, 1)
        u = np.where(b, rng.exponential(0.01, todo.size), rng.beta(2.0, 1.3, todo.size))
        t = lo + (u * span).astype(np.int64)
        hour = rng.choice(24, size=todo.size, p=HOUR_BOOKINGS_P)
        clock = t // DAY * DAY + hour * HOUR + rng.integers(0, HOUR, todo.size)
        t = np.where(b, t, clock)
        keep = (t >= lo) & (t < hi)
        keep &= b | (rng.random(todo.size) * weekday_limit < WEEKDAY_BOOKINGS[weekday(t)])
        out[todo[keep]] = t[keep]
        todo = todo[~keep]
    out[todo] = (on_sale[todo] + starts[todo]) // 2  # a sale too short to draw in
    return out


def quantities(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    """Tickets per booking (or hold), drawn by its event's category."""
    cdf = np.cumsum(QUANTITY_P, axis=1)[category]
    q = (rng.random(category.size)[:, None] > cdf).sum(axis=1) + 1
    return np.minimum(q, 6).astype(np.int64)


def _fit_quantities(rng: np.random.Generator, part: np.ndarray, target: int) -> None:
    """Change one event's quantities in place (1 to 6 tickets each) to add up to ``target``."""
    diff = target - int(part.sum())
    while diff:
        room = np.flatnonzero(part < 6) if diff > 0 else np.flatnonzero(part > 1)
        if room.size == 0:
            raise ValueError("these bookings cannot hold that many tickets")
        step = rng.choice(room, size=min(abs(diff), room.size), replace=False)
        part[step] += 1 if diff > 0 else -1
        diff -= int(np.sign(diff)) * step.size


def plan_bookings(rng: np.random.Generator, plan: Plan, ev: Events, open_: np.ndarray) -> Bookings:
    burst_p = np.where(ev.hit, 0.6, 0.15)
    cap = np.floor(ev.capacity / QUANTITY_MEAN[ev.category]).astype(np.int64)
    weight = _weights(ev)
    # Every event's whole sale at one level of demand; an on-sale event keeps what was
    # booked before now, and the past events share the rest at (about) the same level.
    # Hits sell every seat; the other events share the rest in proportion to their weight.
    whole = np.where(ev.hit, cap, 0)
    others = np.flatnonzero(~ev.hit)
    whole[others] = _water_fill(plan.bookings - int(whole.sum()), weight[others], cap[others])
    e_open = np.repeat(np.flatnonzero(open_), whole[open_])
    burst = rng.random(e_open.size) < burst_p[e_open]
    t_open = sale_times(rng, ev.on_sale[e_open], ev.starts[e_open], burst)
    keep = t_open < plan.now - 60
    e_open, t_open = e_open[keep], t_open[keep]
    past = np.flatnonzero(~open_)
    counts = np.where(ev.hit[past], cap[past], 0)
    rest = np.flatnonzero(~ev.hit[past])
    counts[rest] = _water_fill(
        plan.bookings - e_open.size - int(counts.sum()), weight[past][rest], cap[past][rest]
    )
    e_past = np.repeat(past, counts)
    burst = rng.random(e_past.size) < burst_p[e_past]
    t_past = sale_times(rng, ev.on_sale[e_past], ev.starts[e_past], burst)
    event = np.concatenate([e_past, e_open])
    created = np.concatenate([t_past, t_open])
    order = np.lexsort((created, event))
    event, created = event[order], created[order]
    per_event = np.bincount(event, minlength=ev.starts.size)
    quantity = quantities(rng, ev.category[event])
    # Sold out: the past events at their cap fill every seat; none sells more than it has.
    bounds = np.concatenate([[0], np.cumsum(per_event)])
    sums = np.bincount(event, weights=quantity, minlength=ev.starts.size)
    full = np.zeros(ev.starts.size, dtype=bool)
    full[past[counts == cap[past]]] = True
    fix = np.flatnonzero((full | (sums > ev.capacity)) & (per_event > 0))
    for e in fix.tolist():
        _fit_quantities(rng, quantity[bounds[e] : bounds[e + 1]], int(ev.capacity[e]))
    return Bookings(event=event, created=created, quantity=quantity)


# --- who ---------------------------------------------------------------------------------------

PERIOD = 30 * DAY  # customers come and go by 30-day periods


@dataclass(frozen=True, slots=True, eq=False)
class Customers:
    """Every customer who may book, the known ones last."""

    ids: np.ndarray  # (U, 16) uint8; the known ones last
    new: int  # how many of them are generated here (the first ``new``)
    joined: np.ndarray  # period of the first booking they may make
    left: np.ndarray  # period after which they book no more
    activity: np.ndarray
    taste: np.ndarray  # (U, categories): weight of each category
    start: int  # epoch seconds of period 0


def make_customers(
    rng: np.random.Generator,
    plan: Plan,
    start: int,
    created: np.ndarray,
    known: Sequence[KnownCustomer],
) -> Customers:
    n, k, c = plan.customers, len(known), len(CATEGORIES)
    # 15 % were customers from the start; the others join as bookings come (a customer
    # joins around the moment of a booking drawn at random), and 60 % leave again.
    joined_at = np.full(n, start, dtype=np.int64)
    later = rng.random(n) >= 0.15
    if created.size:
        drawn = rng.choice(created, size=int(later.sum()))
        joined_at[later] = np.maximum(drawn - rng.integers(0, 30 * DAY, drawn.size), start)
    stays = rng.exponential(420 * DAY, n).astype(np.int64)
    left_at = np.where(rng.random(n) < 0.4, np.iinfo(np.int64).max // 2, joined_at + stays)
    favourite = rng.choice(c, size=n, p=CATEGORY_SHARE)
    second_p = np.tile(CATEGORY_SHARE, (n, 1))
    second_p[np.arange(n), favourite] = 0
    second = (rng.random(n)[:, None] > np.cumsum(second_p / second_p.sum(1)[:, None], 1)).sum(1)
    second = np.minimum(second, c - 1)
    favourites = np.concatenate(
        [favourite, [CATEGORIES.index(x.categories[0]) for x in known]]
    ).astype(np.int64)
    seconds = np.concatenate([second, [CATEGORIES.index(x.categories[1]) for x in known]]).astype(
        np.int64
    )
    taste = np.full((n + k, c), 0.08 / c)
    taste[np.arange(n + k), favourites] += 0.72
    taste[np.arange(n + k), seconds] += 0.20
    return Customers(
        ids=np.concatenate(
            [uuids(rng, n), np.array([list(x.id) for x in known], np.uint8).reshape(k, 16)]
        ),
        new=n,
        joined=np.concatenate([(joined_at - start) // PERIOD, np.zeros(k, np.int64)]),
        left=np.concatenate(
            [(np.minimum(left_at, plan.now) - start) // PERIOD, np.full(k, 10**6, np.int64)]
        ),
        activity=np.concatenate([np.minimum(rng.lognormal(0.0, 0.75, n), 6.0), np.full(k, 2.5)]),
        taste=taste,
        start=start,
    )


def draw_customers(
    rng: np.random.Generator,
    cust: Customers,
    category: np.ndarray,
    created: np.ndarray,
    which: np.ndarray,
    out: np.ndarray,
) -> None:
    """Draw a customer for the bookings ``which`` into ``out``: one active in the booking's
    period, with weight activity x taste for the booking's category."""
    period = (created[which] - cust.start) // PERIOD
    group = period * len(CATEGORIES) + category[which]
    order = np.argsort(group, kind="stable")
    keys, first = np.unique(group[order], return_index=True)
    bounds = np.append(first, order.size)
    by_category = cust.activity[:, None] * cust.taste
    for key, lo, hi in zip(keys.tolist(), bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        p, c = divmod(key, len(CATEGORIES))
        cdf = np.cumsum(by_category[:, c] * ((cust.joined <= p) & (cust.left >= p)))
        if cdf[-1] <= 0:  # nobody active then: anyone
            cdf = np.cumsum(by_category[:, c])
        members = which[order[lo:hi]]
        picked = np.searchsorted(cdf, rng.random(members.size) * cdf[-1], side="right")
        out[members] = np.minimum(picked, cdf.size - 1)


def _duplicates(event: np.ndarray, user: np.ndarray, n_users: int) -> np.ndarray:
    """Positions whose (event, user) pair appeared at an earlier position."""
    key = event * n_users + user
    order = np.argsort(key, kind="stable")
    return np.sort(order[1:][key[order][1:] == key[order][:-1]])


def assign_customers(
    rng: np.random.Generator,
    cust: Customers,
    category: np.ndarray,
    created: np.ndarray,
    event: np.ndarray,
) -> np.ndarray:
    """A customer per booking (index into ``cust``), never two bookings of one event.

    A customer drawn twice for one event is replaced by the customer of a random booking of
    the same period and category: a draw from (nearly) the same weights at the cost of an
    index. Where that keeps landing on customers of the same event (a hit with most of the
    period's bookings), the customer is drawn again from the weights.
    """
    user = np.empty(created.size, dtype=np.int64)
    draw_customers(rng, cust, category, created, np.arange(created.size), user)
    group = ((created - cust.start) // PERIOD) * len(CATEGORIES) + category
    order = np.argsort(group, kind="stable")
    lo = np.searchsorted(group[order], group, side="left")
    size = np.searchsorted(group[order], group, side="right") - lo
    n_users = cust.ids.shape[0]
    for attempt in range(40):
        dup = _duplicates(event, user, n_users)
        if dup.size == 0:
            return user
        if attempt < 8:
            user[dup] = user[order[lo[dup] + (rng.random(dup.size) * size[dup]).astype(np.int64)]]
        else:  # the period's other customers are taken: draw from everyone active then
            draw_customers(rng, cust, category, created, dup, user)
    # What that cannot place (an event with nearly every active customer): anyone else.
    for i in _duplicates(event, user, n_users).tolist():
        free = np.setdiff1d(np.arange(n_users), user[event == event[i]])
        if free.size == 0:
            raise ValueError("more bookings of one event than customers")
        user[i] = rng.choice(free)
    return user
