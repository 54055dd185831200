"""The embedded PostgreSQL: a first start that was interrupted is started over cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from hub.embedded.postgres import DATABASE, EmbeddedPostgres
from hub.embedded.supervisor import RESERVED_PORTS, EmbeddedServerError
from tests.hub.embedded.processes import processes_under

pytestmark = pytest.mark.slow


async def current_database(dsn: str) -> str:
    con = await asyncpg.connect(dsn)
    try:
        return str(await con.fetchval("SELECT current_database()"))
    finally:
        await con.close()


def test_an_interrupted_initdb_is_redone_and_the_database_created(tmp_path: Path) -> None:
    root = tmp_path / "evently"
    # What an initdb killed half way leaves: a staging folder, and an empty PGDATA.
    (root / "postgres.init").mkdir(parents=True)
    (root / "postgres.init" / "base").mkdir()
    (root / "postgres").mkdir()
    server = EmbeddedPostgres(root)
    with pytest.raises(EmbeddedServerError):
        _ = server.url()
    try:
        started = server.start("test-pg-password", guest=False)
        assert server.initialized and started.owned
        assert started.port not in RESERVED_PORTS
        assert not (root / "postgres.init").exists()
        assert not (root / "postgres.pwfile").exists(), "the password file must not linger"
        server.ensure_database()
        server.ensure_database()  # already there: nothing to do
        assert asyncio.run(current_database(server.url())) == DATABASE
        with pytest.raises(asyncpg.InvalidPasswordError):
            wrong = server.url().replace("test-pg-password", "wrong")
            asyncio.run(current_database(wrong))
    finally:
        server.stop()
        for proc in processes_under(root):
            proc.kill()
    assert processes_under(root) == []
