"""Starting and stopping what a surge run needs: servers, a hub, the ceiling endpoint.

The hub is started as an operator would start it, ``evently serve --workers N`` (``python -m
hub.cli serve``), on a free port, with rate limits off, on either of:

- private embedded PostgreSQL + Redis in a temp folder (``python -m hub.embedded``, which
  prints the servers' URLs and stops them when its standard input closes, so the servers go
  even when this process is killed), or
- the local servers, with a fresh database and key prefix of its own, dropped afterwards.

Everything started here is stopped by PID (never by name), and each clean-up step runs
even when an earlier one failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
SERVERS_TIMEOUT = 120.0


def hub_environment(
    home: Path,
    database_url: str,
    redis_url: str,
    prefix: str,
    secret: str,
    admin: tuple[str, str],
    extra: dict[str, str],
) -> dict[str, str]:
    """The environment of an ``evently serve`` a load test starts: its servers, key prefix,
    secret and bootstrap admin, JSON logs at ``warning``, and ``extra`` settings."""
    return {
        **os.environ,
        "EVENTLY_HOME": str(home / "hub"),
        "EVENTLY_DATABASE_URL": database_url,
        "EVENTLY_REDIS_URL": redis_url,
        "EVENTLY_REDIS_PREFIX": prefix,
        "EVENTLY_SECRET_KEY": secret,
        "EVENTLY_ADMIN_EMAIL": admin[0],
        "EVENTLY_ADMIN_PASSWORD": admin[1],
        "EVENTLY_LOG_FORMAT": "json",
        "EVENTLY_LOG_LEVEL": "warning",
        **extra,
    }


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
    cleanup: list[Callable[[], None]] = field(default_factory=list)

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
    prefix = f"evently:surge{token}:"
    cleanup: list[Callable[[], None]] = []
    try:
        if args.hub_servers == "embedded":
            database_url, redis_url = start_embedded_servers(home / "servers", cleanup)
        else:
            database_url, redis_url = start_local_servers(args, token, prefix, cleanup)
    except BaseException:
        for step in reversed(cleanup):
            step()
        shutil.rmtree(home, ignore_errors=True)
        raise
    port = free_port()
    secret = secrets.token_urlsafe(48)
    admin_email, admin_password = f"surge-admin-{token}@example.com", secrets.token_urlsafe(16)
    env = hub_environment(
        home,
        database_url,
        redis_url,
        prefix,
        secret,
        (admin_email, admin_password),
        {
            "EVENTLY_RATE_LIMITS": "off",
            "EVENTLY_HOLD_TTL_SECONDS": str(args.hold_ttl),
            # Watchers, each process's mirror, and a waiting room's waiters (one each).
            "EVENTLY_WS_MAX_PER_IP": str(args.watchers + args.buyers + args.processes + 100),
        },
    )
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
        _wait_ready(hub)
    except BaseException:
        hub.stop()
        raise
    return hub


def _wait_ready(hub: StartedHub) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if hub.proc.poll() is not None:
            raise RuntimeError(f"the hub exited: {(hub.home / 'hub.log').read_text()[-2000:]}")
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


def start_embedded_servers(root: Path, cleanup: list[Callable[[], None]]) -> tuple[str, str]:
    """Private PostgreSQL and Redis under ``root`` (``python -m hub.embedded``).

    Returns ``(database_url, redis_url)``; appends to ``cleanup`` the step that stops them.
    """
    root.mkdir(parents=True, exist_ok=True)
    errors = open(root.parent / "servers.log", "wb")  # kept open for the child's lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.embedded", str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    cleanup.append(lambda: stop_embedded(proc))
    assert proc.stdout is not None
    # A start that fails ends the process: readline() then returns "".
    line = proc.stdout.readline()
    if not line:
        proc.wait(SERVERS_TIMEOUT)
        tail = (root.parent / "servers.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the embedded servers did not start:\n{tail}")
    urls = json.loads(line)
    return str(urls["database_url"]), str(urls["redis_url"])


def stop_embedded(proc: subprocess.Popen[str]) -> None:
    """Close the servers' standard input (their signal to stop) and wait until they have."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    try:
        proc.wait(SERVERS_TIMEOUT)
    except subprocess.TimeoutExpired:
        stop_process(proc)
    if proc.stdout is not None:
        proc.stdout.close()


def start_local_servers(
    args: argparse.Namespace, token: str, prefix: str, cleanup: list[Callable[[], None]]
) -> tuple[str, str]:
    """A fresh, migrated database on ``--pg-url``'s server and Redis at ``--redis-url``;
    appends to ``cleanup`` the steps that drop the database and the run's keys."""
    from hub.db.migrate import create_migrated, drop_database

    redis_url = args.redis_url or LOCAL_REDIS
    database_url = asyncio.run(create_migrated(args.pg_url, f"evently_surge_{token}"))
    cleanup.append(lambda: asyncio.run(drop_database(args.pg_url, database_url)))
    cleanup.append(lambda: asyncio.run(_drop_keys(redis_url, prefix)))
    return database_url, redis_url


async def _drop_keys(redis_url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


def start_ceiling(
    workers: int, redis_url: str, secret: str, prefix: str
) -> tuple[subprocess.Popen[Any], str]:
    """``python -m loadtest.ceiling`` on a free port with the hub's Redis, key prefix and
    secret; returns the process and its URL once it answers."""
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


async def clear_ceiling(redis_url: str, prefix: str) -> None:
    """Delete the keys the ceiling wrote under ``prefix``."""
    from loadtest.ceiling import clear

    await clear(redis_url, prefix)
