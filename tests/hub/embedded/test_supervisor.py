"""The shared supervisor: ownership by working directory, stopping for sure, small helpers."""

from __future__ import annotations

import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.embedded import supervisor
from hub.embedded.supervisor import (
    RESERVED_PORTS,
    free_port,
    private_file,
    processes_in,
    read_from,
    read_pid,
    redact,
    runs_in,
    stop_process,
    stop_tree,
)

# A child that ignores the polite signal and says so once it does.
STUBBORN = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    "print('ready', flush=True); time.sleep(60)"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "server"
    path.mkdir()
    return path


@pytest.fixture
def child_in(folder: Path) -> Iterator[subprocess.Popen[str]]:
    """A process working in ``folder`` that ignores SIGTERM; killed afterwards in any case."""
    proc = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], cwd=folder, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    yield proc
    proc.kill()
    proc.wait()


def test_redact_hides_only_the_password() -> None:
    url = "postgresql://postgres:s3cret@127.0.0.1:40000/evently"
    assert redact(url) == "postgresql://postgres:***@127.0.0.1:40000/evently"
    assert redact("redis://:pw@127.0.0.1:40001/0") == "redis://:***@127.0.0.1:40001/0"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_free_port_skips_the_standard_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    picks = iter([5432, 6379, 41234])

    class FakeSocket:
        def __init__(self, *args: Any) -> None:
            self.port = next(picks)

        def __enter__(self) -> FakeSocket:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def bind(self, address: tuple[str, int]) -> None:
            assert address == ("127.0.0.1", 0)

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(supervisor.socket, "socket", FakeSocket)
    assert free_port() == 41234


def test_free_port_is_bindable_and_not_reserved() -> None:
    port = free_port()
    assert port not in RESERVED_PORTS
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_read_pid(tmp_path: Path) -> None:
    pidfile = tmp_path / "postmaster.pid"
    assert read_pid(pidfile) is None
    pidfile.write_text("4242\n/some/data\n")
    assert read_pid(pidfile) == 4242
    pidfile.write_text("not a pid\n")
    assert read_pid(pidfile) is None
    pidfile.write_text("")
    assert read_pid(pidfile) is None


def test_read_from_returns_what_was_written_after_the_offset(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    assert read_from(log, 0) == ""
    log.write_text("old run\n")
    offset = log.stat().st_size
    with log.open("a") as handle:
        handle.write("Address already in use\n")
    assert read_from(log, offset) == "Address already in use\n"


def test_private_file_is_0600_and_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("old")
    with private_file(path) as handle:
        handle.write('{"new": true}')
        assert path.read_text() == "old", "the old file stays until the new one is complete"
    assert path.read_text() == '{"new": true}'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]


def test_a_process_belongs_to_the_folder_it_works_in(
    folder: Path, tmp_path: Path, child_in: subprocess.Popen[str]
) -> None:
    assert runs_in(child_in.pid, folder)
    assert not runs_in(child_in.pid, tmp_path / "elsewhere")
    assert child_in.pid in [proc.pid for proc in processes_in(folder)]
    child_in.kill()
    child_in.wait()
    assert not runs_in(child_in.pid, folder)
    assert processes_in(folder) == []


def test_stop_process_kills_what_ignores_the_polite_signal(
    monkeypatch: pytest.MonkeyPatch, child_in: subprocess.Popen[str]
) -> None:
    monkeypatch.setattr(supervisor, "STOP_TIMEOUT", 0.3)
    started = time.monotonic()
    stop_process(child_in.pid, signal.SIGTERM)
    assert child_in.wait(timeout=5) == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_stop_tree_leaves_a_folder_alone_without_a_server_of_ours(
    folder: Path, child_in: subprocess.Popen[str]
) -> None:
    # A stale handle (no pid of ours, no half-finished launch) must never kill what runs there.
    stop_tree(folder, None, False, signal.SIGTERM, "test_stopped")
    assert runs_in(child_in.pid, folder)


def test_stop_tree_sweeps_the_leftovers_of_a_launch_that_failed_half_way(
    monkeypatch: pytest.MonkeyPatch, folder: Path, child_in: subprocess.Popen[str]
) -> None:
    monkeypatch.setattr(supervisor, "KILL_TIMEOUT", 0.3)
    stop_tree(folder, None, True, signal.SIGTERM, "test_stopped")
    assert child_in.wait(timeout=5) == -signal.SIGKILL
    assert processes_in(folder) == []
