"""``python -m hub.embedded ROOT``: the embedded servers, run for another program.

Starts (or adopts) the servers under ``ROOT``, prints ``{"database_url": ..., "redis_url":
...}`` as one line on standard output, then keeps them until its standard input reaches end
of file (the program that started it closed the pipe, or died) or it gets SIGTERM / SIGINT;
then it stops them and exits 0. Logs go to standard error, so standard output carries only
that line. A start that fails exits 1 with the reason on standard error.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType

from hub import logs
from hub.embedded.servers import EmbeddedServers
from hub.embedded.supervisor import EmbeddedServerError
from hub.settings import Settings, SettingsError


class _Stop(Exception):
    """Raised from a signal handler so that the servers are stopped in ``finally``."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hub.embedded",
        description="run the embedded PostgreSQL and Redis until standard input closes",
    )
    parser.add_argument("root", type=Path, help="folder of the servers' data")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_environ()
    except SettingsError as exc:
        print(f"hub.embedded: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    servers = EmbeddedServers(args.root)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_stop)
    try:
        try:
            database_url, redis_url = servers.start()
        except EmbeddedServerError as exc:
            print(f"hub.embedded: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"database_url": database_url, "redis_url": redis_url}), flush=True)
        sys.stdin.buffer.read()  # returns at end of file
    except _Stop:
        pass
    finally:
        # A second signal must not interrupt the shutdown of the servers.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        servers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
