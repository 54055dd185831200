"""Finding the server processes a test root left behind, by working directory or command line."""

from __future__ import annotations

import os
from pathlib import Path

import psutil


def processes_under(root: Path) -> list[psutil.Process]:
    """Live postgres / redis-server processes working in, or naming, ``root``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            in_root = Path(proc.cwd()).is_relative_to(root) or str(root) in " ".join(proc.cmdline())
            if in_root and ("postgres" in proc.name() or "redis" in proc.name()):
                found.append(proc)
        except psutil.Error:
            continue
    return found
