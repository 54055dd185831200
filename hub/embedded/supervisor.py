"""What both embedded servers share: ports, process ownership, stopping, small file helpers.

A process belongs to a server's folder when its working directory is inside it (PostgreSQL
runs in PGDATA, Redis in its ``dir``). Every check here goes through that rule, so a stale
pid file or a pid reused by an unrelated process is never mistaken for a live server, and a
stop never kills something that is not ours.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import psutil
import structlog

log = structlog.get_logger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
KILL_TIMEOUT = 5.0
# A free port can be taken between our pick and the server's bind: retry with another.
PORT_ATTEMPTS = 3
RESERVED_PORTS = frozenset({5432, 6379})


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started."""


@dataclasses.dataclass(slots=True)
class Server:
    """One running server as we know it: its main pid, port and whether we must stop it."""

    pid: int
    port: int
    owned: bool


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it.

    Raises:
        EmbeddedServerError: the package is not installed.
    """
    # Both server wheels do work at import time that we do not need.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def free_port() -> int:
    """A free TCP port on 127.0.0.1 from the ephemeral range (never 5432 or 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


def runs_in(pid: int, folder: Path) -> bool:
    """True if ``pid`` is alive and its working directory is ``folder`` or below it."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()).is_relative_to(folder)
    except psutil.Error:
        return False


def processes_in(folder: Path) -> list[psutil.Process]:
    """Live processes (other than us) whose working directory is inside ``folder``."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()).is_relative_to(folder):
                found.append(proc)
    return found


def stop_process(pid: int, polite: signal.Signals) -> None:
    """Signal ``pid`` politely, kill it after ``STOP_TIMEOUT``, and wait until it is gone."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(polite)
    except psutil.Error:
        return
    if wait_gone([proc], STOP_TIMEOUT):
        log.warning("embedded_server_killed", pid=pid)
        with contextlib.suppress(psutil.Error):
            proc.kill()
        wait_gone([proc], KILL_TIMEOUT)


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited; return those still alive after ``timeout``.

    A zombie counts as gone: a server reparented to init may stay one for a while, and
    ``psutil.wait_procs`` would wait for the reaping, not for the exit.
    """
    deadline = time.monotonic() + timeout
    while True:
        alive = [proc for proc in procs if _is_alive(proc)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _is_alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def clear_leftovers(folder: Path) -> None:
    """Wait for (then kill) processes of a crashed run still inside ``folder``."""
    leftovers = processes_in(folder)
    if not leftovers:
        return
    log.warning("embedded_leftovers_found", folder=str(folder), pids=[p.pid for p in leftovers])
    for proc in wait_gone(leftovers, KILL_TIMEOUT):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    wait_gone(leftovers, KILL_TIMEOUT)


def stop_tree(
    folder: Path,
    pid: int | None,
    half_started: bool,
    polite: signal.Signals,
    event: str,
) -> None:
    """Stop server ``pid`` and sweep ``folder`` for its leftovers.

    The sweep runs only when we stopped a server here or a launch of ours failed half way:
    a stale handle must never kill a server that someone else started since.
    """
    started = time.monotonic()
    if pid is not None and runs_in(pid, folder):
        stop_process(pid, polite)
    elif not half_started:
        return
    # Backends exit with their postmaster; anything still in the folder is a leftover.
    stragglers = processes_in(folder)
    for proc in stragglers:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    for proc in wait_gone(stragglers, KILL_TIMEOUT):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    wait_gone(stragglers, KILL_TIMEOUT)
    log.info(event, pid=pid, seconds=round(time.monotonic() - started, 2))


def read_pid(path: Path) -> int | None:
    """The first number in a pid file; None if the file is missing or holds no number."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_from(path: Path, offset: int) -> str:
    """A log file from ``offset`` on (what this start wrote); empty if it cannot be read."""
    try:
        with open(path, errors="replace") as handle:
            handle.seek(offset)
            return handle.read()
    except OSError:
        return ""


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit for a log line."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}"


@contextlib.contextmanager
def private_file(path: Path) -> Iterator[IO[str]]:
    """Write ``path`` atomically with mode 0600."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yield handle
    tmp.replace(path)
