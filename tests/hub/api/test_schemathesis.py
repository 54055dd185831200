"""Schemathesis against the hub's own ``/api/v1/openapi.json``, from the suite.

A hub runs in its own process (``tests.live.hub_process``) and the schemathesis CLI runs
against it, bounded in time: examples, coverage (boundary and negative values), fuzzing
and the stateful phase, which follows the links schemathesis infers between operations
(an event created by ``POST /events`` is then held, booked, patched...). Admin-only
operations are called with an admin's token and every other with a user's, so both reach
their logic rather than stopping at 401/403. Checks: no 5xx, every response matches its
documented schema, and no status code the document does not list. The run prints its
counts (operations, test cases, failures) and the test fails on any failure.

Left out: the operations that end the sessions the run depends on (sign-out, password
change, role change); their own tests cover them.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx
import pytest

from hub.api.catalog import build_api
from hub.settings import Settings
from tests.conftest import Account
from tests.factories import make_event
from tests.live import hub_process

pytestmark = pytest.mark.slow

# Bounds of the run: examples per operation and phase, and the wall-clock budget of the
# whole run (fuzzing and the stateful phase stop when it is spent).
MAX_EXAMPLES = 12
MAX_SECONDS = 45
SEED = 20_191_905
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
# Operations that would revoke the tokens of the run (or change a role) midway.
SESSION_ENDERS = r"/auth/logout|/users/me/password|^/api/v1/users/\{[a-z_]+\}$"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def _config(user: Account, admin: Account) -> str:
    """schemathesis.toml: the user's token for every operation, the admin's for admin ones."""
    lines = [f'headers = {{ Authorization = "Bearer {user.token}" }}', ""]
    for endpoint in build_api().endpoints:
        if endpoint.admin_only:
            operation_id = f"{endpoint.method.lower()}_{endpoint.handler.__name__}"
            lines += [
                "[[operations]]",
                f'include-operation-id = "{operation_id}"',
                f'headers = {{ Authorization = "Bearer {admin.token}" }}',
                "",
            ]
    return "\n".join(lines)


async def _account(http: httpx.AsyncClient, path: str, body: dict[str, str]) -> Account:
    response = await http.post(f"/api/v1/auth/{path}", json=body)
    assert response.status_code in (200, 201), response.text
    data = response.json()
    return Account(data["user"]["id"], body["email"], body["password"], data["access_token"])


async def test_schemathesis_finds_no_failure(
    settings: Settings, admin_credentials: tuple[str, str], tmp_path: Path
) -> None:
    async with hub_process(settings) as hub, httpx.AsyncClient(base_url=hub.base) as http:
        email, password = admin_credentials
        admin = await _account(http, "login", {"email": email, "password": password})
        user = await _account(
            http,
            "register",
            {"email": "fuzz-user@example.com", "password": "fuzzing password", "name": "Fuzz"},
        )
        await make_event(http, admin)  # something to list and look at from the first call
        (tmp_path / "schemathesis.toml").write_text(_config(user, admin))
        proc = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "--no-color",
            "--config-file",
            str(tmp_path / "schemathesis.toml"),
            "run",
            f"{hub.base}/api/v1/openapi.json",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--max-time",
            str(MAX_SECONDS),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--request-timeout",
            "20",
            "--exclude-path-regex",
            SESSION_ENDERS,
            "--suppress-health-check",
            "all",
            cwd=tmp_path,  # its cache directory goes there, not into the checkout
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(proc.communicate(), MAX_SECONDS + 60)
    text = output.decode(errors="replace")
    summary = _summary(text)
    print(f"\nschemathesis: {summary}")
    assert proc.returncode == 0, text[-20_000:]
    assert summary["operations"] >= len(build_api().endpoints) - 3, summary
    assert summary["failures"] == 0, text[-20_000:]


def _summary(text: str) -> dict[str, int]:
    """Operations tested, test cases generated and failures found, from the console's summary
    (its lines are printed as they are)."""
    for line in text.splitlines():
        if any(key in line for key in ("Tested:", "generated", "Scenarios:", "API Links:")):
            print(line.rstrip())
    tested = re.search(r"Tested:\s+(\d+)", text)
    cases = re.search(r"(\d+) generated", text)
    failed = re.search(r"(\d+) failed", text)
    return {
        "operations": int(tested.group(1)) if tested else 0,
        "cases": int(cases.group(1)) if cases else 0,
        "failures": int(failed.group(1)) if failed else 0,
    }
