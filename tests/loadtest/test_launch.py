"""The surge's embedded servers run in a process of their own and go with the run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
import redis

from loadtest.launch import start_embedded_servers
from tests.hub.embedded.processes import processes_under

pytestmark = pytest.mark.slow


async def select_one(dsn: str) -> int:
    con = await asyncpg.connect(dsn)
    try:
        return int(await con.fetchval("SELECT 1"))
    finally:
        await con.close()


def test_embedded_servers_start_answer_and_are_stopped_by_the_cleanup(tmp_path: Path) -> None:
    root = tmp_path / "servers"
    cleanup: list[Callable[[], None]] = []
    try:
        database_url, redis_url = start_embedded_servers(root, cleanup)
        assert len(cleanup) == 1
        assert asyncio.run(select_one(database_url)) == 1
        client = redis.Redis.from_url(redis_url)
        assert client.ping()
        client.close()
        assert len(processes_under(root)) >= 2
    finally:
        for step in reversed(cleanup):
            step()
    assert processes_under(root) == []


def test_a_failed_start_says_why(tmp_path: Path) -> None:
    root = tmp_path / "servers"
    root.mkdir()
    (root / "redis").write_text("a file where the Redis folder should be")
    cleanup: list[Callable[[], None]] = []
    try:
        with pytest.raises(RuntimeError, match="did not start"):
            start_embedded_servers(root, cleanup)
    finally:
        for step in reversed(cleanup):
            step()
    assert processes_under(root) == []
