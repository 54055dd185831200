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
4. The audit (``loadtest.audit``): API seat map vs PostgreSQL vs what buyers were told.
5. The ceiling (``loadtest.ceiling``) under the same uvicorn options and worker count, hit
   by the same client processes and buyers (same connections, same tokens) for the same
   duration, back to back without think time.
6. The report (``loadtest.report``): printed, and as JSON / self-contained HTML.

Everything it starts it stops, by PID, and the exit status is non-zero when the audit fails.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import multiprocessing as mp
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from loadtest import accounts, audit, report
from loadtest.buyers import PASSWORD, ClientPlan, buyer_email, client_main

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the hub to load (http://127.0.0.1:PORT); or --start-hub")
    p.add_argument("--event", help="event id (default: create one of --seats seats)")
    p.add_argument("--watchers", type=int, default=100)
    p.add_argument("--buyers", type=int, default=100)
    p.add_argument("--duration", type=float, default=30.0, help="seconds (surge and ceiling)")
    p.add_argument("--profile", choices=("flat", "ramp", "peak"), default="flat")
    p.add_argument("--mix", default="chosen=0.5,best=0.3,group=0.2")
    p.add_argument("--cancel-rate", type=float, default=0.05)
    p.add_argument("--lapse-rate", type=float, default=0.05)
    p.add_argument("--think-ms", type=float, default=200.0)
    p.add_argument("--processes", type=int, default=2, help="client processes")
    p.add_argument("--probes", type=int, default=20, help="watchers that time fan-out")
    p.add_argument("--json", dest="json_out", help="write the results as JSON here")
    p.add_argument("--html", dest="html_out", help="write the HTML report here")
    p.add_argument("--start-hub", action="store_true", help="start (and stop) a hub")
    p.add_argument("--workers", type=int, default=2, help="hub (and ceiling) workers")
    p.add_argument("--hub-servers", choices=("embedded", "local"), default="embedded")
    p.add_argument("--pg-url", default=LOCAL_PG, help="with --hub-servers local")
    p.add_argument("--redis-url", default=None, help="Redis for the ceiling / local hub")
    p.add_argument("--secret-key", default=None, help="the hub's key (ceiling, given --url)")
    p.add_argument("--redis-prefix", default="evently:", help="the hub's prefix (given --url)")
    p.add_argument("--database-url", help="the hub's PostgreSQL, for the audit (given --url)")
    p.add_argument("--admin-email", default=None)
    p.add_argument("--admin-password", default=None)
    p.add_argument("--seats", type=int, default=5000)
    p.add_argument("--max-per-user", type=int, default=10)
    p.add_argument("--hold-ttl", type=int, default=20, help="hold lifetime of a started hub")
    p.add_argument("--no-ceiling", action="store_true")
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


def parse_mix(text: str) -> tuple[float, float, float]:
    """``chosen=0.5,best=0.3,group=0.2`` -> normalised (chosen, best, group)."""
    parts = dict.fromkeys(("chosen", "best", "group"), 0.0)
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name.strip() not in parts:
            raise argparse.ArgumentTypeError(f"unknown mix part {name!r}")
        parts[name.strip()] = float(value)
    total = sum(parts.values())
    if total <= 0:
        raise argparse.ArgumentTypeError("the mix must not be all zero")
    return (parts["chosen"] / total, parts["best"] / total, parts["group"] / total)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(
    url: str, accept: tuple[int, ...], timeout: float, proc: subprocess.Popen[Any]
) -> None:
    """Poll ``url`` until it answers one of ``accept``; fail if ``proc`` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.post(url, timeout=2).status_code in accept:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s")


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process, then SIGKILL it and any child it left, by PID."""
    if proc.poll() is not None:
        return
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    _gone, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        child.kill()


@dataclass
class StartedHub:
    """A hub this run started: its URL, servers, credentials, and what to clean up."""

    url: str
    database_url: str
    redis_url: str
    secret_key: str
    redis_prefix: str
    admin_email: str
    admin_password: str
    proc: subprocess.Popen[Any]
    home: Path
    cleanup: list[Any] = field(default_factory=list)

    def worker_pids(self) -> list[int]:
        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        stop_process(self.proc)
        for step in reversed(self.cleanup):
            try:
                step()
            except Exception as exc:  # cleanup must go on
                print(f"surge: cleanup step failed: {exc!r}", file=sys.stderr)
        shutil.rmtree(self.home, ignore_errors=True)


def start_hub(args: argparse.Namespace) -> StartedHub:
    """Start ``evently serve --workers N`` on fresh servers; returns when it is ready."""
    token = uuid.uuid4().hex[:10]
    home = Path(tempfile.mkdtemp(prefix="evently-surge-"))
    cleanup: list[Any] = []
    prefix = f"evently:surge{token}:"
    try:
        if args.hub_servers == "embedded":
            from hub.embedded import EmbeddedServers

            servers = EmbeddedServers(home / "servers")
            database_url, redis_url = servers.start()
            cleanup.append(servers.stop)
        else:
            redis_url = args.redis_url or LOCAL_REDIS
            database_url = asyncio.run(_fresh_database(args.pg_url, f"evently_surge_{token}"))
            cleanup.append(lambda: asyncio.run(_drop_database(args.pg_url, database_url)))
            cleanup.append(lambda: asyncio.run(_drop_keys(redis_url, prefix)))
    except BaseException:
        for step in reversed(cleanup):
            step()
        raise
    port = free_port()
    secret = secrets.token_urlsafe(48)
    admin_email, admin_password = f"surge-admin-{token}@example.com", secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "EVENTLY_HOME": str(home / "hub"),
        "EVENTLY_DATABASE_URL": database_url,
        "EVENTLY_REDIS_URL": redis_url,
        "EVENTLY_REDIS_PREFIX": prefix,
        "EVENTLY_SECRET_KEY": secret,
        "EVENTLY_ADMIN_EMAIL": admin_email,
        "EVENTLY_ADMIN_PASSWORD": admin_password,
        "EVENTLY_RATE_LIMITS": "off",
        "EVENTLY_HOLD_TTL_SECONDS": str(args.hold_ttl),
        "EVENTLY_WS_MAX_PER_IP": str(args.watchers + args.processes + 100),
        "EVENTLY_LOG_FORMAT": "json",
        "EVENTLY_LOG_LEVEL": "warning",
    }
    log = open(home / "hub.log", "wb")  # kept open for the child's lifetime
    cmd = [sys.executable, "-m", "hub.cli", "serve", "--workers", str(args.workers)]
    cmd += ["--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    hub = StartedHub(
        f"http://127.0.0.1:{port}",
        database_url,
        redis_url,
        secret,
        prefix,
        admin_email,
        admin_password,
        proc,
        home,
        cleanup,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the hub exited: {(home / 'hub.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{hub.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        else:
            raise RuntimeError("the hub did not get ready")
        # Wait for every worker to answer: readiness is per process.
        time.sleep(0.5)
    except BaseException:
        hub.stop()
        raise
    return hub


async def _fresh_database(admin_url: str, name: str) -> str:
    import asyncpg

    from hub.db.migrate import migrate

    con = await asyncpg.connect(admin_url)
    try:
        await con.execute(f'CREATE DATABASE "{name}"')
    finally:
        await con.close()
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    await migrate(url)
    return url


async def _drop_database(admin_url: str, url: str) -> None:
    import asyncpg

    con = await asyncpg.connect(admin_url)
    try:
        await con.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await con.close()


async def _drop_keys(redis_url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


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


class Clients:
    """The client processes and the two queues per process."""

    def __init__(self, plans: list[ClientPlan]) -> None:
        ctx = mp.get_context("spawn")
        self.outbox: mp.Queue[Any] = ctx.Queue()
        self.inboxes: list[mp.Queue[Any]] = [ctx.Queue() for _ in plans]
        self.procs = [
            ctx.Process(target=client_main, args=(plan, inbox, self.outbox), daemon=True)
            for plan, inbox in zip(plans, self.inboxes, strict=True)
        ]
        for proc in self.procs:
            proc.start()

    def send(self, *command: Any) -> None:
        for inbox in self.inboxes:
            inbox.put(command)

    def gather(self, kind: str, timeout: float, on_tick: Any = None) -> dict[int, Any]:
        """Messages of ``kind`` from every process (ticks go to ``on_tick`` meanwhile)."""
        got: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(self.procs):
            try:
                message = self.outbox.get(timeout=0.2)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"client processes: no {kind} after {timeout:.0f}s"
                    ) from None
                dead = [p.pid for p in self.procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"client processes {dead} died") from None
                continue
            if message[0] == "failed":
                raise RuntimeError(f"client process {message[1]} failed:\n{message[2]}")
            if message[0] == "tick":
                if on_tick is not None:
                    on_tick(message[1], message[2])
            elif message[0] == kind:
                got[message[1]] = message[2]
        return got

    def close(self) -> None:
        self.send("quit")
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


class Progress:
    """Folds the per-process ticks into one line a second, and keeps the series."""

    def __init__(self, processes: int, hub_pids: list[int], seats: int) -> None:
        self.processes = processes
        self.seats = seats
        self.pending: dict[int, dict[int, dict[str, Any]]] = {}
        self.rows: list[dict[str, Any]] = []
        self.hub = [psutil.Process(pid) for pid in hub_pids if psutil.pid_exists(pid)]
        for proc in self.hub:
            proc.cpu_percent(None)
        self.sold_out = False
        self.sold_out_at: float | None = None

    def hub_cpu(self) -> float | None:
        if not self.hub:
            return None
        total = 0.0
        for proc in self.hub:
            try:
                total += proc.cpu_percent(None)
            except psutil.NoSuchProcess:
                pass
        return total

    def tick(self, index: int, figures: dict[str, Any]) -> None:
        second = int(figures["second"])
        self.pending.setdefault(second, {})[index] = figures
        if len(self.pending[second]) < self.processes:
            return
        parts = self.pending.pop(second)
        row: dict[str, Any] = {"second": second, "hub_cpu": self.hub_cpu()}
        for key in (
            "hold_ok",
            "confirm_ok",
            "conflicts",
            "errors",
            "release_ok",
            "cancel_ok",
            "abandoned",
        ):
            row[key] = sum(p.get(key, 0) for p in parts.values())
        row["ceiling_ok"] = sum(p.get("ceiling_hold_ok", 0) for p in parts.values())
        row["client_cpu"] = [parts[i]["cpu"] for i in sorted(parts)]
        first = parts[min(parts)]
        row.update(free=first["free"], held=first["held"], sold=first["sold"])
        self.rows.append(row)
        cpu = "+".join(f"{c:.0f}%" for c in row["client_cpu"])
        hub = f"  hub cpu {row['hub_cpu']:.0f}%" if row["hub_cpu"] is not None else ""
        if row["ceiling_ok"]:
            line = f"[{second:4d}s] back-to-back holds/s {row['ceiling_ok']:6d}"
        else:
            line = (
                f"[{second:4d}s] holds/s {row['hold_ok']:5d}  bookings/s {row['confirm_ok']:5d}"
                f"  conflicts {row['conflicts']:4d}  errors {row['errors']:3d}"
                f"  seats free/held/sold {row['free']}/{row['held']}/{row['sold']}"
            )
        print(f"{line}  client cpu {cpu}{hub}", flush=True)
        if first["sold"] == self.seats and first["mirror_seq"] is not None and not self.sold_out:
            self.sold_out = True
            self.sold_out_at = float(second)


async def _seeded(plans: list[ClientPlan], database_url: str, secret: str) -> list[ClientPlan]:
    """The plans with tokens for every buyer, the accounts made directly (loadtest.accounts)."""
    emails = [buyer_email(p.run_token, n) for p in plans for n in p.buyer_ids]
    tokens = iter(await accounts.seed_buyers(database_url, secret, emails, PASSWORD))
    return [dataclasses.replace(p, tokens=tuple(next(tokens) for _ in p.buyer_ids)) for p in plans]


def plans_for(args: argparse.Namespace, url: str, event_id: str, token: str) -> list[ClientPlan]:
    k = max(1, args.processes)
    mix = parse_mix(args.mix)
    ws_url = url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    plans = []
    for i in range(k):
        buyer_ids = tuple(range(i, args.buyers, k))
        watchers = args.watchers // k + (1 if i < args.watchers % k else 0)
        probes = args.probes // k + (1 if i < args.probes % k else 0)
        plans.append(
            ClientPlan(
                index=i,
                base_url=url,
                ws_url=ws_url,
                event_id=event_id,
                run_token=token,
                buyer_ids=buyer_ids,
                total_buyers=args.buyers,
                watchers=watchers,
                probes=probes,
                mix=mix,
                cancel_rate=args.cancel_rate,
                lapse_rate=args.lapse_rate,
                think_ms=args.think_ms,
                profile=args.profile,
                max_per_user=args.max_per_user,
            )
        )
    return plans


def run_phase(
    clients: Clients,
    progress: Progress,
    name: str,
    url: str,
    duration: float,
    stop_early: bool,
    event_id: str | None = None,
) -> dict[int, Any]:
    start_at = time.monotonic() + 1.0
    clients.send("go", name, start_at, duration, url, event_id)
    stopped = False

    def on_tick(index: int, figures: dict[str, Any]) -> None:
        nonlocal stopped
        progress.tick(index, figures)
        if stop_early and progress.sold_out and not stopped:
            stopped = True
            print(f"sold out after {progress.sold_out_at:.0f}s: stopping the surge", flush=True)
            clients.send("stop")

    return clients.gather("result", duration + 90, on_tick)


def run(args: argparse.Namespace) -> int:
    """The whole surge run; returns the exit status (1 when the audit fails)."""
    if not args.start_hub and not args.url:
        print("surge: give --url or --start-hub", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    hub: StartedHub | None = None
    clients: Clients | None = None
    ceiling_proc: subprocess.Popen[Any] | None = None
    try:
        if args.start_hub:
            print(
                f"starting a hub ({args.workers} workers, {args.hub_servers} servers)...",
                flush=True,
            )
            hub = start_hub(args)
            url, database_url = hub.url, hub.database_url
            redis_url, secret, prefix = hub.redis_url, hub.secret_key, hub.redis_prefix
            admin = (hub.admin_email, hub.admin_password)
        else:
            url, database_url = args.url.rstrip("/"), args.database_url
            redis_url, secret, prefix = args.redis_url, args.secret_key, args.redis_prefix
            admin = (args.admin_email, args.admin_password)
        event_id = args.event
        if event_id is None:
            if not all(admin):
                print("surge: --event, or admin credentials to create one", file=sys.stderr)
                return 2
            event_id = create_event(url, admin[0], admin[1], args.seats, args.max_per_user)
        seats = len(httpx.get(f"{url}/api/v1/events/{event_id}/seats", timeout=30).json()["seats"])
        print(f"event {event_id}: {seats} seats", flush=True)
        token = uuid.uuid4().hex[:10]
        plans = plans_for(args, url, event_id, token)
        started = time.monotonic()
        if database_url and secret:
            plans = asyncio.run(_seeded(plans, database_url, secret))
            print(f"seeded {args.buyers} buyers in {time.monotonic() - started:.1f}s", flush=True)
        clients = Clients(plans)
        print(f"signing up {args.buyers} buyers, opening {args.watchers} watchers...", flush=True)
        ready = clients.gather("ready", 900)
        setup_s = time.monotonic() - started
        print(f"ready in {setup_s:.1f}s", flush=True)
        progress = Progress(len(plans), hub.worker_pids() if hub else [], seats)
        surge = run_phase(clients, progress, "surge", url, args.duration, not args.run_on)
        surge_rows = progress.rows
        seen = [
            audit.SeenBooking(bid, tuple(seat_ids), cancelled)
            for result in surge.values()
            for bid, (seat_ids, cancelled) in result["bookings"].items()
        ]
        result_audit = asyncio.run(_audit(url, database_url, event_id, seen))
        print(result_audit.line(), flush=True)
        ceiling: dict[int, Any] | None = None
        ceiling_rows: list[dict[str, Any]] = []
        throughput: dict[int, Any] | None = None
        throughput_rows: list[dict[str, Any]] = []
        if not args.no_ceiling and all(admin):
            # Like for like with the ceiling: the same clients, back-to-back holds, on an event
            # too large to sell out in the run, so every hold does the hub's full work.
            print(f"throughput: hub holds on a {args.throughput_seats}-seat event...", flush=True)
            big = create_event(url, admin[0], admin[1], args.throughput_seats, 1_000)
            progress.rows = []
            throughput = run_phase(
                clients, progress, "throughput", url, args.compare_duration, False, event_id=big
            )
            throughput_rows = progress.rows
        if not args.no_ceiling and redis_url and secret:
            print(f"ceiling: the bare hold endpoint, {args.workers} workers...", flush=True)
            ceiling_proc, ceiling_url = start_ceiling(args.workers, redis_url, secret, prefix)
            progress.rows = []
            ceiling = run_phase(
                clients, progress, "ceiling", ceiling_url, args.compare_duration, False
            )
            ceiling_rows = progress.rows
            stop_process(ceiling_proc)
            ceiling_proc = None
            asyncio.run(_clear_ceiling(redis_url, prefix))
        elif not args.no_ceiling:
            print("ceiling: skipped (needs --redis-url and --secret-key with --url)", flush=True)
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
        }
        results = report.build(
            meta,
            surge,
            surge_rows,
            ceiling,
            ceiling_rows,
            result_audit,
            throughput=throughput,
            throughput_rows=throughput_rows,
        )
        print(report.summary(results), flush=True)
        if args.json_out:
            report.write_json(results, args.json_out)
        if args.html_out:
            report.write_html(results, args.html_out)
        return 0 if result_audit.ok else 1
    finally:
        if ceiling_proc is not None:
            stop_process(ceiling_proc)
        if clients is not None:
            clients.close()
        if hub is not None:
            hub.stop()


async def _audit(
    url: str, database_url: str | None, event_id: str, seen: list[audit.SeenBooking]
) -> audit.Audit:
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.get(f"{url}/api/v1/events/{event_id}/seats")
        response.raise_for_status()
        api = audit.api_statuses(response.json())
    if database_url is None:
        return audit.Audit(False, ["no --database-url: PostgreSQL could not be audited"])
    pg = await audit.load_pg(database_url, event_id)
    return audit.check(api, pg, seen)


def start_ceiling(
    workers: int, redis_url: str, secret: str, prefix: str
) -> tuple[subprocess.Popen[Any], str]:
    port = free_port()
    env = {
        **os.environ,
        "EVENTLY_REDIS_URL": redis_url,
        "EVENTLY_DATABASE_URL": "postgresql://unused/unused",
        "EVENTLY_SECRET_KEY": secret,
        "EVENTLY_REDIS_PREFIX": prefix,
    }
    cmd = [sys.executable, "-m", "loadtest.ceiling", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/v1/events/x/holds", (401,), 30, proc)
        time.sleep(0.5)
    except BaseException:
        stop_process(proc)
        raise
    return proc, url


async def _clear_ceiling(redis_url: str, prefix: str) -> None:
    from loadtest.ceiling import clear

    await clear(redis_url, prefix)
