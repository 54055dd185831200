"""DSNs re-aimed at another database keep their server and options, a Unix socket's
directory among them; and such a DSN reaches the server."""

from __future__ import annotations

import os

import asyncpg
import pytest

from hub.db import database_of, with_database

SOCKET_DIR = "/var/run/postgresql"


def test_another_database_keeps_server_user_and_options() -> None:
    url = "postgresql://postgres:pw@127.0.0.1:5432/test?sslmode=disable"
    assert with_database(url, "evently_x") == (
        "postgresql://postgres:pw@127.0.0.1:5432/evently_x?sslmode=disable"
    )
    assert database_of(with_database(url, "evently_x")) == "evently_x"


def test_a_unix_socket_dsn_keeps_its_directory() -> None:
    url = f"postgresql://postgres@/test?host={SOCKET_DIR}"
    moved = with_database(url, "evently_y")
    assert moved == f"postgresql://postgres@/evently_y?host={SOCKET_DIR}"
    assert database_of(moved) == "evently_y"


@pytest.mark.skipif(
    not os.path.exists(f"{SOCKET_DIR}/.s.PGSQL.5432"), reason="no local PostgreSQL socket"
)
async def test_a_unix_socket_dsn_connects() -> None:
    con = await asyncpg.connect(
        with_database(f"postgresql://postgres@/x?host={SOCKET_DIR}", "test")
    )
    try:
        assert await con.fetchval("SELECT current_database()") == "test"
        assert await con.fetchval("SELECT inet_server_addr()") is None  # not over TCP
    finally:
        await con.close()
