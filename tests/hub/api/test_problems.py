"""An unexpected error in a handler: a 500 problem+json, logged once as a JSON line, and the
client's keep-alive connection survives it (a real uvicorn process, the hub's own options).

The failing route is registered by this test on the hub's own app, in a module written to
the test's temporary folder: production code has no switch for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from hub.settings import Settings
from tests.live import free_port, hub_env

ROOT = Path(__file__).resolve().parents[3]
FAILING_PATH = "/api/v1/test-only/fail"
FAILING_SOCKET = "/ws/test-only/fail"
FAILING_APP = f'''
from starlette.routing import Route, WebSocketRoute

from hub.asgi import create as create_hub


async def fail(request):
    raise RuntimeError("deliberate failure for the test")


async def fail_socket(websocket):
    raise RuntimeError("deliberate socket failure for the test")


def create():
    app = create_hub()
    app.router.routes.insert(0, Route("{FAILING_PATH}", fail))
    app.router.routes.insert(0, WebSocketRoute("{FAILING_SOCKET}", fail_socket))
    return app
'''


@contextlib.asynccontextmanager
async def failing_hub(settings: Settings, folder: Path, stderr: list[str]) -> AsyncIterator[str]:
    """The hub with one failing route in its own uvicorn process; its stderr, once the
    process has stopped, lands in ``stderr``."""
    (folder / "failing_hub_app.py").write_text(FAILING_APP)
    port = free_port()
    code = (
        "import uvicorn; from hub.cli import uvicorn_options; "
        f"uvicorn.run('failing_hub_app:create', **uvicorn_options('127.0.0.1', {port}, 1))"
    )
    env = hub_env(settings)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(ROOT)])
    proc = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-c", code], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{base}/readyz")).status_code == 200:
                        break
                assert proc.poll() is None, "the hub process died"
                await asyncio.sleep(0.05)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        stderr.extend(err.splitlines())


def _json_lines(stderr: list[str]) -> list[dict[str, Any]]:
    """Every line the process wrote to stderr, each of which must be one JSON object."""
    lines = [line for line in stderr if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a log line is not JSON: {line!r}\n" + "\n".join(lines))
    return records


def _client_address(response: httpx.Response) -> Any:
    return response.extensions["network_stream"].get_extra_info("client_addr")


async def test_an_unexpected_error_is_a_500_logged_once_and_keeps_the_connection(
    settings: Settings, tmp_path: Path
) -> None:
    stderr: list[str] = []
    async with (
        failing_hub(settings, tmp_path, stderr) as base,
        httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=1)) as http,
    ):
        addresses = []
        for _ in range(2):
            failed = await http.get(FAILING_PATH)
            assert failed.status_code == 500
            assert failed.headers["content-type"] == "application/problem+json"
            assert failed.headers["x-request-id"]
            assert failed.json()["code"] == "internal_error"
            assert "deliberate" not in failed.text  # the client is not told the internals
            addresses.append(_client_address(failed))
            # The next request rides the same connection and is answered.
            listed = await http.get("/api/v1/events")
            assert listed.status_code == 200, listed.text
            addresses.append(_client_address(listed))
        assert len(set(addresses)) == 1, addresses

    records = _json_lines(stderr)
    failures = [r for r in records if r.get("event") == "unhandled_error"]
    assert len(failures) == 2, stderr
    for record in failures:
        assert record["path"] == FAILING_PATH
        assert "RuntimeError: deliberate failure for the test" in record["exception"]
    assert sum("deliberate failure" in line for line in stderr) == 2, stderr


async def test_the_servers_own_error_logs_are_json_lines_too(
    settings: Settings, tmp_path: Path
) -> None:
    # A WebSocket handler's error reaches uvicorn, which logs it through the standard
    # library: that line must be JSON like the hub's own.
    stderr: list[str] = []
    async with failing_hub(settings, tmp_path, stderr) as base:
        url = base.replace("http://", "ws://") + FAILING_SOCKET
        with pytest.raises(InvalidStatus):
            async with connect(url):
                pass
    records = _json_lines(stderr)
    failures = [r for r in records if "deliberate socket failure" in r.get("exception", "")]
    assert len(failures) == 1, stderr
    assert failures[0]["logger"] == "uvicorn.error"
    assert failures[0]["level"] == "error"
