"""Which PostgreSQL and Redis the tests use, and an isolated database + key prefix per run.

Order of preference: servers named by EVENTLY_TEST_DATABASE_URL / EVENTLY_TEST_REDIS_URL;
the local servers on 127.0.0.1:5432 / :6379 when reachable; otherwise embedded servers
started for the run. Each run gets its own database and its own Redis key prefix.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class TestServers:
    __test__ = False  # a fixture value, not a test class

    admin_database_url: str  # a database to connect to for CREATE/DROP DATABASE
    redis_url: str
    embedded: object | None = None

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()  # type: ignore[attr-defined]


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def find_servers() -> TestServers:
    db_url = os.environ.get("EVENTLY_TEST_DATABASE_URL")
    redis_url = os.environ.get("EVENTLY_TEST_REDIS_URL")
    if db_url and redis_url:
        return TestServers(db_url, redis_url)
    if _reachable(LOCAL_DATABASE_URL, 5432) and _reachable(LOCAL_REDIS_URL, 6379):
        return TestServers(LOCAL_DATABASE_URL, LOCAL_REDIS_URL)
    from hub.embedded import EmbeddedServers

    root = Path(tempfile.mkdtemp(prefix="evently-test-"))
    embedded = EmbeddedServers(root)
    database_url, redis_url = embedded.start()
    return TestServers(database_url, redis_url, embedded)


def run_token() -> str:
    return uuid.uuid4().hex[:10]


@contextlib.asynccontextmanager
async def scratch_database(servers: TestServers, prefix: str = "evently_t") -> AsyncIterator[str]:
    """A freshly migrated database of its own, dropped afterwards; yields its URL."""
    from hub.db.migrate import create_migrated, drop_database

    url = await create_migrated(servers.admin_database_url, f"{prefix}_{run_token()}")
    try:
        yield url
    finally:
        await drop_database(servers.admin_database_url, url)
