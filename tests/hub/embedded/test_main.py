"""``python -m hub.embedded ROOT``: the URLs on one line, the servers gone when stdin closes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
import redis

from tests.hub.embedded.processes import processes_under

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]


async def select_one(dsn: str) -> int:
    con = await asyncpg.connect(dsn)
    try:
        return int(await con.fetchval("SELECT 1"))
    finally:
        await con.close()


def test_prints_the_urls_and_stops_the_servers_when_stdin_closes(tmp_path: Path) -> None:
    root = tmp_path / "evently"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.embedded", str(root)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        urls = json.loads(proc.stdout.readline())
        assert asyncio.run(select_one(urls["database_url"])) == 1
        client = redis.Redis.from_url(urls["redis_url"])
        assert client.ping()
        client.close()
        assert len(processes_under(root)) >= 2
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        assert proc.stdout.read() == "", "standard output carries only the URLs"
        assert processes_under(root) == []
    finally:
        proc.kill()
        proc.wait()
        for leftover in processes_under(root):
            leftover.kill()
