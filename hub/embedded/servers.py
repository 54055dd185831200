"""Both embedded servers under one root: credentials, ownership, start and stop in order.

A server still running for this root is adopted, not started twice. It is ours to stop if
we started it, or if the process recorded in ``owner.json`` is gone (an orphan of a hub that
was killed); a server owned by another live hub is used and left running. Starts on one root
are serialised by an ``flock`` on ``root/.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import psutil

from hub.embedded.postgres import EmbeddedPostgres
from hub.embedded.redis import EmbeddedRedis
from hub.embedded.supervisor import EmbeddedServerError, private_file


class EmbeddedServers:
    """A private PostgreSQL and Redis under ``root``; see the package docstring."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.postgres = EmbeddedPostgres(self.root)
        self.redis = EmbeddedRedis(self.root)
        self.pgdata = self.postgres.pgdata
        self.redis_dir = self.redis.folder

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
                credentials = self._load_credentials()
                guest = self._other_owner_alive()
                self.postgres.start(credentials["postgres_password"], guest)
                self.redis.start(credentials["redis_password"], guest)
                if not guest:
                    self._write_owner()
            self.postgres.ensure_database()
        except BaseException:
            self.stop()
            raise
        return self.database_url, self.redis_url

    def stop(self) -> None:
        """Stop the servers we own and wait until their processes are gone.

        Sends the polite signal (PostgreSQL fast shutdown, Redis SIGTERM), kills after
        ``STOP_TIMEOUT`` seconds, then kills any straggler still running inside the root.
        Redis goes first: the hub may still be flushing to it. Safe to call twice, and
        after a failed ``start``.
        """
        self.redis.stop()
        self.postgres.stop()
        with contextlib.suppress(OSError, ValueError, AttributeError):
            owner = json.loads((self.root / "owner.json").read_text())
            if owner.get("pid") == os.getpid():
                (self.root / "owner.json").unlink()

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
        return self.postgres.url()

    @property
    def redis_url(self) -> str:
        """URL of Redis database 0; only valid after ``start``."""
        return self.redis.url()

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
        if self.postgres.initialized:
            raise EmbeddedServerError(
                f"{path} is missing but {self.pgdata} exists: its password is lost"
            )
        credentials = {
            "postgres_password": secrets.token_urlsafe(24),
            "redis_password": secrets.token_urlsafe(24),
        }
        with private_file(path) as handle:
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
