"""Email from the outbox over SMTP, against a local aiosmtpd server: each kind (confirmation
with its receipt, cancellation, waitlist offer, event cancellation) sends one email; with
the server down the email breaker opens and the outbox keeps the messages, which are
delivered once after the server is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub.breakers import Breakers
from hub.context import Hub
from hub.senders import SmtpSender, message_id
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, book, join_waitlist, waitlist_of
from tests.hub.breaker_helpers import quick_breakers
from tests.smtp_server import SmtpServer, text_of
from tests.waiting import eventually

FROM = "Evently <hub@evently.test>"


@pytest.fixture
async def smtp(hub: Hub) -> AsyncIterator[SmtpServer]:
    """A running local SMTP server that the hub's outbox sends to, for the test."""
    server = SmtpServer()
    await asyncio.to_thread(server.start)
    previous = hub.sender
    hub.sender = SmtpSender(server.url, FROM, timeout_s=2.0)
    try:
        yield server
    finally:
        hub.sender = previous
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def breakers(hub: Hub) -> AsyncIterator[Breakers]:
    async with quick_breakers(hub, breaker_failure_threshold=2) as quick:
        yield quick


async def outbox_row(hub: Hub, kind: str, key: str, value: str) -> Any:
    return await hub.db.fetchrow(
        "SELECT id, attempts, sent_at FROM outbox WHERE kind = $1 AND payload->>$2 = $3",
        kind,
        key,
        value,
    )


async def test_each_kind_sends_one_email(
    client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
    other_user: Account,
    smtp: SmtpServer,
    breakers: Breakers,
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)  # 2 seats
    booked = await book(client, user, event_id=event["id"], quantity=2)
    assert booked.status_code == 201, booked.text
    reference = booked.json()["reference"]

    # The confirmation, with its receipt and a Message-ID made from its outbox row.
    assert await eventually(lambda: bool(smtp.mailbox.about(reference)), within=10)
    [confirmation] = smtp.mailbox.about(reference)

    async def marked_sent() -> bool:
        row = await outbox_row(hub, "booking_confirmed", "reference", reference)
        return row["sent_at"] is not None

    assert await eventually(marked_sent, within=5)  # just after the server's acceptance
    row = await outbox_row(hub, "booking_confirmed", "reference", reference)
    assert confirmation["Message-ID"] == message_id(row["id"], "booking_confirmed", "evently.test")
    assert confirmation["To"] == user.email
    body = text_of(confirmation)
    assert f"Booking reference: {reference}" in body
    assert "Receipt" in body and f"Total: {booked.json()['total']:.2f}" in body

    # A cancellation, and the waitlist offer it makes.
    await join_waitlist(client, other_user, event["id"], 2)
    cancel = await client.post(f"{API}/bookings/{booked.json()['id']}/cancel", headers=user.headers)
    assert cancel.status_code == 200, cancel.text
    assert (await waitlist_of(client, other_user, event["id"]))["status"] == "offered"
    name = event["name"]

    def to(who: Account, subject: str) -> list[Any]:
        return [
            m for m in smtp.mailbox.messages if m["To"] == who.email and subject in m["Subject"]
        ]

    assert await eventually(lambda: bool(to(user, f"Booking {reference} cancelled")), within=10)
    assert await eventually(lambda: bool(to(other_user, "Seats are waiting")), within=10)

    # The event's cancellation tells the user holding the offer.
    cancelled = await client.post(f"{API}/events/{event['id']}/cancel", headers=admin.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert await eventually(lambda: bool(to(other_user, f"{name} is cancelled")), within=10)

    await asyncio.sleep(1.5)  # later passes send nothing again
    assert len(to(user, f"Booking {reference} confirmed")) == 1
    assert len(to(user, f"Booking {reference} cancelled")) == 1
    assert len(to(other_user, "Seats are waiting")) == 1
    assert len(to(other_user, f"{name} is cancelled")) == 1


async def test_smtp_down_opens_the_breaker_keeps_and_then_delivers_once(
    client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
    smtp: SmtpServer,
    breakers: Breakers,
) -> None:
    event = await make_event(client, admin, rows=2, seats_per_row=5)
    await asyncio.to_thread(smtp.stop)
    references = []
    for _ in range(3):
        booked = await book(client, user, event_id=event["id"], quantity=1)
        assert booked.status_code == 201, booked.text
        references.append(booked.json()["reference"])

    # The outbox meets the server down: the breaker opens, the messages are kept.
    assert await eventually(lambda: breakers.email.state == "open", within=10)
    state = hub.breakers.states()["email"]
    assert state["state"] == "open" and state["last_error"]
    for reference in references:
        row = await outbox_row(hub, "booking_confirmed", "reference", reference)
        assert row["sent_at"] is None and row["attempts"] == 0
    metrics = (await client.get("/metrics")).text
    assert 'evently_breaker_state{breaker="email"} 2.0' in metrics

    # Down for a while: several reset periods pass, half-open trials fail, nothing is
    # given up.
    await asyncio.sleep(2.5)
    assert smtp.mailbox.about(references[0]) == []

    await asyncio.to_thread(smtp.start)

    def delivered() -> bool:
        return all(smtp.mailbox.about(r) for r in references)

    assert await eventually(delivered, within=10)
    assert breakers.email.state == "closed"
    await asyncio.sleep(1.5)  # another pass must not send them again
    for reference in references:
        assert len(smtp.mailbox.about(reference)) == 1
        row = await outbox_row(hub, "booking_confirmed", "reference", reference)
        assert row["sent_at"] is not None
