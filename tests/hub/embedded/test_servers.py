"""Both embedded servers under one root: data survives restarts and crashes, a root is
adopted rather than started twice, and nothing is left behind."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
import redis

from hub.embedded import EmbeddedServerError, EmbeddedServers
from tests.hub.embedded.processes import processes_under

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]


async def write_row(dsn: str, value: str) -> None:
    con = await asyncpg.connect(dsn)
    try:
        assert await con.fetchval("SELECT 1") == 1
        await con.execute("CREATE TABLE IF NOT EXISTS notes (body text NOT NULL)")
        await con.execute("INSERT INTO notes VALUES ($1)", value)
    finally:
        await con.close()


async def read_rows(dsn: str) -> list[str]:
    con = await asyncpg.connect(dsn)
    try:
        assert await con.fetchval("SELECT current_database()") == "evently"
        return [row["body"] for row in await con.fetch("SELECT body FROM notes ORDER BY body")]
    finally:
        await con.close()


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def test_restart_keeps_data_and_leaves_nothing_running(tmp_path: Path) -> None:
    root = tmp_path / "evently"
    servers = EmbeddedServers(root)
    database_url, redis_url = servers.start()
    try:
        assert "127.0.0.1" in database_url and "127.0.0.1" in redis_url
        assert ":5432/" not in database_url and ":6379/" not in redis_url
        asyncio.run(write_row(database_url, "first"))
        client = redis_client(redis_url)
        client.set("hold:1", "alice", ex=600)
        client.close()
    finally:
        servers.stop()
    servers.stop()  # a second stop is harmless
    assert processes_under(root) == []

    with EmbeddedServers(root) as again:
        assert asyncio.run(read_rows(again.database_url)) == ["first"]
        client = redis_client(again.redis_url)
        assert client.get("hold:1") == b"alice"
        assert 0 < client.ttl("hold:1") <= 600
        client.close()
    assert processes_under(root) == []


def test_recovers_from_a_run_killed_with_sigkill(tmp_path: Path) -> None:
    root = tmp_path / "evently"
    crashed = EmbeddedServers(root)
    database_url, redis_url = crashed.start()
    asyncio.run(write_row(database_url, "before crash"))
    client = redis_client(redis_url)
    client.set("seat:7", "held")
    client.close()

    victims = processes_under(root)
    assert len(victims) >= 2
    for proc in victims:
        proc.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while processes_under(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_under(root) == []
    assert (root / "postgres" / "postmaster.pid").exists()
    assert (root / "redis" / "redis.pid").exists()
    crashed.stop()  # servers already dead: nothing to do, nothing raised

    with EmbeddedServers(root) as recovered:
        assert asyncio.run(read_rows(recovered.database_url)) == ["before crash"]
        client = redis_client(recovered.redis_url)
        assert client.get("seat:7") == b"held"
        client.close()
    assert processes_under(root) == []


def test_adopts_servers_of_another_hub_and_orphans_of_a_killed_one(tmp_path: Path) -> None:
    root = tmp_path / "evently"
    script = (
        "import sys, time; from pathlib import Path; from hub.embedded import EmbeddedServers;"
        'urls = EmbeddedServers(Path(sys.argv[1])).start(); print("URLS", *urls, flush=True);'
        "time.sleep(120)"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(root)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert owner.stdout is not None
        line = next((line for line in owner.stdout if line.startswith("URLS ")), "")
        owner_urls = tuple(line.split()[1:])
        assert len(owner_urls) == 2, "the owner process did not start the servers"
        assert json.loads((root / "owner.json").read_text())["pid"] == owner.pid

        # Another hub on the same root uses the owner's servers and leaves them running.
        guest = EmbeddedServers(root)
        assert guest.start() == owner_urls
        guest.stop()
        assert len(processes_under(root)) >= 2

        # The owner dies without stopping them: the next start adopts the orphans and owns them.
        owner.kill()
        owner.wait()
        heir = EmbeddedServers(root)
        assert heir.start() == owner_urls
        heir.stop()
        assert processes_under(root) == []
    finally:
        owner.kill()
        owner.wait()
        for proc in processes_under(root):
            proc.kill()


def test_failed_start_stops_what_it_started(tmp_path: Path) -> None:
    root = tmp_path / "evently"
    root.mkdir()
    (root / "redis").write_text("a file where the Redis folder should be")
    servers = EmbeddedServers(root)
    with pytest.raises((EmbeddedServerError, OSError)):
        servers.start()
    assert (root / "postgres" / "PG_VERSION").exists(), "PostgreSQL should have been started"
    assert processes_under(root) == []
    servers.stop()
