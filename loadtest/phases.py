"""The surge's client processes and its timed phases, folded into one progress line a second.

The parent sends each client process ``("go", phase, start_at, duration, url, event_id)``
and gathers their per-second ticks and, at the end, their results (the protocol is in
``loadtest.client_process``). A phase can be ended early (the event sold out) with
``("stop",)``; the start time is a second ahead so every process begins together.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import queue
import time
from collections.abc import Callable
from typing import Any

import psutil

from loadtest import accounts
from loadtest.buyers import PASSWORD, ClientPlan, buyer_email
from loadtest.client_process import client_main


def parse_mix(text: str) -> tuple[float, float, float]:
    """``chosen=0.5,best=0.3,group=0.2`` -> normalised (chosen, best, group)."""
    parts = dict.fromkeys(("chosen", "best", "group"), 0.0)
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name.strip() not in parts:
            raise argparse.ArgumentTypeError(f"unknown mix part {name!r}")
        parts[name.strip()] = float(value)
    total = sum(parts.values())
    if total <= 0:
        raise argparse.ArgumentTypeError("the mix must not be all zero")
    return (parts["chosen"] / total, parts["best"] / total, parts["group"] / total)


class Clients:
    """The client processes and the two queues per process."""

    def __init__(self, plans: list[ClientPlan]) -> None:
        ctx = mp.get_context("spawn")
        self.outbox: mp.Queue[Any] = ctx.Queue()
        self.inboxes: list[mp.Queue[Any]] = [ctx.Queue() for _ in plans]
        self.procs = [
            ctx.Process(target=client_main, args=(plan, inbox, self.outbox), daemon=True)
            for plan, inbox in zip(plans, self.inboxes, strict=True)
        ]
        for proc in self.procs:
            proc.start()

    def send(self, *command: Any) -> None:
        for inbox in self.inboxes:
            inbox.put(command)

    def gather(
        self,
        kind: str,
        timeout: float,
        on_tick: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> dict[int, Any]:
        """Messages of ``kind`` from every process (ticks go to ``on_tick`` meanwhile)."""
        got: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(self.procs):
            try:
                message = self.outbox.get(timeout=0.2)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"client processes: no {kind} after {timeout:.0f}s"
                    ) from None
                dead = [p.pid for p in self.procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"client processes {dead} died") from None
                continue
            if message[0] == "failed":
                raise RuntimeError(f"client process {message[1]} failed:\n{message[2]}")
            if message[0] == "tick":
                if on_tick is not None:
                    on_tick(message[1], message[2])
            elif message[0] == kind:
                got[message[1]] = message[2]
        return got

    def close(self) -> None:
        self.send("quit")
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


class Progress:
    """Folds the per-process ticks into one line a second, and keeps the series."""

    def __init__(self, processes: int, hub_pids: list[int], seats: int) -> None:
        self.processes = processes
        self.seats = seats
        self.pending: dict[int, dict[int, dict[str, Any]]] = {}
        self.rows: list[dict[str, Any]] = []
        self.hub = [psutil.Process(pid) for pid in hub_pids if psutil.pid_exists(pid)]
        for proc in self.hub:
            proc.cpu_percent(None)
        self.sold_out = False
        self.sold_out_at: float | None = None
        self.waiting = 0  # in the waiting room's queue, as the waiters' ticks tell

    def hub_cpu(self) -> float | None:
        if not self.hub:
            return None
        total = 0.0
        for proc in self.hub:
            try:
                total += proc.cpu_percent(None)
            except psutil.NoSuchProcess:
                pass
        return total

    def tick(self, index: int, figures: dict[str, Any]) -> None:
        second = int(figures["second"])
        self.pending.setdefault(second, {})[index] = figures
        if len(self.pending[second]) < self.processes:
            return
        parts = self.pending.pop(second)
        row: dict[str, Any] = {"second": second, "hub_cpu": self.hub_cpu()}
        for key in (
            "hold_ok",
            "confirm_ok",
            "conflicts",
            "errors",
            "release_ok",
            "cancel_ok",
            "abandoned",
            "joined",  # the waiting room's queue (loadtest.waiters)
            "admitted",
            "turned_away",
        ):
            row[key] = sum(p.get(key, 0) for p in parts.values())
        row["ceiling_ok"] = sum(p.get("ceiling_hold_ok", 0) for p in parts.values())
        row["client_cpu"] = [parts[i]["cpu"] for i in sorted(parts)]
        first = parts[min(parts)]
        row.update(free=first["free"], held=first["held"], sold=first["sold"])
        self.rows.append(row)
        cpu = "+".join(f"{c:.0f}%" for c in row["client_cpu"])
        hub = f"  hub cpu {row['hub_cpu']:.0f}%" if row["hub_cpu"] is not None else ""
        if row["ceiling_ok"]:
            line = f"[{second:4d}s] back-to-back holds/s {row['ceiling_ok']:6d}"
        else:
            line = (
                f"[{second:4d}s] holds/s {row['hold_ok']:5d}  bookings/s {row['confirm_ok']:5d}"
                f"  conflicts {row['conflicts']:4d}  errors {row['errors']:3d}"
                f"  seats free/held/sold {row['free']}/{row['held']}/{row['sold']}"
            )
        if row["joined"] or self.waiting:
            self.waiting += row["joined"] - row["admitted"] - row["turned_away"]
            row["waiting"] = self.waiting
            line += f"  queue {self.waiting} admitted {row['admitted']}"
        print(f"{line}  client cpu {cpu}{hub}", flush=True)
        if first["sold"] == self.seats and first["mirror_seq"] is not None and not self.sold_out:
            self.sold_out = True
            self.sold_out_at = float(second)


async def seeded(plans: list[ClientPlan], database_url: str, secret: str) -> list[ClientPlan]:
    """The plans with tokens for every buyer, the accounts made directly (loadtest.accounts)."""
    emails = [buyer_email(p.run_token, n) for p in plans for n in p.buyer_ids]
    tokens = iter(await accounts.seed_buyers(database_url, secret, emails, PASSWORD))
    return [dataclasses.replace(p, tokens=tuple(next(tokens) for _ in p.buyer_ids)) for p in plans]


def plans_for(args: argparse.Namespace, url: str, event_id: str, token: str) -> list[ClientPlan]:
    k = max(1, args.processes)
    mix = parse_mix(args.mix)
    ws_url = url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    plans = []
    for i in range(k):
        buyer_ids = tuple(range(i, args.buyers, k))
        watchers = args.watchers // k + (1 if i < args.watchers % k else 0)
        probes = args.probes // k + (1 if i < args.probes % k else 0)
        plans.append(
            ClientPlan(
                index=i,
                base_url=url,
                ws_url=ws_url,
                event_id=event_id,
                run_token=token,
                buyer_ids=buyer_ids,
                total_buyers=args.buyers,
                watchers=watchers,
                probes=probes,
                mix=mix,
                cancel_rate=args.cancel_rate,
                lapse_rate=args.lapse_rate,
                think_ms=args.think_ms,
                profile=args.profile,
                max_per_user=args.max_per_user,
            )
        )
    return plans


def run_phase(
    clients: Clients,
    progress: Progress,
    name: str,
    url: str,
    duration: float,
    stop_early: bool,
    event_id: str | None = None,
    start_at: float | None = None,
    grace: float = 0.0,
) -> dict[int, Any]:
    """One phase in every client process, from ``start_at`` (default: a second from now);
    with ``stop_early``, stopped ``grace`` seconds after the event sold out."""
    if start_at is None:
        start_at = time.monotonic() + 1.0
    clients.send("go", name, start_at, duration, url, event_id)
    stopped = False

    def on_tick(index: int, figures: dict[str, Any]) -> None:
        nonlocal stopped
        progress.tick(index, figures)
        if not (stop_early and progress.sold_out and not stopped):
            return
        assert progress.sold_out_at is not None
        if progress.rows[-1]["second"] - progress.sold_out_at >= grace:
            stopped = True
            print(f"sold out after {progress.sold_out_at:.0f}s: stopping the surge", flush=True)
            clients.send("stop")

    return clients.gather("result", duration + 90, on_tick)
