"""A short, bounded surge end to end: it starts its own hub, sells, audits, measures the ceiling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loadtest.processes import assert_all_gone, descendants_while_running
from tests.servers import TestServers

pytestmark = pytest.mark.slow


def test_short_surge_sells_audits_and_reports(servers: TestServers, tmp_path: Path) -> None:
    out = tmp_path / "surge.json"
    html = tmp_path / "surge.html"
    cmd = [sys.executable, "-m", "loadtest", "surge", "--start-hub", "--hub-servers", "local"]
    cmd += ["--pg-url", servers.admin_database_url, "--redis-url", servers.redis_url]
    cmd += ["--workers", "2", "--seats", "200", "--buyers", "20", "--watchers", "10"]
    cmd += ["--duration", "5", "--processes", "1", "--think-ms", "50"]
    cmd += ["--compare-duration", "3", "--throughput-seats", "2000"]
    cmd += ["--json", str(out), "--html", str(html)]
    log = tmp_path / "surge.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, text=True)
        started = descendants_while_running(proc, timeout=150)
    stdout = log.read_text()
    assert proc.returncode == 0, stdout[-4000:]
    assert "audit: ok" in stdout
    report = json.loads(out.read_text())
    assert {"meta", "surge", "throughput", "ceiling", "ratio", "targets", "audit"} <= report.keys()
    surge = report["surge"]
    assert surge["holds"] > 0 and surge["bookings"] > 0
    for key in ("holds_per_s", "bookings_per_s", "conflict_rate", "errors_by_code", "series"):
        assert key in surge
    for kind in ("hold", "confirm", "fanout"):
        assert {"p50", "p95", "p99"} <= surge["latency_ms"][kind].keys(), kind
    assert report["audit"]["ok"] is True
    assert report["audit"]["figures"]["double_sold_seats"] == 0
    assert report["ceiling"]["holds_per_s"] > 0 and report["ratio"] > 0
    # The ratio compares the hub's own back-to-back holds with the ceiling's.
    throughput = report["throughput"]["peak_holds_per_s"]
    assert report["ratio"] == round(throughput / report["ceiling"]["peak_holds_per_s"], 3)
    # The page leads with the one-screen summary and the charts; raw figures are folded.
    page = html.read_text()
    assert page.index('class="cards"') < page.index("<svg") < page.index("<details>")
    assert "Sell-out" in page and "Holds and bookings per second" in page
    assert "audit: skipped" not in stdout and "targets:" in stdout
    # Everything it started is gone: the hub and its workers, the ceiling, the clients.
    assert_all_gone(started)
