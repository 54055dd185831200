"""``python -m loadtest surge``: a booking surge against a hub, its audit, and the ceiling.

The run, in order:

1. (``--start-hub``) start a hub: ``evently serve --workers N`` on a free port, on private
   embedded PostgreSQL + Redis in a temp folder (default), or on the local servers with a
   fresh database and key prefix (``--hub-servers local``); rate limits off. Then create a
   venue and an event of ``--seats`` seats through the admin API.
2. Start ``--processes`` client processes (``loadtest.buyers``); each signs up its share of
   the buyers (timed and reported: Argon2 makes this the slow part) and opens its share of
   the watchers.
3. The surge, for ``--duration`` seconds or until the event is sold out: a progress line
   every second; every request and every seat change is recorded.
   With ``--waiting-room``, the admin first turns the event's waiting room on, opening
   ``--join-window`` seconds after the start: buyers join its queue at random moments
   before the opening (a ``--late-share`` after it), wait for their turn on the event's
   WebSocket, then hold and confirm with their admission token (``loadtest.waiters``).
   ``--compare`` then runs the same surge without a room on a fresh event of the same
   seats, with the same buyers, for the ratio of the sell-out times.
4. The audit (``loadtest.audit``): API seat map vs PostgreSQL vs what buyers were told.
5. The ceiling (``loadtest.ceiling``) under the same uvicorn options and worker count, hit
   by the same client processes and buyers (same connections, same tokens) for the same
   duration, back to back without think time.
6. The report (``loadtest.report``): printed, and as JSON / self-contained HTML.

Everything it starts it stops, by PID, and the exit status is non-zero when the audit fails.
Starting things is ``loadtest.launch``; the client processes and phases ``loadtest.phases``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtest import audit, report, rooms
from loadtest.buyers import ClientPlan
from loadtest.launch import (
    LOCAL_PG,
    StartedHub,
    clear_ceiling,
    start_ceiling,
    start_hub,
    stop_process,
)
from loadtest.phases import Clients, Progress, plans_for, run_phase, seeded


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the hub to load (http://127.0.0.1:PORT); or --start-hub")
    p.add_argument(
        "--event", help="an existing event's id; without it, one of --seats seats is made"
    )
    p.add_argument("--watchers", type=int, default=100, help="seat-map watchers (WebSockets)")
    p.add_argument("--buyers", type=int, default=100, help="buyers, each with an account")
    p.add_argument(
        "--duration",
        type=float,
        default=30.0,
        help="seconds of the surge (with --waiting-room: from the opening, at most) and ceiling",
    )
    p.add_argument(
        "--profile",
        choices=("flat", "ramp", "peak"),
        default="flat",
        help="how buyers arrive: all at once, ramping up, or a peak in the middle",
    )
    p.add_argument(
        "--mix",
        default="chosen=0.5,best=0.3,group=0.2",
        help="shares of buyers who pick seats, take the best available, or hold for a group",
    )
    p.add_argument(
        "--cancel-rate", type=float, default=0.05, help="share of bookings cancelled later"
    )
    p.add_argument(
        "--lapse-rate", type=float, default=0.05, help="share of holds abandoned (left to expire)"
    )
    p.add_argument(
        "--think-ms", type=float, default=200.0, help="a buyer's pause between steps (mean)"
    )
    p.add_argument("--processes", type=int, default=2, help="client processes")
    p.add_argument("--probes", type=int, default=20, help="watchers that time fan-out")
    p.add_argument("--json", dest="json_out", help="write the results as JSON here")
    p.add_argument("--html", dest="html_out", help="write the HTML report here")
    p.add_argument("--start-hub", action="store_true", help="start (and stop) a hub")
    p.add_argument("--workers", type=int, default=2, help="hub (and ceiling) workers")
    p.add_argument(
        "--hub-servers",
        choices=("embedded", "local"),
        default="embedded",
        help="a started hub's PostgreSQL and Redis: private embedded ones, or the local ones",
    )
    p.add_argument("--pg-url", default=LOCAL_PG, help="with --hub-servers local")
    p.add_argument("--redis-url", default=None, help="Redis for the ceiling / local hub")
    p.add_argument("--secret-key", default=None, help="the hub's key (ceiling, given --url)")
    p.add_argument("--redis-prefix", default="evently:", help="the hub's prefix (given --url)")
    p.add_argument("--database-url", help="the hub's PostgreSQL, for the audit (given --url)")
    p.add_argument("--admin-email", default=None, help="admin to create events (given --url)")
    p.add_argument("--admin-password", default=None, help="that admin's password")
    p.add_argument("--seats", type=int, default=5000, help="seats of the surge's event")
    p.add_argument(
        "--max-per-user", type=int, default=10, help="the event's ticket limit per buyer"
    )
    p.add_argument("--hold-ttl", type=int, default=20, help="hold lifetime of a started hub")
    p.add_argument(
        "--no-ceiling",
        action="store_true",
        help="skip the back-to-back comparison (the hub's holds, then the bare endpoint's)",
    )
    p.add_argument(
        "--compare-duration",
        type=float,
        default=10.0,
        help="seconds of each back-to-back phase (the hub's, then the ceiling's)",
    )
    p.add_argument(
        "--throughput-seats",
        type=int,
        default=50_000,
        help="seats of the event for the hub's back-to-back hold phase (set beside the ceiling)",
    )
    p.add_argument("--run-on", action="store_true", help="do not stop early when sold out")
    p.add_argument(
        "--waiting-room",
        action="store_true",
        help="buyers go through the event's waiting room: join its queue, wait to be "
        "admitted, then hold and confirm with the admission token",
    )
    p.add_argument(
        "--join-window",
        type=float,
        default=10.0,
        help="with --waiting-room: seconds before the opening in which buyers join",
    )
    p.add_argument(
        "--late-share",
        type=float,
        default=0.1,
        help="with --waiting-room: share of buyers joining after the opening (spread over "
        "as long again as the join window)",
    )
    p.add_argument(
        "--admit-per-second",
        type=float,
        default=None,
        help="with --waiting-room: a fixed admission rate; none: adaptive",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="with --waiting-room: then the same surge without a room (fresh event, same "
        "seats and buyers), and the ratio of the sell-out times",
    )


def venue_sections(seats: int) -> list[dict[str, Any]]:
    """Four sections of equal rows when ``seats`` is a multiple of 100, else one section;
    rows of 25 seats, wider when a section would need more than 200 rows."""
    names = ["Floor", "Lower", "Upper", "Balcony"]
    prices = ["150.00", "110.00", "80.00", "45.00"]
    if seats % 100 == 0:
        per_section, width = seats // 4, 25
        while per_section // width > 200 or per_section % width:
            width += 25
        return [
            {"name": n, "rows": per_section // width, "seats_per_row": width, "base_price": p}
            for n, p in zip(names, prices, strict=True)
        ]
    rows = -(-seats // 25)
    return [{"name": "Floor", "rows": rows, "seats_per_row": 25, "base_price": "100.00"}]


def create_event(url: str, email: str, password: str, seats: int, max_per_user: int) -> str:
    """A venue and an on-sale event through the admin API; returns the event id."""
    with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as client:
        login = client.post("/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        venue = client.post(
            "/venues",
            json={
                "name": f"Surge arena {seats}",
                "city": "Lisbon",
                "sections": venue_sections(seats),
            },
            headers=headers,
        )
        venue.raise_for_status()
        starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
        event = client.post(
            "/events",
            json={
                "name": f"Surge {uuid.uuid4().hex[:6]}",
                "category": "concert",
                "venue_id": venue.json()["id"],
                "starts_at": starts.isoformat(),
                "max_tickets_per_user": max_per_user,
            },
            headers=headers,
        )
        event.raise_for_status()
        return str(event.json()["id"])


@dataclass(frozen=True, slots=True)
class Target:
    """The hub under load and what the run may use of it (None: not given)."""

    url: str
    database_url: str | None
    redis_url: str | None
    secret: str | None
    prefix: str
    admin: tuple[str | None, str | None]

    @classmethod
    def of_hub(cls, hub: StartedHub) -> Target:
        return cls(
            hub.url,
            hub.database_url,
            hub.redis_url,
            hub.secret_key,
            hub.redis_prefix,
            (hub.admin_email, hub.admin_password),
        )

    @classmethod
    def of_args(cls, args: argparse.Namespace) -> Target:
        return cls(
            args.url.rstrip("/"),
            args.database_url,
            args.redis_url,
            args.secret_key,
            args.redis_prefix,
            (args.admin_email, args.admin_password),
        )


@dataclass(slots=True)
class Comparison:
    """The back-to-back phases: the hub's holds on a large event, then the ceiling's."""

    throughput: dict[int, Any] | None = None
    throughput_rows: list[dict[str, Any]] = field(default_factory=list)
    ceiling: dict[int, Any] | None = None
    ceiling_rows: list[dict[str, Any]] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    """The whole surge run; returns the exit status (1 when the audit fails)."""
    if not args.start_hub and not args.url:
        print("surge: give --url or --start-hub", file=sys.stderr)
        return 2
    if args.compare and not args.waiting_room:
        print("surge: --compare compares with --waiting-room", file=sys.stderr)
        return 2
    if not 0.0 <= args.late_share <= 1.0 or args.join_window <= 0:
        print("surge: --late-share within 0-1, --join-window above 0", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    hub: StartedHub | None = None
    clients: Clients | None = None
    try:
        if args.start_hub:
            print(
                f"starting a hub ({args.workers} workers, {args.hub_servers} servers)...",
                flush=True,
            )
            hub = start_hub(args)
            target = Target.of_hub(hub)
        else:
            target = Target.of_args(args)
        url, admin = target.url, target.admin
        event_id = args.event
        if event_id is None:
            if not (admin[0] and admin[1]):
                print("surge: --event, or admin credentials to create one", file=sys.stderr)
                return 2
            event_id = create_event(url, admin[0], admin[1], args.seats, args.max_per_user)
        seats = len(httpx.get(f"{url}/api/v1/events/{event_id}/seats", timeout=30).json()["seats"])
        print(f"event {event_id}: {seats} seats", flush=True)
        plans = plans_for(args, url, event_id, uuid.uuid4().hex[:10])
        started = time.monotonic()
        if target.database_url and target.secret:
            plans = asyncio.run(seeded(plans, target.database_url, target.secret))
            print(f"seeded {args.buyers} buyers in {time.monotonic() - started:.1f}s", flush=True)
        if args.waiting_room:
            plans = [
                dataclasses.replace(p, join_window=args.join_window, late_share=args.late_share)
                for p in plans
            ]
        clients = Clients(plans)
        print(f"signing up {args.buyers} buyers, opening {args.watchers} watchers...", flush=True)
        ready = clients.gather("ready", 900)
        setup_s = time.monotonic() - started
        print(f"ready in {setup_s:.1f}s", flush=True)
        hub_pids = hub.worker_pids() if hub else []
        progress = Progress(len(plans), hub_pids, seats)
        if args.waiting_room:
            surge = _room_phase(args, target, clients, progress, event_id)
        else:
            surge = run_phase(clients, progress, "surge", url, args.duration, not args.run_on)
        surge_rows = progress.rows
        result_audit = asyncio.run(_audit(url, target.database_url, event_id, _seen(surge)))
        print(result_audit.line(), flush=True)
        without: tuple[dict[int, Any], list[dict[str, Any]], int] | None = None
        without_audit: audit.Audit | None = None
        if args.compare:
            clients.close()
            clients = None
            clients, without, without_audit = _without_room(args, target, plans, hub_pids)
        compared = _compare(args, target, clients, progress)
        meta = {
            "command": "python -m loadtest " + " ".join(sys.argv[1:]),
            "args": {k: v for k, v in vars(args).items() if k not in ("secret_key", "func")},
            "event_id": event_id,
            "seats": seats,
            "hub_url": url,
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "setup_s": setup_s,
            "ready": ready,
            "sold_out_at_s": progress.sold_out_at if surge_rows else None,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "join_window_s": args.join_window if args.waiting_room else None,
            "without_room_audit": without_audit.as_json() if without_audit else None,
        }
        results = report.build(
            meta,
            surge,
            surge_rows,
            compared.ceiling,
            compared.ceiling_rows,
            result_audit,
            throughput=compared.throughput,
            throughput_rows=compared.throughput_rows,
            without_room=without,
        )
        print(report.summary(results), flush=True)
        if args.json_out:
            report.write_json(results, args.json_out)
        if args.html_out:
            report.write_html(results, args.html_out)
        audits_ok = result_audit.ok and (without_audit is None or without_audit.ok)
        return 0 if audits_ok else 1
    finally:
        if clients is not None:
            clients.close()
        if hub is not None:
            hub.stop()


def _seen(results: dict[int, Any]) -> list[audit.SeenBooking]:
    return [
        audit.SeenBooking(bid, tuple(seat_ids), cancelled)
        for result in results.values()
        for bid, (seat_ids, cancelled) in result["bookings"].items()
    ]


# After the sell-out, waiters still queued get ``sold_out`` within an admission tick or
# two: the room's phase stops this long after the sell-out, not at once.
ROOM_GRACE_SECONDS = 5.0


def _room_phase(
    args: argparse.Namespace, target: Target, clients: Clients, progress: Progress, event_id: str
) -> dict[int, Any]:
    """The admin turns the event's waiting room on, opening ``--join-window`` seconds after
    the phase starts; then the buyers' phase (``loadtest.waiters``), for ``--duration``
    seconds after the opening at most."""
    email, password = target.admin
    if not (email and password):
        raise SystemExit("surge: --waiting-room needs the admin (--admin-email/--admin-password)")
    start_at = time.monotonic() + 2.0
    opens_at = dt.datetime.now(dt.UTC) + dt.timedelta(
        seconds=start_at + args.join_window - time.monotonic()
    )
    with httpx.Client(base_url=f"{target.url}/api/v1", timeout=60) as client:
        admin = rooms.admin_headers(client, email, password)
        room = rooms.turn_on(client, admin, event_id, opens_at, args.admit_per_second)
    rate = room["admit_per_second"] or "adaptive"
    print(
        f"waiting room on: opens at {room['opens_at']} ({args.join_window:.0f}s after the "
        f"start), admissions {rate}",
        flush=True,
    )
    return run_phase(
        clients,
        progress,
        "room",
        target.url,
        args.join_window + args.duration,
        not args.run_on,
        start_at=start_at,
        grace=ROOM_GRACE_SECONDS,
    )


def _without_room(
    args: argparse.Namespace, target: Target, plans: list[ClientPlan], hub_pids: list[int]
) -> tuple[Clients, tuple[dict[int, Any], list[dict[str, Any]], int], audit.Audit]:
    """The same surge on a fresh event of the same seats without a room, by the same buyers
    (fresh client processes, the same accounts): its results, rows, seats, and audit."""
    email, password = target.admin
    assert email and password  # the room's phase needed them already
    event_id = create_event(target.url, email, password, args.seats, args.max_per_user)
    seats = len(
        httpx.get(f"{target.url}/api/v1/events/{event_id}/seats", timeout=30).json()["seats"]
    )
    print(f"without the room: event {event_id}, {seats} seats, the same buyers...", flush=True)
    again = [
        dataclasses.replace(p, event_id=event_id, join_window=0.0, late_share=0.0) for p in plans
    ]
    clients = Clients(again)
    clients.gather("ready", 900)
    progress = Progress(len(again), hub_pids, seats)
    results = run_phase(clients, progress, "surge", target.url, args.duration, not args.run_on)
    checked = asyncio.run(_audit(target.url, target.database_url, event_id, _seen(results)))
    print(f"without the room: {checked.line()}", flush=True)
    return clients, (results, progress.rows, seats), checked


def _compare(
    args: argparse.Namespace, target: Target, clients: Clients, progress: Progress
) -> Comparison:
    """The hub's back-to-back holds, then the ceiling's, with the same clients and tokens."""
    compared = Comparison()
    if args.no_ceiling:
        return compared
    email, password = target.admin
    if email and password:
        # Like for like with the ceiling: the same clients, back-to-back holds, on an event
        # too large to sell out in the run, so every hold does the hub's full work.
        print(f"throughput: hub holds on a {args.throughput_seats}-seat event...", flush=True)
        big = create_event(target.url, email, password, args.throughput_seats, 1_000)
        progress.rows = []
        compared.throughput = run_phase(
            clients, progress, "throughput", target.url, args.compare_duration, False, event_id=big
        )
        compared.throughput_rows = progress.rows
    if not (target.redis_url and target.secret):
        print("ceiling: skipped (needs --redis-url and --secret-key with --url)", flush=True)
        return compared
    print(f"ceiling: the bare hold endpoint, {args.workers} workers...", flush=True)
    proc: subprocess.Popen[Any] | None = None
    try:
        proc, ceiling_url = start_ceiling(
            args.workers, target.redis_url, target.secret, target.prefix
        )
        progress.rows = []
        compared.ceiling = run_phase(
            clients, progress, "ceiling", ceiling_url, args.compare_duration, False
        )
        compared.ceiling_rows = progress.rows
    finally:
        if proc is not None:
            stop_process(proc)
    asyncio.run(clear_ceiling(target.redis_url, target.prefix))
    return compared


async def _audit(
    url: str, database_url: str | None, event_id: str, seen: list[audit.SeenBooking]
) -> audit.Audit:
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.get(f"{url}/api/v1/events/{event_id}/seats")
        response.raise_for_status()
        api = audit.api_statuses(response.json())
    if database_url is None:
        return audit.Audit.skip("no database given", audit.api_figures(api))
    pg = await audit.load_pg(database_url, event_id)
    return audit.check(api, pg, seen)
