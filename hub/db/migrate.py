"""Numbered plain-SQL migrations, applied in order, each in its own transaction.

Files are ``migrations/NNN_name.sql``; applied versions are recorded in
``schema_migrations``. A session advisory lock makes concurrent runs (several workers
starting at once) take turns: the second finds nothing left to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_LOCK_KEY = 0x6576656E746C79  # "evently"
_NAME = re.compile(r"^(\d+)_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in ``directory``, in version order.

    Raises:
        ValueError: a file name does not follow ``NNN_name.sql`` or two share a version.
    """
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name!r} is not named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations share version {version}")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply every pending migration; return the versions applied now."""
    con = await asyncpg.connect(dsn)
    try:
        await con.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await con.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    integer PRIMARY KEY,
                       name       text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {r["version"] for r in await con.fetch("SELECT version FROM schema_migrations")}
            applied: list[int] = []
            for migration in discover(directory):
                if migration.version in done:
                    continue
                async with con.transaction():
                    await con.execute(migration.path.read_text())
                    await con.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                log.info("migration_applied", version=migration.version, name=migration.name)
                applied.append(migration.version)
            return applied
        finally:
            await con.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await con.close()


async def create_migrated(admin_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``admin_url`` and migrate it; returns its
    DSN (``admin_url``'s, naming it). A migration that fails drops it again."""
    from hub.db import with_database

    con = await asyncpg.connect(admin_url)
    try:
        await con.execute(f'CREATE DATABASE "{name}"')
    finally:
        await con.close()
    url = with_database(admin_url, name)
    try:
        await migrate(url)
    except BaseException:
        await drop_database(admin_url, url)
        raise
    return url


async def drop_database(admin_url: str, url: str) -> None:
    """Drop the database ``url`` names, through ``admin_url``, whoever is connected to it."""
    from hub.db import database_of

    con = await asyncpg.connect(admin_url)
    try:
        await con.execute(f'DROP DATABASE IF EXISTS "{database_of(url)}" WITH (FORCE)')
    finally:
        await con.close()
