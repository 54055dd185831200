"""Watching the processes a load-test command starts, and checking it stopped them all."""

from __future__ import annotations

import subprocess
import time

import psutil
import pytest


def descendants_while_running(proc: subprocess.Popen[str], timeout: float) -> list[psutil.Process]:
    """Every descendant seen while ``proc`` runs (sampled), then wait for it to end."""
    seen: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + timeout
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{proc.args!r} did not end in time")
        try:
            for child in parent.children(recursive=True):
                seen.setdefault(child.pid, child)
        except psutil.Error:
            pass
        time.sleep(0.2)
    return list(seen.values())


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def assert_all_gone(started: list[psutil.Process], within: float = 15) -> None:
    """Everything the command started has ended (workers are reaped a moment after their
    parent, so wait for that, ``within`` seconds at most)."""
    assert started, "expected the run to start processes"
    deadline = time.monotonic() + within
    while [p for p in started if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [(p.pid, p.cmdline()) for p in started if alive(p)]
