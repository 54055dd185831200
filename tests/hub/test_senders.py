"""Senders: the SMTP sender against a local aiosmtpd server (the message, its stable
Message-ID, a refused recipient as ``Undeliverable``, a server down as an outage), the
emails each notification kind makes, and which sender a hub starts with."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from hub.senders import (
    LogSender,
    SmtpSender,
    Undeliverable,
    compose,
    make_sender,
    message_id,
)
from hub.settings import Settings
from tests.smtp_server import SmtpServer, text_of

FROM = "Evently <hub@evently.test>"


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    smtp = SmtpServer()
    smtp.start()
    yield smtp
    smtp.stop()


def sender_for(server: SmtpServer) -> SmtpSender:
    return SmtpSender(server.url, FROM, timeout_s=2.0)


RECEIPT = {
    "reference": "EVT-ABC234",
    "group_name": None,
    "lines": [
        {"seat_id": "s1", "section": "Orchestra", "row": "A", "number": 1, "price": "60.00"},
        {"seat_id": "s2", "section": "Orchestra", "row": "A", "number": 2, "price": "60.00"},
    ],
    "subtotal": "120.00",
    "discounts": [{"name": "SPRING10", "kind": "code", "rate": 0.1, "amount": "12.00"}],
    "total": "108.00",
}


async def test_a_confirmation_reaches_the_server_with_its_receipt(server: SmtpServer) -> None:
    payload = {"booking_id": "b1", "reference": "EVT-ABC234", "receipt": RECEIPT}
    await sender_for(server).send("ann@example.com", "booking_confirmed", payload, outbox_id=41)
    [message] = server.mailbox.messages
    assert message["To"] == "ann@example.com" and message["From"] == FROM
    assert message["Message-ID"] == "<outbox-41.booking_confirmed@evently.test>"
    assert "EVT-ABC234" in message["Subject"]
    body = text_of(message)
    assert "Orchestra row A seat 1  60.00" in body
    assert "SPRING10: -12.00" in body and "Total: 108.00" in body


async def test_the_message_id_is_the_same_on_every_attempt(server: SmtpServer) -> None:
    sender = sender_for(server)
    for _ in range(2):
        await sender.send("ann@example.com", "booking_cancelled", {"reference": "R"}, outbox_id=7)
    ids = {m["Message-ID"] for m in server.mailbox.messages}
    assert ids == {message_id(7, "booking_cancelled", "evently.test")}


async def test_a_refused_recipient_is_undeliverable(server: SmtpServer) -> None:
    with pytest.raises(Undeliverable):
        await sender_for(server).send("nobody@example.com", "event_cancelled", {}, outbox_id=1)
    with pytest.raises(Undeliverable):
        await sender_for(server).send(None, "event_cancelled", {}, outbox_id=1)
    assert server.mailbox.messages == []


async def test_a_server_down_is_an_outage_not_undeliverable() -> None:
    smtp = SmtpServer()  # never started: nothing listens on its port
    with pytest.raises(Exception) as raised:
        await sender_for(smtp).send("ann@example.com", "event_cancelled", {}, outbox_id=1)
    assert not isinstance(raised.value, Undeliverable)


async def test_a_server_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)  # accepts, never greets

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        sender = SmtpSender(f"smtp://127.0.0.1:{port}", FROM, timeout_s=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(Exception) as raised:
            await sender.send("ann@example.com", "event_cancelled", {}, outbox_id=1)
        assert loop.time() - started < 2
        assert not isinstance(raised.value, Undeliverable)
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("kind", "payload", "subject", "says"),
    [
        (
            "booking_cancelled",
            {"reference": "EVT-XY", "refund_cents": 9100},
            "Booking EVT-XY cancelled",
            "Refund: 91.00",
        ),
        (
            "waitlist_offer",
            {
                "event": "Jazz Night",
                "hold_id": "h1",
                "expires_at": "2026-12-05T10:00:00Z",
                "seats": [{"section": "Balcony", "row": "B", "number": 3, "price": 45.5}],
            },
            "Seats are waiting for you: Jazz Night",
            "Balcony row B seat 3  45.50",
        ),
        (
            "event_cancelled",
            {"event": "Jazz Night", "event_id": "e1"},
            "Jazz Night is cancelled",
            "refunded in full",
        ),
    ],
)
def test_each_kind_has_its_email(
    kind: str, payload: dict[str, object], subject: str, says: str
) -> None:
    message = compose(3, kind, payload, to="a@example.com", sender=FROM, domain="evently.test")
    assert message["Subject"] == subject
    assert says in text_of(message)


def test_smtp_url_parts() -> None:
    sender = SmtpSender("smtp://mailer:p%40ss@mail.example:2525", FROM, 5.0)
    assert (sender.host, sender.port, sender.username, sender.password) == (
        "mail.example",
        2525,
        "mailer",
        "p@ss",
    )
    assert not sender.implicit_tls
    tls = SmtpSender("smtps://mail.example", FROM, 5.0)
    assert tls.implicit_tls and tls.port == 465 and tls.username is None


def test_the_sender_follows_the_settings() -> None:
    assert isinstance(make_sender(Settings()), LogSender)
    smtp = make_sender(Settings(smtp_url="smtp://localhost:2525"))
    assert isinstance(smtp, SmtpSender) and smtp.port == 2525
