"""bench-holds: its HTTP client, its maths, the ceiling's release, and a tiny run end to end."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from hub.auth import Role, issue_token
from loadtest import ceiling
from loadtest.bench_table import summarise_runs, table
from loadtest.hold_job import Tally, median_spread, summarise
from loadtest.http1 import Http1Connection, ProtocolError, ResponseParser
from tests.loadtest.processes import assert_all_gone, descendants_while_running
from tests.servers import TestServers

# --- the response parser -------------------------------------------------------------------

CREATED = (
    b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n"
    b'{"hold": "x"}'
)
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nserver: uvicorn\r\n\r\n"
CHUNKED = (
    b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n"
)


def feed_bytewise(parser: ResponseParser, data: bytes) -> list[tuple[int, bytes]]:
    got = []
    for i in range(len(data)):
        got += [(r.status, r.body) for r in parser.feed(data[i : i + 1])]
    return got


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (CREATED, [(201, b'{"hold": "x"}')]),
        (NO_CONTENT, [(204, b"")]),
        (CHUNKED, [(409, b"hello, world")]),
        (
            CREATED + NO_CONTENT + CHUNKED + CREATED,
            [(201, b'{"hold": "x"}'), (204, b""), (409, b"hello, world"), (201, b'{"hold": "x"}')],
        ),
    ],
    ids=["content-length", "204", "chunked", "four in a row"],
)
def test_responses_come_out_whole_however_the_bytes_are_cut(
    data: bytes, expected: list[tuple[int, bytes]]
) -> None:
    whole = [(r.status, r.body) for r in ResponseParser().feed(data)]
    assert whole == expected
    assert feed_bytewise(ResponseParser(), data) == expected
    for cut in range(1, len(data)):
        parser = ResponseParser()
        parts = parser.feed(data[:cut]) + parser.feed(data[cut:])
        assert [(r.status, r.body) for r in parts] == expected, cut


def test_bytes_past_a_response_wait_for_the_next() -> None:
    parser = ResponseParser()
    assert [r.status for r in parser.feed(CREATED + NO_CONTENT[:10])] == [201]
    assert [r.status for r in parser.feed(NO_CONTENT[10:])] == [204]


def test_headers_are_lower_cased_and_keep_alive_follows_the_version_and_connection() -> None:
    (kept,) = ResponseParser().feed(CREATED)
    assert kept.headers["content-type"] == "application/json" and kept.keep_alive
    closing = CREATED.replace(b"content-length", b"Connection: close\r\ncontent-length")
    assert ResponseParser().feed(closing)[0].keep_alive is False
    old = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"
    assert ResponseParser().feed(old)[0].keep_alive is False
    old_kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    assert ResponseParser().feed(old_kept)[0].keep_alive is True


@pytest.mark.parametrize(
    "data",
    [
        b"SPDY/3 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nbody until close",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
    ],
    ids=[
        "not http",
        "status",
        "header",
        "negative length",
        "bad length",
        "no length",
        "chunk size",
        "chunk end",
    ],
)
def test_malformed_responses_raise(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        ResponseParser().feed(data)


def test_a_huge_head_is_refused() -> None:
    with pytest.raises(ProtocolError, match="too large"):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20_000)


# --- the connection over a real socket ------------------------------------------------------


async def test_a_connection_keeps_alive_and_fails_its_request_when_the_server_goes() -> None:
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for status in (b"201 Created", b"409 Conflict"):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            seen.append(head + await reader.readexactly(length))
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.close()  # the third request: the server goes away without answering

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = await Http1Connection.open("127.0.0.1", port)
    try:
        head = b"Authorization: Bearer t\r\n"
        first = await conn.request("POST", "/a", head, b'{"x":1}')
        second = await conn.request("POST", "/b", head, b"{}")
        assert (first.status, first.body, second.status) == (201, b"ok", 409)
        assert seen[0].startswith(b"POST /a HTTP/1.1\r\nHost: 127.0.0.1:")
        assert b"Authorization: Bearer t\r\nContent-Length: 7\r\n\r\n" in seen[0]
        assert seen[0].endswith(b'{"x":1}')
        with pytest.raises(ConnectionError):
            await conn.request("DELETE", "/c", head)
        assert not conn.is_open
        with pytest.raises(ConnectionError):
            conn.request("DELETE", "/c", head)
    finally:
        conn.close()
        server.close()
        await server.wait_closed()


# --- the maths ------------------------------------------------------------------------------


def test_a_level_counts_answered_holds_and_takes_percentiles_of_their_latencies() -> None:
    tally = Tally(won=30, lost=70, latencies=[i / 1000 for i in range(1, 101)], requests=140)
    tally.releases = 30
    tally.errors = Counter({"hold 500": 9})
    level = summarise(
        tally,
        2.0,
        connections=4,
        warmup=1.0,
        unfinished=1,
        client_cpu=10.0,
        server_cpu=90.0,
        redis_cpu=None,
        load=1.5,
    )
    assert level["holds_per_s"] == 50.0  # 201 and 409 both answer a hold
    assert (level["won_per_s"], level["lost_per_s"], level["win_rate"]) == (15.0, 35.0, 0.3)
    lat = level["hold_latency_ms"]
    # 1..100 ms: linear interpolation between closest ranks.
    assert (lat["n"], lat["p50"], lat["p95"], lat["p99"], lat["max"]) == (
        100,
        50.5,
        95.05,
        99.01,
        100.0,
    )
    assert level["errors"] == 10 and level["errors_by_kind"]["unfinished at the end"] == 1
    assert level["error_rate"] == round(10 / 140, 5)
    assert np.isclose(level["error_rate"], 0.07143)


def test_median_and_spread() -> None:
    assert median_spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0}
    assert median_spread([1.0, 2.0, 3.0, 10.0])["median"] == 2.5
    with pytest.raises(ValueError):
        median_spread([])


def _level(rate: float, p99: float | None) -> dict[str, object]:
    latency = {"n": 1, "p99": p99} if p99 is not None else {"n": 0}
    return {"holds_per_s": rate, "hold_latency_ms": latency, "win_rate": 0.5}


def test_a_ratio_over_runs_is_the_median_of_each_runs_ratio() -> None:
    runs = [
        {"ceiling": [_level(100, 10)], "hub": [_level(50, 20)]},
        {"ceiling": [_level(200, 10)], "hub": [_level(150, 30)]},
        {"ceiling": [_level(300, 20)], "hub": [_level(90, 20)]},
    ]
    (row,) = summarise_runs(runs, [16])
    assert row["ceiling_holds_per_s"] == {"median": 200, "min": 100, "max": 300}
    # Per run 0.5, 0.75, 0.3: the median is 0.5 (the ratio of medians would be 0.45).
    assert row["ratio"] == {"median": 0.5, "min": 0.3, "max": 0.75}
    assert row["p99_ratio"] == {"median": 2.0, "min": 1.0, "max": 3.0}
    lines = table([row], runs=3)
    assert [cell.strip() for cell in lines[0].strip("|").split("|")] == [
        "connections",
        "ceiling holds/s",
        "hub holds/s",
        "ratio",
        "ceiling p99",
        "hub p99",
        "p99 ratio",
    ]
    assert lines[2] == (
        "| 16 | 200 (100-300) | 90 (50-150) | 0.50 (0.30-0.75) | 10.0 ms (10.0 ms-20.0 ms)"
        " | 20.0 ms (20.0 ms-30.0 ms) | 2.00 (1.00-3.00) |"
    )


def test_one_run_prints_plain_figures_and_a_dash_where_nothing_was_answered() -> None:
    runs = [{"ceiling": [_level(1979.4, 10.24)], "hub": [_level(0, None)]}]
    (row,) = summarise_runs(runs, [16])
    assert table([row], runs=1)[2] == "| 16 | 1,979 | 0 | 0.00 | 10.2 ms | - | - |"


# --- the ceiling's release ------------------------------------------------------------------

SECRET = "bench-holds-test-secret-long-enough-for-hs256"


@pytest.fixture
async def ceiling_client(
    servers: TestServers, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("EVENTLY_REDIS_URL", servers.redis_url)
    monkeypatch.setenv("EVENTLY_DATABASE_URL", "postgresql://unused/unused")
    monkeypatch.setenv("EVENTLY_SECRET_KEY", SECRET)
    monkeypatch.setenv("EVENTLY_REDIS_PREFIX", redis_prefix)
    app = ceiling.create()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ceiling") as client:
            yield client


async def test_the_ceiling_releases_its_owners_hold_in_one_script(
    ceiling_client: httpx.AsyncClient,
) -> None:
    alice, bob = (
        {"Authorization": f"Bearer {issue_token(SECRET, uuid.uuid4(), Role.USER, 60)}"}
        for _ in range(2)
    )
    event = str(uuid.uuid4())
    holds = f"/api/v1/events/{event}/holds"
    held = await ceiling_client.post(holds, json={"seat_ids": ["a", "b"]}, headers=alice)
    assert held.status_code == 201
    hold_id = held.json()["hold_id"]
    assert hold_id.startswith(event + ".")
    release = f"/api/v1/holds/{hold_id}"
    taken = await ceiling_client.post(holds, json={"seat_ids": ["b", "c"]}, headers=bob)
    assert taken.status_code == 409
    assert (await ceiling_client.delete(release)).status_code == 401
    assert (await ceiling_client.delete(release, headers=bob)).status_code == 404
    assert (await ceiling_client.delete(release, headers=alice)).status_code == 204
    assert (await ceiling_client.delete(release, headers=alice)).status_code == 404
    unknown = await ceiling_client.delete("/api/v1/holds/no-event-in-it", headers=alice)
    assert unknown.status_code == 404
    # The seats are free again.
    again = await ceiling_client.post(holds, json={"seat_ids": ["b", "c"]}, headers=bob)
    assert again.status_code == 201
    # The surge's form: random seats out of the ceiling's seat space.
    some = await ceiling_client.post(holds, json={"quantity": 3}, headers=bob)
    assert some.status_code == 201 and len(some.json()["seats"]) == 3


# --- a tiny run end to end ------------------------------------------------------------------


@pytest.mark.slow
def test_a_tiny_run_measures_both_targets_and_stops_everything(
    servers: TestServers, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "loadtest", "bench-holds", "--database-url"]
    cmd += [servers.admin_database_url, "--connections", "4", "--warmup", "0.5"]
    cmd += ["--duration", "1.5", "--out", str(out)]
    log = tmp_path / "bench.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, text=True)
        started = descendants_while_running(proc, timeout=180)
    stdout = log.read_text()
    assert proc.returncode == 0, stdout[-4000:]
    assert "| connections | ceiling holds/s | hub holds/s | ratio |" in stdout
    assert "ERRORS" not in stdout
    assert "Redis: private" in stdout and "on core 0" in stdout
    report = json.loads(out.read_text())
    (row,) = report["summary"]
    assert row["connections"] == 4
    assert row["ceiling_holds_per_s"]["median"] > 0 and row["hub_holds_per_s"]["median"] > 0
    for target in ("ceiling", "hub"):
        (level,) = report["runs"][0][target]
        assert level["errors"] == 0, (target, level["errors_by_kind"])
        assert level["releases"] > 0 and level["won"] > 0
        assert level["hold_latency_ms"]["p99"] > 0
    assert report["failed_levels"] == []
    # Everything it started is gone: Redis, PostgreSQL's scratch database user, hub, ceiling.
    assert_all_gone(started)
