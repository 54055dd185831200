"""A short surge through a waiting room, end to end: the hub it starts, a crowd joining in
the 2 s before the opening and a few after, admission, holds and confirms with admission
tokens, the audit, and the same surge without the room for the sell-out ratio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loadtest.processes import assert_all_gone, descendants_while_running
from tests.servers import TestServers

pytestmark = pytest.mark.slow


def test_surge_through_a_waiting_room(servers: TestServers, tmp_path: Path) -> None:
    out = tmp_path / "room.json"
    html = tmp_path / "room.html"
    cmd = [sys.executable, "-m", "loadtest", "surge", "--start-hub", "--hub-servers", "local"]
    cmd += ["--pg-url", servers.admin_database_url, "--redis-url", servers.redis_url]
    cmd += ["--workers", "2", "--seats", "100", "--buyers", "60", "--watchers", "5"]
    cmd += ["--processes", "1", "--think-ms", "50", "--lapse-rate", "0", "--duration", "15"]
    # A fixed rate, so admissions come in several rounds and the order has ranks.
    cmd += ["--waiting-room", "--join-window", "2", "--late-share", "0.2", "--compare"]
    cmd += ["--admit-per-second", "10"]
    cmd += ["--no-ceiling", "--json", str(out), "--html", str(html)]
    log = tmp_path / "room.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, text=True)
        started = descendants_while_running(proc, timeout=150)
    stdout = log.read_text()
    assert proc.returncode == 0, stdout[-4000:]
    assert "audit: ok" in stdout and "without the room: audit: ok" in stdout
    report = json.loads(out.read_text())
    assert report["audit"]["ok"] is True
    assert report["audit"]["figures"]["double_sold_seats"] == 0
    assert report["meta"]["without_room_audit"]["ok"] is True
    room = report["waiting_room"]
    assert room["waiters"] == 60 and room["late"] > 0 and room["pre_opening"] > 0
    # Everyone was let in or told it sold out; nobody's join failed or was left waiting.
    outcomes = room["outcomes"]
    assert outcomes.get("admitted", 0) + outcomes.get("sold_out", 0) == 60, outcomes
    admission = room["time_to_admission_s"]
    assert admission["n"] == outcomes.get("admitted", 0) > 0
    assert 0 <= admission["p50"] <= admission["p99"] <= admission["max"] < 30
    gap = room["longest_gap_s"]
    assert gap["n"] > 0 and 0 < gap["max"] < 30
    rho = room["fairness"]["pre_opening_rho"]
    assert rho is not None and -1 <= rho <= 1
    # Admitted buyers held and confirmed with their tokens: no 403 not_admitted.
    surge = report["surge"]
    assert surge["holds"] > 0 and surge["bookings"] > 0
    assert not [code for code in surge["errors_by_code"] if "not_admitted" in code]
    for kind in ("hold", "confirm"):
        assert {"p50", "p95", "p99"} <= surge["latency_ms"][kind].keys(), kind
    # Both surges sold out, so the ratio of their sell-out times exists.
    assert room["sold_out_after_s"] > 0
    assert room["without_room"]["sold_out_after_s"] > 0
    assert room["sellout_ratio"] == pytest.approx(
        room["sold_out_after_s"] / room["without_room"]["sold_out_after_s"], rel=1e-2
    )
    for name in ("queue_update_every_2s", "fair_pre_opening_rho", "sellout_le_1_25x_without"):
        assert name in report["targets"]
    assert "waiting room: 60 waiters" in stdout and "fairness (Spearman" in stdout
    page = html.read_text()
    assert "Waiting room: queue length and admissions" in page
    assert "Time to admission p99" in page
    assert_all_gone(started)
