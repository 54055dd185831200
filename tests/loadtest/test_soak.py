"""The soak, shortened to one 24-second cycle with one fault (Redis killed and restarted
empty) on its own private servers: the invariants hold, the resources are sampled against a
baseline, the report is written, and nothing it started is left running."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.loadtest.processes import assert_all_gone, descendants_while_running

pytestmark = pytest.mark.slow


def _soak_leftovers() -> list[tuple[int, list[str]]]:
    """Processes still running on a soak's folder (the embedded PostgreSQL daemonises, so
    it is not a descendant of the soak)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any("evently-soak-" in part for part in cmdline):
            found.append((proc.info["pid"], cmdline))
    return found


def test_one_cycle_soak_holds_its_invariants_and_reports(tmp_path: Path) -> None:
    before = {pid for pid, _ in _soak_leftovers()}
    out, html = tmp_path / "soak.json", tmp_path / "soak.html"
    cmd = [sys.executable, "-m", "loadtest", "soak", "--minutes", "0.4", "--faults", "redis"]
    cmd += ["--warmup-seconds", "6", "--hold-ttl", "5", "--settle-seconds", "8"]
    cmd += ["--json", str(out), "--html", str(html)]
    log = tmp_path / "soak.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, text=True)
        started = descendants_while_running(proc, timeout=240)
    stdout = log.read_text()
    assert proc.returncode in (0, 1), stdout[-4000:]
    report = json.loads(out.read_text())
    # The one fault was injected and the hub came back by itself.
    (cycle,) = report["cycles"]
    assert cycle["fault"]["name"] == "redis" and cycle["fault"]["error"] is None, cycle["fault"]
    assert cycle["fault"]["recovery_s"] is not None
    assert cycle["fault"]["hold_again_s"] is not None, cycle["fault"]
    assert cycle["fault"]["booking_again_s"] is not None, cycle["fault"]
    # Load ran through it: bookings, cancellations and an on-sale behind a waiting room.
    answers = report["answers"]
    assert answers["confirm_ok"] > 0 and answers["cancel_ok"] > 0, answers
    assert report["queue"].get("joined", 0) > 0, report["queue"]
    # Every invariant held, at the cycle's check and at the end.
    assert report["invariants_ok"] is True, stdout[-4000:]
    for check in (cycle["check"], report["final_check"]):
        assert set(check["violations"]) == {"seats", "watchers", "duplicates", "money"}
        assert not any(check["violations"].values()), check["reasons"]
    assert report["final_check"]["figures"]["bookings_seen"] > 0
    # Resources: a baseline, a peak and an end for each figure, with a verdict.
    figures = {v["figure"] for v in report["verdicts"]}
    assert figures == {"rss_mib", "fds", "pg_connections", "redis_lasting_keys",
                       "redis_keys_per_event"}  # fmt: skip
    for verdict in report["verdicts"]:
        assert verdict["baseline"] is not None and verdict["end"] is not None, verdict
    assert report["baseline"]["rss_mib"] > 0 and report["baseline"]["pg_connections"] > 0
    assert len(report["samples"]) >= 5
    assert "invariants: 2 checks" in stdout and "resources (baseline / peak / end" in stdout
    # The page: one chart per figure, self-contained.
    page = html.read_text()
    for title in ("Hub memory", "PostgreSQL connections", "Redis keys", "file descriptors"):
        assert title in page, title
    assert page.count("<svg") >= 8 and "<script" not in page
    # Nothing left: the hub, its workers, the servers of every restart.
    assert_all_gone(started)
    assert [p for p in _soak_leftovers() if p[0] not in before] == []
