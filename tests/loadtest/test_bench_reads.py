"""bench-reads: the bare read route, the read loop's counting, the table, a tiny run."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from loadtest import ceiling
from loadtest.bench_reads import Expected, json_row, read_table, run_level, summarise_modes
from loadtest.hold_job import Target
from tests.servers import TestServers

SECRET = "bench-reads-test-secret-long-enough-for-hs256"
BODY = b'{"id":"e1","name":"Surge","available":1000}'
JSON = "application/json"

# --- the bare read route --------------------------------------------------------------------


@pytest.fixture
async def bare_prefix(
    servers: TestServers, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    prefix = f"{redis_prefix}reads{uuid.uuid4().hex[:8]}:"
    monkeypatch.setenv("EVENTLY_REDIS_URL", servers.redis_url)
    monkeypatch.setenv("EVENTLY_DATABASE_URL", "postgresql://unused/unused")
    monkeypatch.setenv("EVENTLY_SECRET_KEY", SECRET)
    monkeypatch.setenv("EVENTLY_REDIS_PREFIX", prefix)
    yield prefix
    await ceiling.clear(servers.redis_url, prefix)


async def _read(path: str) -> httpx.Response:
    app = ceiling.create()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bare") as client:
            return await client.get(path)


async def test_the_bare_route_answers_the_stored_bytes_as_they_are(
    servers: TestServers, bare_prefix: str
) -> None:
    assert (await _read("/api/v1/events/e1")).status_code == 404  # nothing stored yet
    await ceiling.set_read_body(servers.redis_url, bare_prefix, BODY, "application/x-test")
    reply = await _read(f"/api/v1/events/{uuid.uuid4()}")
    assert reply.status_code == 200
    assert reply.content == BODY
    assert reply.headers["content-type"] == "application/x-test"


# --- the read loop, against a tiny server ----------------------------------------------------


async def test_a_level_counts_exact_answers_and_calls_anything_else_an_error() -> None:
    """Three connections: one answered right, one with other bytes, one with a 500."""
    heads_seen: list[bytes] = []
    accepted = itertools.count()
    answers = [
        (b"200 OK", BODY),
        (b"200 OK", BODY.replace(b"1000", b"999")),
        (b"500 Internal Server Error", b"{}"),
    ]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status, body = answers[next(accepted) % 3]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                heads_seen.append(head)
                writer.write(
                    b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
                    % (status, JSON.encode(), len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        target = Target("tiny", "127.0.0.1", port, "e1")
        heads = [b"Authorization: Bearer t\r\n", b"", b""]
        level = await run_level(target, heads, Expected(BODY, JSON), 0.1, 0.4, None)
    finally:
        server.close()
        await server.wait_closed()
    assert level["connections"] == 3 and level["reads"] > 0
    assert level["reads_per_s"] == pytest.approx(level["reads"] / level["window_s"], rel=1e-3)
    assert level["latency_ms"]["p99"] > 0
    kinds = level["errors_by_kind"]
    assert set(kinds) == {"read 200 with other bytes", "read 500"}
    # The good connection's reads count only inside the window; every request is counted.
    assert level["requests"] >= level["reads"] + level["errors"]
    assert all(h.startswith(b"GET /api/v1/events/e1 HTTP/1.1\r\n") for h in heads_seen)
    assert sum(b"Authorization: Bearer t\r\n" in h for h in heads_seen) > 0


# --- the table ------------------------------------------------------------------------------


def _level(rate: float, p99: float) -> dict[str, object]:
    return {"reads_per_s": rate, "latency_ms": {"n": 10, "p99": p99}}


def test_the_table_compares_the_hub_with_the_bare_app_per_run() -> None:
    runs = [
        {
            "bare": {"anonymous": [_level(10_000, 4.0)], "token": [_level(9_000, 5.0)]},
            "hub": {"anonymous": [_level(5_000, 8.0)], "token": [_level(3_000, 10.0)]},
        },
        {
            "bare": {"anonymous": [_level(8_000, 4.0)], "token": [_level(9_000, 5.0)]},
            "hub": {"anonymous": [_level(6_000, 6.0)], "token": [_level(4_500, 10.0)]},
        },
    ]
    (anonymous,) = summarise_modes(runs, "anonymous", [16])
    (token,) = summarise_modes(runs, "token", [16])
    # Per run 0.5 and 0.75: the ratio's median is theirs, not the ratio of medians.
    assert anonymous["ratio"] == {"median": 0.625, "min": 0.5, "max": 0.75}
    assert token["ratio"]["median"] == (0.3333 + 0.5) / 2  # each run's ratio to 4 places
    lines = read_table([anonymous], runs=1)
    assert [cell.strip() for cell in lines[0].strip("|").split("|")] == [
        "connections",
        "bare req/s",
        "hub req/s",
        "ratio",
        "bare p99",
        "hub p99",
        "p99 ratio",
    ]
    assert lines[2] == "| 16 | 9,000 | 5,500 | 0.62 | 4.0 ms | 7.0 ms | 1.75 |"
    row = json_row(anonymous)
    assert row["bare_reads_per_s"]["median"] == 9_000 and row["hub_reads_per_s"]["max"] == 6_000
    assert not [key for key in row if "ceiling" in key or "holds" in key or "win" in key]


# --- a tiny run end to end ------------------------------------------------------------------


@pytest.mark.slow
def test_a_tiny_run_reads_both_servers_without_errors(servers: TestServers, tmp_path: Path) -> None:
    out = tmp_path / "reads.json"
    cmd = [sys.executable, "-m", "loadtest", "bench-reads", "--database-url"]
    cmd += [servers.admin_database_url, "--connections", "4", "--warmup", "0.5"]
    cmd += ["--duration", "1", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    stdout = done.stdout + done.stderr
    assert done.returncode == 0, stdout[-4000:]
    header = "| connections | bare req/s | hub req/s | ratio | bare p99 | hub p99 | p99 ratio |"
    assert stdout.count(header) == 2  # anonymous, then with a token
    assert "ERRORS" not in stdout and "on core 0" in stdout
    report = json.loads(out.read_text())
    assert report["failed_levels"] == []
    for mode in ("anonymous", "token"):
        (row,) = report["summary"][mode]
        assert row["bare_reads_per_s"]["median"] > 0 and row["hub_reads_per_s"]["median"] > 0
        for target in ("bare", "hub"):
            (level,) = report["runs"][0][target][mode]
            assert level["errors"] == 0, (target, mode, level["errors_by_kind"])
            assert level["reads"] > 0 and level["latency_ms"]["p99"] > 0
