"""The embedded Redis: private (loopback, password, 0600 config), adopted when running, stopped."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.embedded.redis import EmbeddedRedis, conf_port, ready
from hub.embedded.supervisor import RESERVED_PORTS, EmbeddedServerError, runs_in
from tests.hub.embedded.processes import processes_under

pytestmark = pytest.mark.slow

PASSWORD = "test-redis-password"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "evently"
    path.mkdir()
    yield path
    for proc in processes_under(path):
        proc.kill()


def test_start_answers_only_with_the_password_and_stop_leaves_nothing(root: Path) -> None:
    server = EmbeddedRedis(root)
    with pytest.raises(EmbeddedServerError):
        _ = server.url()
    started = server.start(PASSWORD, guest=False)
    try:
        assert started.owned and started.port not in RESERVED_PORTS
        assert server.url() == f"redis://:{PASSWORD}@127.0.0.1:{started.port}/0"
        assert ready(started.port, PASSWORD)
        assert not ready(started.port, "wrong password")
        conf = root / "redis" / "redis.conf"
        assert conf_port(conf) == started.port
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600
        lines = conf.read_text().splitlines()
        assert "bind 127.0.0.1" in lines and f"requirepass {PASSWORD}" in lines
        assert runs_in(started.pid, root / "redis")
    finally:
        server.stop()
    assert not ready(started.port, PASSWORD)
    assert processes_under(root) == []
    server.stop()  # a second stop is harmless


def test_a_running_server_is_adopted_and_a_guest_leaves_it_running(root: Path) -> None:
    owner = EmbeddedRedis(root)
    first = owner.start(PASSWORD, guest=False)
    try:
        guest = EmbeddedRedis(root)
        adopted = guest.start(PASSWORD, guest=True)
        assert (adopted.pid, adopted.port, adopted.owned) == (first.pid, first.port, False)
        guest.stop()
        assert ready(first.port, PASSWORD), "a guest must not stop the owner's server"

        heir = EmbeddedRedis(root)
        assert heir.start(PASSWORD, guest=False).owned
        heir.stop()
        assert not ready(first.port, PASSWORD)
    finally:
        owner.stop()
    assert processes_under(root) == []


def test_conf_port_of_a_missing_or_portless_file_is_none(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    assert conf_port(conf) is None
    conf.write_text("bind 127.0.0.1\n")
    assert conf_port(conf) is None
    conf.write_text("bind 127.0.0.1\nport 41000\n")
    assert conf_port(conf) == 41000
