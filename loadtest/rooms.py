"""An event's waiting room, turned on and off through the admin API (DESIGN §4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx


def admin_headers(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    """The admin's bearer header (``client``'s base URL is the API's, ``…/api/v1``)."""
    login = client.post("/auth/login", json={"email": email, "password": password})
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def turn_on(
    client: httpx.Client,
    admin: dict[str, str],
    event_id: str,
    opens_at: dt.datetime,
    admit_per_second: float | None = None,
    session_seconds: int | None = None,
) -> dict[str, Any]:
    """``PUT /events/{id}/waiting-room``: admissions from ``opens_at``, at a fixed rate or
    (``admit_per_second`` None) adaptive; returns the room as the hub shows it."""
    body: dict[str, Any] = {"opens_at": opens_at.isoformat()}
    if admit_per_second is not None:
        body["admit_per_second"] = admit_per_second
    if session_seconds is not None:
        body["session_seconds"] = session_seconds
    reply = client.put(f"/events/{event_id}/waiting-room", json=body, headers=admin)
    if reply.status_code != 200:
        raise RuntimeError(f"turning the waiting room on: {reply.status_code} {reply.text[:500]}")
    room: dict[str, Any] = reply.json()
    return room


def turn_off(client: httpx.Client, admin: dict[str, str], event_id: str) -> None:
    """``DELETE /events/{id}/waiting-room`` (everyone still waiting is admitted)."""
    client.delete(f"/events/{event_id}/waiting-room", headers=admin)
