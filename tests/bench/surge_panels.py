"""``python -m tests.bench.surge_panels``: does watching the admin panel slow a surge down?

Issue 16's target: the surge's holds/s with 5 admin panels open is not measurably lower.
Runs the same surge (``python -m loadtest surge``) ``--runs`` times in each of two arms,
interleaved (run 1: without, then with; run 2: with, then without; and so on, so a drift of
the machine's load falls on both arms alike):

- without: nothing but the surge;
- with: ``--panels`` admin connections on ``/ws/admin`` (JSON, as the page uses it), each
  reading its one ``metrics`` message a second, from before the surge starts until it ends.

Each run starts a hub of its own exactly as ``loadtest surge --start-hub`` does
(``loadtest.launch.start_hub``: ``evently serve --workers N`` on fresh embedded servers, or
the local ones with ``--hub-servers local``), connects the panels as its bootstrap admin,
runs the surge against it with ``--url`` (the same buyers, seeding, audit and report; no
ceiling), and stops everything it started by PID. The panels run in this process, the
surge's clients in its own processes, so neither is in the hub's CPU.

Per run it prints holds/s (over the surge), the peak holds/s, the hold p99 (every placed
hold of the surge) and how many messages the panels read; at the end, per arm, the median
and min-max of holds/s and hold p99, and the ratios with/without of the medians. Arguments
after ``--`` go to ``loadtest surge`` as they are (e.g. ``-- --profile ramp``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from loadtest import surge
from loadtest.client import WatchClient
from loadtest.launch import StartedHub, start_hub, stop_process

ARMS = ("without", "with")
SURGE_TIMEOUT_EXTRA = 900.0  # signing up / seeding buyers and the audit, beyond --duration


@dataclass(frozen=True, slots=True)
class Run:
    arm: str
    holds_per_s: float
    peak_holds_per_s: float
    hold_p99_ms: float | None
    audit_ok: bool
    messages: int


class Panels:
    """``count`` admin connections reading ``/ws/admin`` until closed."""

    def __init__(self) -> None:
        self.conns: list[WatchClient] = []
        self.readers: list[asyncio.Task[None]] = []
        self.messages = 0
        self.count = 0
        self.all_heard = asyncio.Event()

    async def open(self, hub: StartedHub, count: int) -> None:
        async with httpx.AsyncClient(base_url=hub.url, timeout=30) as http:
            login = await http.post(
                "/api/v1/auth/login",
                json={"email": hub.admin_email, "password": hub.admin_password},
            )
            login.raise_for_status()
            token = login.json()["access_token"]
        ws_url = hub.url.replace("http://", "ws://") + "/ws/admin"
        self.count = count
        for _ in range(count):
            conn = await WatchClient.open(ws_url, subprotocol="json")
            await conn.send({"t": "hello", "token": token})
            self.conns.append(conn)
            self.readers.append(asyncio.create_task(self._read(conn)))
        # As many messages as panels: the feeds and the sales boards are running.
        try:
            await asyncio.wait_for(self.all_heard.wait(), 15)
        except TimeoutError:
            raise RuntimeError(
                f"the {count} admin panels got {self.messages} messages in 15 s"
            ) from None

    async def _read(self, conn: WatchClient) -> None:
        while True:
            if (await conn.recv())["t"] == "metrics":
                self.messages += 1
                if self.messages >= self.count:
                    self.all_heard.set()

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        for task in self.readers:
            with contextlib.suppress(BaseException):
                await task
        for conn in self.conns:
            with contextlib.suppress(Exception):
                await conn.close()


def surge_argv(args: argparse.Namespace) -> list[str]:
    """The surge's own flags, the same in both arms."""
    return [
        "--buyers", str(args.buyers),
        "--seats", str(args.seats),
        "--duration", str(args.duration),
        "--watchers", str(args.watchers),
        "--processes", str(args.processes),
        "--workers", str(args.workers),
        "--hub-servers", args.hub_servers,
        "--no-ceiling",
        *args.surge_args,
    ]  # fmt: skip


async def surge_with(
    hub: StartedHub, argv: list[str], panels: int, out: Path, log: BinaryIO
) -> tuple[int, int]:
    """Run the surge against ``hub`` with ``panels`` admin panels open throughout, its
    report to ``out`` and its output to ``log``; returns its exit status and the panels'
    message count."""
    cmd = [
        sys.executable, "-m", "loadtest", "surge", "--url", hub.url,
        "--database-url", hub.database_url, "--secret-key", hub.secret_key,
        "--redis-prefix", hub.redis_prefix, "--admin-email", hub.admin_email,
        "--admin-password", hub.admin_password, "--json", str(out), *argv,
    ]  # fmt: skip
    watching = Panels()
    try:
        if panels:
            await watching.open(hub, panels)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
        try:
            timeout = float(argv[argv.index("--duration") + 1]) + SURGE_TIMEOUT_EXTRA
            deadline = time.monotonic() + timeout
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the surge outlasted {timeout:.0f} s")
                await asyncio.sleep(0.5)
        finally:
            stop_process(proc)
    finally:
        await watching.close()
    return proc.returncode, watching.messages


def one_run(args: argparse.Namespace, arm: str, folder: Path, label: str) -> Run:
    """Start a hub as ``loadtest surge --start-hub`` would, surge it, stop it."""
    argv = surge_argv(args)
    parser = argparse.ArgumentParser()
    surge.add_arguments(parser)
    out, log_path = folder / f"{label}.json", folder / f"{label}.log"
    hub = start_hub(parser.parse_args(argv))
    try:
        panels = args.panels if arm == "with" else 0
        with open(log_path, "wb") as log:
            status, messages = asyncio.run(surge_with(hub, argv, panels, out, log))
    finally:
        hub.stop()
    if not out.exists():
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the surge wrote no report (exit {status}):\n{tail}")
    report = json.loads(out.read_text())
    s = report["surge"]
    return Run(
        arm,
        float(s["holds_per_s"]),
        float(s["peak_holds_per_s"]),
        s["latency_ms"]["hold"].get("p99"),
        status == 0 and bool(report["audit"].get("ok", True)),
        messages,
    )


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f} (min {min(values):.1f}, max {max(values):.1f})"


def main(args: argparse.Namespace) -> int:
    runs: list[Run] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="surge-panels-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(1, args.runs + 1):
            order = ARMS if n % 2 else ARMS[::-1]
            for arm in order:
                label = f"run{n}-{arm}"
                print(f"{label}: starting a hub and the surge...", flush=True)
                run = one_run(args, arm, folder, label)
                runs.append(run)
                p99 = "n/a" if run.hold_p99_ms is None else f"{run.hold_p99_ms:.1f} ms"
                watched = (
                    f", {args.panels} panels read {run.messages} messages" if arm == "with" else ""
                )
                print(
                    f"run {n} {arm:>7} panels: {run.holds_per_s:.1f} holds/s "
                    f"(peak {run.peak_holds_per_s:.1f}/s), hold p99 {p99}"
                    f"{watched}{'' if run.audit_ok else ', AUDIT FAILED'}",
                    flush=True,
                )
    at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"{args.runs} interleaved run(s) per arm: {args.buyers} buyers, {args.seats} seats, "
        f"{args.duration:g} s, {args.watchers} watchers, {args.workers} workers, "
        f"{args.hub_servers} servers; load before {load_before[0]:.2f}, "
        f"after {os.getloadavg()[0]:.2f}; at {at}"
    )
    medians: dict[str, tuple[float, float | None]] = {}
    for arm in ARMS:
        mine = [r for r in runs if r.arm == arm]
        rates = [r.holds_per_s for r in mine]
        p99s = [r.hold_p99_ms for r in mine if r.hold_p99_ms is not None]
        print(
            f"  {arm:>7} panels: holds/s {spread(rates)}; "
            f"hold p99 ms {spread(p99s) if p99s else 'n/a'}"
        )
        medians[arm] = (
            statistics.median(rates),
            statistics.median(p99s) if p99s else None,
        )
    (rate_without, p99_without), (rate_with, p99_with) = medians["without"], medians["with"]
    rate_ratio = f"{rate_with / rate_without:.3f}" if rate_without else "n/a"
    p99_ratio = f"{p99_with / p99_without:.3f}" if p99_with and p99_without else "n/a"
    print(f"  ratio with/without (medians): holds/s {rate_ratio}, hold p99 {p99_ratio}")
    failed = [r for r in runs if not r.audit_ok]
    if failed:
        print(f"  {len(failed)} run(s) failed the surge's audit", flush=True)
    return 1 if failed else 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="surges per arm, interleaved")
    p.add_argument("--panels", type=int, default=5, help="admin connections in the 'with' arm")
    p.add_argument("--buyers", type=int, default=300)
    p.add_argument("--seats", type=int, default=1000)
    p.add_argument("--duration", type=float, default=20.0, help="seconds of each surge")
    p.add_argument("--watchers", type=int, default=100, help="seat-map watchers")
    p.add_argument("--processes", type=int, default=2, help="surge client processes")
    p.add_argument("--workers", type=int, default=2, help="hub worker processes")
    p.add_argument("--hub-servers", choices=("embedded", "local"), default="embedded")
    p.add_argument("--keep", help="keep each surge's JSON report and log in this folder")
    args = p.parse_args(argv)
    args.surge_args = extra
    return args


if __name__ == "__main__":
    sys.exit(main(parse()))
