"""The ``evently`` command: serve, migrate, seed-demo, rebuild-inventory.

``serve`` with no server URLs starts embedded PostgreSQL and Redis under the hub's home
folder, migrates, seeds the demo once, runs uvicorn, and on SIGINT/SIGTERM stops all it
started. With URLs it starts nothing and requires a secret key.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import sys
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from hub import logs
from hub.db.migrate import migrate
from hub.settings import Settings, SettingsError

if TYPE_CHECKING:
    from hub.demo import DemoSummary

log = structlog.get_logger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_environ()
    except SettingsError as exc:
        print(f"evently: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    command: Callable[[argparse.Namespace, Settings], int] = args.command
    return command(args, settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evently", description="Evently Hub")
    sub = parser.add_subparsers(required=True, metavar="command")

    serve = sub.add_parser("serve", help="run the hub (embedded servers when no URLs are set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="seed the demo data on given servers")
    serve.set_defaults(command=serve_command)

    mig = sub.add_parser("migrate", help="apply pending migrations")
    mig.set_defaults(command=migrate_command)

    rebuild = sub.add_parser(
        "rebuild-inventory",
        help="rebuild live seat state in Redis from PostgreSQL (keeps live holds)",
    )
    rebuild.add_argument("--event", type=uuid.UUID, default=None, help="only this event")
    rebuild.set_defaults(command=rebuild_command)

    seed = sub.add_parser("seed-demo", help="seed the demo venue, events and users (idempotent)")
    seed.set_defaults(command=seed_command)

    rollup = sub.add_parser(
        "rollup", help="bring the analytics rollups up to date now (one incremental step)"
    )
    rollup.add_argument(
        "--rebuild",
        action="store_true",
        help="count them again from scratch instead (after writing back-dated history)",
    )
    rollup.set_defaults(command=rollup_command)
    return parser


class _Stop(Exception):
    """Raised from a signal handler so that ``finally`` blocks run."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    embedded = None
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        home = Path(settings.home).resolve()
        home.mkdir(parents=True, exist_ok=True)
        seed = args.demo
        if settings.embedded:
            from hub.embedded import EmbeddedServers

            embedded = EmbeddedServers(home)
            database_url, redis_url = embedded.start()
            secret = settings.secret_key or _local_secret(home)
            settings = settings.replace(
                database_url=database_url, redis_url=redis_url, secret_key=secret
            )
            seed = True
        elif not settings.secret_key:
            print(
                "evently: EVENTLY_SECRET_KEY is required when server URLs are given",
                file=sys.stderr,
            )
            return 2
        assert settings.database_url and settings.redis_url and settings.secret_key
        _run(migrate(settings.database_url))
        summary = _run(_seed(settings)) if seed else None
        env = {
            "EVENTLY_DATABASE_URL": settings.database_url,
            "EVENTLY_REDIS_URL": settings.redis_url,
            "EVENTLY_SECRET_KEY": settings.secret_key,
        }
        if args.workers > 1:
            metrics_dir = home / "metrics"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            env["EVENTLY_METRICS_DIR"] = env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        # Worker processes read their settings from the environment, like any deployment.
        os.environ.update(env)
        _print_banner(args.host, args.port, summary)
        _run_uvicorn(args.host, args.port, args.workers)
        return 0
    except _Stop as stop:
        log.info("serve_stopping", signal=str(stop))
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if embedded is not None:
            # A second signal must not interrupt the shutdown of the servers.
            with _signals_ignored():
                embedded.stop()


def uvicorn_options(host: str, port: int, workers: int) -> dict[str, Any]:
    """The uvicorn configuration the hub runs with (also used by the load tests)."""
    return {
        "host": host,
        "port": port,
        "workers": workers,
        "factory": True,
        "loop": "uvloop",
        "http": "httptools",
        # uvicorn's sans-I/O WebSocket protocol, reachable from the channel hub for direct
        # frame writes (see hub/channels/peers.py for why and what it measured).
        "ws": "hub.channels.peers:DirectProtocol",
        "ws_per_message_deflate": False,
        # Client messages over 64 KiB close the connection with 1009.
        "ws_max_size": 64 * 1024,
        # Heartbeats: a ping every 20 s; no pong within 20 s closes a dead connection.
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        "lifespan": "on",
        "log_level": "warning",
        "access_log": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": 5,
        "backlog": 4096,
    }


def _run_uvicorn(host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run("hub.asgi:create", **uvicorn_options(host, port, workers))


def _print_banner(host: str, port: int, summary: DemoSummary | None) -> None:
    print(banner(f"http://{host}:{port}", summary), flush=True)


def banner(base: str, summary: DemoSummary | None) -> str:
    """What ``serve`` prints before uvicorn starts: only URLs that answer 200 once it runs
    (the API has no page of its own at its prefix: its OpenAPI document is the entry)."""
    lines = [
        "",
        f"  Evently Hub is starting on {base}",
        f"    Events        {base}/",
        f"    API (OpenAPI) {base}/api/v1/openapi.json",
    ]
    if summary is not None:
        lines.append(f"    Seat map      {base}/events/{summary.first_event_id}")
        lines.append("    Demo logins:")
        lines.extend(
            f"      {role:<6} {email} / {password}" for role, email, password in summary.logins
        )
    return "\n".join(lines) + "\n"


def _local_secret(home: Path) -> str:
    """Embedded mode: a signing key generated once and kept in the home folder."""
    path = home / "secret_key"
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


def migrate_command(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.database_url:
        print("evently: EVENTLY_DATABASE_URL is required", file=sys.stderr)
        return 2
    applied = _run(migrate(settings.database_url))
    print(f"applied migrations: {applied or 'none pending'}")
    return 0


def seed_command(args: argparse.Namespace, settings: Settings) -> int:
    if not (settings.database_url and settings.redis_url):
        print("evently: EVENTLY_DATABASE_URL and EVENTLY_REDIS_URL are required", file=sys.stderr)
        return 2
    _run(migrate(settings.database_url))
    summary = _run(_seed(settings))
    print(f"demo ready: {summary.events} events, first {summary.first_event_id}")
    return 0


def rebuild_command(args: argparse.Namespace, settings: Settings) -> int:
    if not (settings.database_url and settings.redis_url):
        print("evently: EVENTLY_DATABASE_URL and EVENTLY_REDIS_URL are required", file=sys.stderr)
        return 2
    rebuilt = _run(_rebuild(settings, args.event))
    print(f"rebuilt live seat state of {len(rebuilt)} event(s)")
    return 0


def rollup_command(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.database_url:
        print("evently: EVENTLY_DATABASE_URL is required", file=sys.stderr)
        return 2
    _run(migrate(settings.database_url))
    step = _run(_rollup(settings.database_url, rebuild=args.rebuild))
    print(
        f"analytics rollups {'rebuilt' if args.rebuild else 'stepped'} up to "
        f"{step.until.isoformat()}: {step.bookings} bookings, {step.cancellations} "
        f"cancellations, {step.holds} holds counted in {step.seconds:.2f} s"
    )
    return 0


async def _rollup(database_url: str, *, rebuild: bool) -> Any:
    from hub.db import Database
    from hub.services import rollups

    db = await Database.connect(database_url, min_size=1, max_size=1)
    try:
        if rebuild:
            return await rollups.rebuild(db)
        return await rollups.step(db)
    finally:
        await db.close()


async def _rebuild(settings: Settings, event_id: uuid.UUID | None) -> list[uuid.UUID]:
    from hub.context import open_hub
    from hub.services import live_seats

    async with open_hub(settings) as hub:
        return await live_seats.rebuild(hub, event_id)


async def _seed(settings: Settings) -> Any:
    from hub import demo
    from hub.context import open_hub

    async with open_hub(settings) as hub:
        return await demo.seed_demo(hub)


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class _signals_ignored:
    def __enter__(self) -> None:
        self._old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
