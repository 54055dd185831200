"""SQL for the analytics rollups: counted incrementally, each row counted exactly once.

The rollups (``analytics_hourly``, ``analytics_user_months``, ``analytics_lead_days``, and
the tables derived from them, below) hold every booking made, cancellation and hold placed
stamped before the *watermark*, and none stamped at or after it. A step picks a *horizon*
H, adds what is stamped in [watermark, H) and moves the watermark to H, in one transaction:
a crash before the commit leaves nothing counted, after it everything counted and the
watermark past it; a second step starts where the first ended. No window overlaps another,
so adding is exact.

Why nothing is missed. The stamps (``bookings.created_at``, ``bookings.cancelled_at``,
``hold_log.created_at``) are ``now()`` of the writing transaction, its *start*, while the
row becomes visible only at its commit, which may be much later. So H is never later than
the start of any transaction still open in this database (``pg_stat_activity.xact_start``
is that same ``now()``), read before the step's snapshot is taken: every transaction that
could stamp a row before H has ended by then, so the step sees all of them, and a row
that commits later is stamped at or after H and falls in a later window. A margin
(``HORIZON_MARGIN``, a second) covers the moment between a transaction taking its start
time and publishing it, even for a process descheduled in between. Sessions whose details
this role may not see (another role's, without ``pg_read_all_stats``) could be open for
any time, so with one of them H is held at least ``BLIND_LAG`` back, and the step logs it.

Changes that are not new stamps: a cancellation sets ``cancelled_at`` once, and only the
hour of the cancellation changes; an event's ``starts_at`` may move, shifting all its lead
days, so each event's lead days remember the start they were counted against
(``analytics_lead_starts``) and a moved event's are counted again from its bookings.

Rows written with a stamp of their own in the past (history seeding, a generator) are
outside this contract: after writing them, call `rebuild`. It counts everything before
its horizon from scratch, in one transaction, with the same statements from the
beginning of time.

The derived tables (migration 006) are sums of those rollups at a coarser grain, for the
reports that read all history: ``analytics_hourly_totals`` (the hourly rows over every
event), ``analytics_daily`` (per event and UTC day), ``analytics_category_daily`` (per
category and UTC day), ``analytics_lead_totals`` (lead days over every event),
``analytics_users`` (per user: first month, bookings) and ``analytics_cohorts`` (per first
month and month: the users of that cohort with a booking in that month). Each is kept as an
invariant: equal to its sum of the rollups. A step adds to them in the same statement as to
the rollups, from the same per-window sums, so both move together or not at all, and a
rebuild empties and counts them with the rollups.

- Totals and days: a window's per-event hourly sums, summed again per hour and per event
  and day, added to the rows there. Sums of sums: exact.
- Category days (``analytics_category_daily``: per category spelling and day, the events
  with a day row and their sums). Categories are not stamps: an event's may be edited. As
  with a moved event's lead days, each event's days remember the category they were counted
  under (``analytics_event_categories``), and a step first moves every day of an edited
  event, as counted so far, from the old category's rows to the new one's (a row left with
  no event is deleted), then adds its window under the categories as they are in its
  snapshot. So the rows equal the event days grouped by the events' categories as of the
  last step; an edit shows in the forecasts from the next step on (as a moved start shows
  in the lead days).
- Lead totals: a moved event's lead days are deleted and counted again; the same statements
  take the deleted rows off the totals and add the recounted ones, and a total left at zero
  is deleted (a recount from scratch would have no row for it).
- Users and cohorts. A user's first month is the month of their earliest booking made. A
  window holds stamps at or after the watermark, so later than every stamp counted before:
  a user already counted keeps their first month, and a user new to the rollups takes the
  window's earliest month. Only bookings written with stamps in the past (the rebuild case)
  could move a first month earlier, and the rebuild counts from scratch. A cohort cell
  (c, m) counts the users with first month c and a user-month row for m; a step adds one
  for each (user, month) pair not in ``analytics_user_months`` before it, under the user's
  first month, fixed as argued: the pairs already there were counted once, when they first
  appeared, under the same first month. All this is one statement, whose sub-statements
  read one snapshot taken before any of them writes.

A step runs at REPEATABLE READ (one snapshot for all its statements) taken after it locks
the state table, so two steps at once (a leader change) take turns: the later one starts
from the watermark the earlier one left, and never counts a window twice.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace

from hub.db import Connection
from hub.db import fence as leader_fence
from hub.leader import Fence

# Covers the gap between a transaction taking its start time and publishing it.
HORIZON_MARGIN = dt.timedelta(seconds=1)
# How far behind the horizon stays while sessions this role cannot inspect are connected.
BLIND_LAG = dt.timedelta(minutes=10)
# What asyncpg sends as '-infinity': the start of a window from the beginning.
_BEGINNING = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class RollupStep:
    """What one step (or a rebuild) counted: rows stamped in [since, until)."""

    since: dt.datetime | None  # the watermark before (None: from the beginning)
    until: dt.datetime  # the watermark after (== since when nothing was done)
    bookings: int = 0
    cancellations: int = 0
    holds: int = 0
    moved_events: int = 0  # events whose lead days were counted again (their start moved)
    blind_sessions: int = 0  # sessions this role could not inspect (see BLIND_LAG)
    advanced: bool = False  # False: the horizon had not passed the watermark
    seconds: float = 0.0  # how long it took, horizon and transaction


# H: no later than the start of any transaction open in this database, minus the margin.
# A session this role may not inspect shows '<insufficient privilege>' as its query and
# nulls for its start and its backend type (so the type filter lets it through).
_HORIZON = """
SELECT least(now(), min(a.xact_start)) - $1::interval AS horizon,
       count(*) FILTER (WHERE a.query = '<insufficient privilege>') AS blind
  FROM pg_stat_activity a
 WHERE a.datname = current_database()
   AND coalesce(a.backend_type, 'client backend') = 'client backend'
   AND a.pid <> pg_backend_pid()
"""

# Self-exclusive, and no reader of the state waits for it.
_LOCK_STATE = "LOCK TABLE analytics_rollup_state IN EXCLUSIVE MODE"
_SET_WATERMARK = "UPDATE analytics_rollup_state SET watermark = $1, updated_at = now() WHERE id"

# The counters of an hourly or daily row, each added to (a.: the row, EXCLUDED.: the sums).
_ADD = """bookings = a.bookings + EXCLUDED.bookings,
           tickets = a.tickets + EXCLUDED.tickets,
           revenue_cents = a.revenue_cents + EXCLUDED.revenue_cents,
           cancellations = a.cancellations + EXCLUDED.cancellations,
           refunds_cents = a.refunds_cents + EXCLUDED.refunds_cents,
           holds = a.holds + EXCLUDED.holds"""

# Bookings made, cancellations and holds placed in [$1, $2), per event and UTC hour, added
# to the hourly rows, and the same sums to the hours over every event, to each event's UTC
# days and to each category's (one statement: all are added from one set of sums). A day
# new to an event (no analytics_daily row before this statement, whose sub-statements all
# read the snapshot from before it) is one more event in its category's day. The event's
# category is read from events: for an event counted before, the one it is counted under
# (the step moved edited ones first, in this snapshot); a new event's is remembered.
# Tickets are all the booking's tickets (also inactive ones: a cancelled booking still
# counts as made, with its tickets), joined row by row: the planner thinks a recent window
# holds one booking (its statistics end before it), and a per-booking count aggregated
# apart was then computed again for every booking.
_HOURLY = f"""
WITH made AS (
    SELECT b.event_id, date_trunc('hour', b.created_at, 'UTC') AS hour, b.total_cents,
           count(t.booking_id) AS tickets
      FROM bookings b LEFT JOIN tickets t ON t.booking_id = b.id
     WHERE b.created_at >= $1 AND b.created_at < $2
     GROUP BY b.id
), rows AS (
    SELECT event_id, hour, 1 AS bookings, tickets, total_cents AS revenue,
           0 AS cancellations, 0 AS refunds, 0 AS holds
      FROM made
    UNION ALL
    SELECT b.event_id, date_trunc('hour', b.cancelled_at, 'UTC'),
           0, 0, 0, 1, coalesce(b.refund_cents, 0), 0
      FROM bookings b
     WHERE b.cancelled_at >= $1 AND b.cancelled_at < $2
    UNION ALL
    SELECT h.event_id, date_trunc('hour', h.created_at, 'UTC'), 0, 0, 0, 0, 0, 1
      FROM hold_log h
     WHERE h.created_at >= $1 AND h.created_at < $2
), summed AS (
    SELECT event_id, hour, sum(bookings)::int AS bookings, sum(tickets)::int AS tickets,
           sum(revenue)::bigint AS revenue_cents, sum(cancellations)::int AS cancellations,
           sum(refunds)::bigint AS refunds_cents, sum(holds)::int AS holds
      FROM rows
     GROUP BY event_id, hour
), written AS (
    INSERT INTO analytics_hourly AS a (event_id, hour, bookings, tickets, revenue_cents,
                                       cancellations, refunds_cents, holds)
    SELECT * FROM summed
    ON CONFLICT (event_id, hour) DO UPDATE
       SET {_ADD}
), totals AS (
    INSERT INTO analytics_hourly_totals AS a (hour, bookings, tickets, revenue_cents,
                                              cancellations, refunds_cents, holds)
    SELECT hour, sum(bookings), sum(tickets), sum(revenue_cents), sum(cancellations),
           sum(refunds_cents), sum(holds)
      FROM summed
     GROUP BY hour
    ON CONFLICT (hour) DO UPDATE
       SET {_ADD}
), days AS (
    SELECT event_id, (hour AT TIME ZONE 'UTC')::date AS day, sum(bookings) AS bookings,
           sum(tickets) AS tickets, sum(revenue_cents) AS revenue_cents,
           sum(cancellations) AS cancellations, sum(refunds_cents) AS refunds_cents,
           sum(holds) AS holds
      FROM summed
     GROUP BY 1, 2
), daily AS (
    INSERT INTO analytics_daily AS a (event_id, day, bookings, tickets, revenue_cents,
                                      cancellations, refunds_cents, holds)
    SELECT * FROM days
    ON CONFLICT (event_id, day) DO UPDATE
       SET {_ADD}
), categories AS (
    INSERT INTO analytics_event_categories (event_id, category)
    SELECT DISTINCT d.event_id, e.category FROM days d JOIN events e ON e.id = d.event_id
    ON CONFLICT (event_id) DO NOTHING
), category_days AS (
    INSERT INTO analytics_category_daily AS a (category, day, events, bookings, revenue_cents)
    SELECT e.category, d.day,
           count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM analytics_daily o
                                               WHERE o.event_id = d.event_id AND o.day = d.day)),
           sum(d.bookings), sum(d.revenue_cents)
      FROM days d JOIN events e ON e.id = d.event_id
     GROUP BY 1, 2
    ON CONFLICT (category, day) DO UPDATE
       SET events = a.events + EXCLUDED.events,
           bookings = a.bookings + EXCLUDED.bookings,
           revenue_cents = a.revenue_cents + EXCLUDED.revenue_cents
)
SELECT coalesce(sum(bookings), 0)::int8 AS bookings,
       coalesce(sum(cancellations), 0)::int8 AS cancellations,
       coalesce(sum(holds), 0)::int8 AS holds
  FROM summed
"""

# Bookings made in [$1, $2) per user and UTC month, added to the user months, to each user's
# total (a user not seen before gets the window's first month as theirs), and to the cohort
# cells: one more user of cohort c active in month m for each (user, month) pair new to the
# user months, c the user's first month. Every sub-statement of one statement reads the same
# snapshot, from before it: analytics_users and analytics_user_months as the last step left
# them.
# The window's first month of each user comes with its rows (a window function over the
# grouped rows), not from joining two CTEs: the planner thinks a recent window holds one
# booking, and a nested loop over two CTEs of thousands of rows each took a second.
_USER_MONTHS = """
WITH made AS (
    SELECT b.user_id, date_trunc('month', b.created_at AT TIME ZONE 'UTC')::date AS month,
           count(*) AS bookings,
           min(date_trunc('month', b.created_at AT TIME ZONE 'UTC')::date)
               OVER (PARTITION BY b.user_id) AS first_month
      FROM bookings b
     WHERE b.created_at >= $1 AND b.created_at < $2
     GROUP BY 1, 2
), months AS (
    INSERT INTO analytics_user_months AS a (user_id, month, bookings)
    SELECT user_id, month, bookings FROM made
    ON CONFLICT (user_id, month) DO UPDATE SET bookings = a.bookings + EXCLUDED.bookings
), per_user AS (
    SELECT user_id, min(month) AS first_month, sum(bookings) AS bookings
      FROM made
     GROUP BY user_id
), users AS (
    INSERT INTO analytics_users AS a (user_id, first_month, bookings)
    SELECT user_id, first_month, bookings FROM per_user
    ON CONFLICT (user_id) DO UPDATE SET bookings = a.bookings + EXCLUDED.bookings
)
INSERT INTO analytics_cohorts AS a (first_month, month, users)
SELECT coalesce(u.first_month, m.first_month), m.month, count(*)
  FROM made m
  LEFT JOIN analytics_users u ON u.user_id = m.user_id
 WHERE NOT EXISTS (SELECT 1 FROM analytics_user_months o
                    WHERE o.user_id = m.user_id AND o.month = m.month)
 GROUP BY 1, 2
ON CONFLICT (first_month, month) DO UPDATE SET users = a.users + EXCLUDED.users
"""

# Events whose category was edited since their days were counted (the spelling differs),
# and moving all their days, as counted so far, from the category they were counted under to
# the one they have now; a category day left with no event goes (a count from scratch has
# no row for it).
_RECATEGORIZED = """
SELECT c.event_id
  FROM analytics_event_categories c JOIN events e ON e.id = c.event_id
 WHERE e.category <> c.category
"""
_UNCOUNT_CATEGORY_DAYS = """
UPDATE analytics_category_daily t
   SET events = t.events - g.events, bookings = t.bookings - g.bookings,
       revenue_cents = t.revenue_cents - g.revenue_cents
  FROM (SELECT c.category, d.day, count(*) AS events, sum(d.bookings) AS bookings,
               sum(d.revenue_cents) AS revenue_cents
          FROM analytics_daily d JOIN analytics_event_categories c ON c.event_id = d.event_id
         WHERE d.event_id = ANY($1::uuid[])
         GROUP BY 1, 2) g
 WHERE t.category = g.category AND t.day = g.day
"""
_RECOUNT_CATEGORY_DAYS = """
INSERT INTO analytics_category_daily AS a (category, day, events, bookings, revenue_cents)
SELECT e.category, d.day, count(*), sum(d.bookings), sum(d.revenue_cents)
  FROM analytics_daily d JOIN events e ON e.id = d.event_id
 WHERE d.event_id = ANY($1::uuid[])
 GROUP BY 1, 2
ON CONFLICT (category, day) DO UPDATE
   SET events = a.events + EXCLUDED.events,
       bookings = a.bookings + EXCLUDED.bookings,
       revenue_cents = a.revenue_cents + EXCLUDED.revenue_cents
"""
_DROP_EMPTY_CATEGORY_DAYS = "DELETE FROM analytics_category_daily WHERE events = 0"
_MOVE_CATEGORIES = """
UPDATE analytics_event_categories c SET category = e.category
  FROM events e
 WHERE e.id = c.event_id AND c.event_id = ANY($1::uuid[])
"""

# Whole days from booking to the event's start, floored, negatives (booked after the start)
# clipped to 0.
_LEAD = (
    "greatest(floor((extract(epoch FROM e.starts_at) - extract(epoch FROM b.created_at))"
    " / 86400), 0)::int"
)

# Events whose start moved since their lead days were counted: forget those lead days and
# count them again from every booking of theirs before the horizon.
_MOVED = """
SELECT s.event_id, e.starts_at
  FROM analytics_lead_starts s JOIN events e ON e.id = s.event_id
 WHERE e.starts_at <> s.starts_at
"""
# The lead totals over every event follow: the forgotten rows taken off, the recounted added,
# and a total that dropped to zero removed (no lead day then has a row, as in a recount).
_FORGET_LEAD = """
WITH gone AS (
    DELETE FROM analytics_lead_days WHERE event_id = ANY($1::uuid[])
    RETURNING lead_days, bookings
)
UPDATE analytics_lead_totals t SET bookings = t.bookings - g.bookings
  FROM (SELECT lead_days, sum(bookings) AS bookings FROM gone GROUP BY lead_days) g
 WHERE t.lead_days = g.lead_days
"""
_RECOUNT_LEAD = f"""
WITH counted AS (
    INSERT INTO analytics_lead_days (event_id, lead_days, bookings)
    SELECT b.event_id, {_LEAD}, count(*)
      FROM bookings b JOIN events e ON e.id = b.event_id
     WHERE b.event_id = ANY($1::uuid[]) AND b.created_at < $2
     GROUP BY 1, 2
    RETURNING lead_days, bookings
)
INSERT INTO analytics_lead_totals AS a (lead_days, bookings)
SELECT lead_days, sum(bookings) FROM counted GROUP BY lead_days
ON CONFLICT (lead_days) DO UPDATE SET bookings = a.bookings + EXCLUDED.bookings
"""
_DROP_EMPTY_LEAD = "DELETE FROM analytics_lead_totals WHERE bookings = 0"
_MOVE_STARTS = """
UPDATE analytics_lead_starts s SET starts_at = e.starts_at
  FROM events e
 WHERE e.id = s.event_id AND s.event_id = ANY($1::uuid[])
"""
# Bookings made in [$1, $2) added to their events' lead days and to the lead totals (the
# moved events $3 were counted whole above), and the start they were counted against
# remembered.
_LEAD_DAYS = f"""
WITH made AS (
    SELECT b.event_id, {_LEAD} AS lead_days, e.starts_at
      FROM bookings b JOIN events e ON e.id = b.event_id
     WHERE b.created_at >= $1 AND b.created_at < $2 AND b.event_id <> ALL($3::uuid[])
), starts AS (
    INSERT INTO analytics_lead_starts (event_id, starts_at)
    SELECT DISTINCT event_id, starts_at FROM made
    ON CONFLICT (event_id) DO NOTHING
), totals AS (
    INSERT INTO analytics_lead_totals AS a (lead_days, bookings)
    SELECT lead_days, count(*) FROM made GROUP BY lead_days
    ON CONFLICT (lead_days) DO UPDATE SET bookings = a.bookings + EXCLUDED.bookings
)
INSERT INTO analytics_lead_days AS a (event_id, lead_days, bookings)
SELECT event_id, lead_days, count(*) FROM made GROUP BY 1, 2
ON CONFLICT (event_id, lead_days) DO UPDATE SET bookings = a.bookings + EXCLUDED.bookings
"""

# JIT compilation starts when the planner expects many rows (a first step, a catch-up after
# downtime, a rebuild): some 70 ms a statement, measured, for no gain on this work.
_STEP_SETTINGS = "SET LOCAL jit = off"
# A rebuild groups every row at once: its hash aggregates fit in memory instead of spilling.
_REBUILD_SETTINGS = "SET LOCAL jit = off; SET LOCAL work_mem = '128MB'"

_TRUNCATE = (
    "TRUNCATE analytics_hourly, analytics_user_months, analytics_lead_days, analytics_lead_starts,"
    " analytics_hourly_totals, analytics_daily, analytics_category_daily,"
    " analytics_event_categories, analytics_users, analytics_cohorts, analytics_lead_totals"
)


async def horizon(con: Connection) -> tuple[dt.datetime, int]:
    """The latest instant before which every stamp is committed, and how many sessions
    could not be inspected. Run it outside the step's transaction, before it."""
    row = await con.fetchrow(_HORIZON, HORIZON_MARGIN)
    assert row is not None
    until: dt.datetime = row["horizon"]
    blind = int(row["blind"])
    if blind:
        now: dt.datetime = await con.fetchval("SELECT now()")
        until = min(until, now - BLIND_LAG)
    return until, blind


async def watermark(con: Connection) -> dt.datetime | None:
    """How far the rollups have counted (None before the first step)."""
    value: dt.datetime | None = await con.fetchval("SELECT watermark FROM analytics_rollup_state")
    return value


async def step(con: Connection, fence: Fence | None = None) -> RollupStep:
    """Count what was stamped since the watermark, up to the horizon, and move the
    watermark there: one transaction. Takes a connection outside any transaction.

    Args:
        fence: the leader's fencing token, checked in the transaction (`hub.db.fence.hold`:
            raises ``StaleLeader`` once a newer leader has written); None for a step run
            by an operator.

    Returns:
        What was counted; ``advanced`` is False when the horizon had not passed the
        watermark (another step got there first, or too little time went by).
    """
    started = time.perf_counter()
    until, blind = await horizon(con)
    async with con.transaction(isolation="repeatable_read"):
        await con.execute(_STEP_SETTINGS)
        if fence is not None:
            await leader_fence.hold(con, fence)
        since = await _lock_state(con)
        if since is not None and until <= since:
            done = RollupStep(since, since, blind_sessions=blind)
        else:
            done = await _count(con, since, until, blind)
    return replace(done, seconds=time.perf_counter() - started)


async def rebuild(con: Connection) -> RollupStep:
    """Empty the rollups and count everything before the horizon again, in one transaction
    (readers of the rollups wait for it). Takes a connection outside any transaction."""
    started = time.perf_counter()
    until, blind = await horizon(con)
    async with con.transaction(isolation="repeatable_read"):
        await con.execute(_REBUILD_SETTINGS)
        await _lock_state(con)
        await con.execute(_TRUNCATE)
        done = await _count(con, None, until, blind)
    return replace(done, seconds=time.perf_counter() - started)


async def _lock_state(con: Connection) -> dt.datetime | None:
    """Wait for any other step or rebuild to end, then read the watermark. The lock comes
    before the transaction's snapshot (LOCK takes none), so the snapshot sees what the
    step before wrote, and the steps' windows follow one another."""
    await con.execute(_LOCK_STATE)
    return await watermark(con)


async def _count(
    con: Connection, since: dt.datetime | None, until: dt.datetime, blind: int
) -> RollupStep:
    start = _BEGINNING if since is None else since
    # Before this window's days are added: the days moved are those counted so far.
    recategorized = [row["event_id"] for row in await con.fetch(_RECATEGORIZED)]
    if recategorized:
        await con.execute(_UNCOUNT_CATEGORY_DAYS, recategorized)
        await con.execute(_RECOUNT_CATEGORY_DAYS, recategorized)
        await con.execute(_DROP_EMPTY_CATEGORY_DAYS)
        await con.execute(_MOVE_CATEGORIES, recategorized)
    counted = await con.fetchrow(_HOURLY, start, until)
    assert counted is not None
    await con.execute(_USER_MONTHS, start, until)
    moved = [row["event_id"] for row in await con.fetch(_MOVED)]
    if moved:
        await con.execute(_FORGET_LEAD, moved)
        await con.execute(_RECOUNT_LEAD, moved, until)
        await con.execute(_DROP_EMPTY_LEAD)
        await con.execute(_MOVE_STARTS, moved)
    await con.execute(_LEAD_DAYS, start, until, moved)
    await con.execute(_SET_WATERMARK, until)
    return RollupStep(
        since,
        until,
        bookings=int(counted["bookings"]),
        cancellations=int(counted["cancellations"]),
        holds=int(counted["holds"]),
        moved_events=len(moved),
        blind_sessions=blind,
        advanced=True,
    )
