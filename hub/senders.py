"""How a notification leaves the hub: the ``Sender`` interface, the log sender, and email.

Below ``hub.context`` (the hub holds the process's sender, and tests put their own
there), so this module imports nothing that imports the hub. ``make_sender`` picks
``SmtpSender`` when ``EVENTLY_SMTP_URL`` is set, else ``LogSender``.

A sender tells the outbox two kinds of failure apart: ``Undeliverable`` (this message was
refused: no address, a recipient or the content rejected with a 5xx) is the message's own
fault, counted against the outbox row; anything else (connection refused, timeout, a 4xx,
the server gone) is an outage of the service, counted by the email circuit breaker, and
the message waits, however long the outage lasts.

Each email carries ``Message-ID: <outbox-{id}.{kind}@{domain}>``, derived from its outbox
row: the outbox sends at least once (a crash between the server's acceptance and the
row's ``sent_at`` sends it again), and the stable Message-ID lets a receiver drop the
repeat.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
import structlog

from hub.settings import Settings

log = structlog.get_logger(__name__)


class Undeliverable(Exception):
    """This message cannot be delivered as it is (not an outage of the service)."""


class Sender(Protocol):
    async def send(
        self, email: str | None, kind: str, payload: dict[str, Any], *, outbox_id: int
    ) -> None:
        """Deliver one notification (``outbox_id``: its outbox row, stable across retries).

        Raises:
            Undeliverable: the message itself was refused; the outbox counts an attempt.
            Exception: any other failure is an outage: the email breaker counts it and the
                outbox keeps the notification for a later pass.
        """
        ...


class LogSender:
    """Writes each notification as a structured log line."""

    async def send(
        self, email: str | None, kind: str, payload: dict[str, Any], *, outbox_id: int
    ) -> None:
        log.info("notification_sent", kind=kind, to=email, outbox_id=outbox_id, payload=payload)


class SmtpSender:
    """Sends each notification as one email over SMTP (a connection per message).

    ``url`` is ``smtp://[user:pass@]host[:port]`` (port 25 by default, STARTTLS when the
    server offers it) or ``smtps://`` (implicit TLS, port 465 by default).
    """

    def __init__(self, url: str, from_address: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "localhost"
        self.implicit_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.from_address = from_address
        self.domain = parseaddr(from_address)[1].rpartition("@")[2] or "evently.local"
        self.timeout_s = timeout_s

    async def send(
        self, email: str | None, kind: str, payload: dict[str, Any], *, outbox_id: int
    ) -> None:
        if not email:
            raise Undeliverable("the user has no email address")
        message = compose(
            outbox_id, kind, payload, to=email, sender=self.from_address, domain=self.domain
        )
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.implicit_tls,
                timeout=self.timeout_s,
            )
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPSenderRefused) as exc:
            raise Undeliverable(str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600 and not isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                raise Undeliverable(str(exc)) from exc
            raise  # a 4xx, or our credentials refused: the service, not this message
        log.info("email_sent", kind=kind, outbox_id=outbox_id, message_id=message["Message-ID"])


def make_sender(settings: Settings) -> Sender:
    """The sender a hub starts with: SMTP when ``EVENTLY_SMTP_URL`` is set, else the log."""
    if settings.smtp_url:
        return SmtpSender(settings.smtp_url, settings.smtp_from, settings.smtp_timeout_seconds)
    return LogSender()


def message_id(outbox_id: int, kind: str, domain: str) -> str:
    """The Message-ID of an outbox row's email: the same on every attempt."""
    return f"<outbox-{outbox_id}.{kind}@{domain}>"


def compose(
    outbox_id: int, kind: str, payload: dict[str, Any], *, to: str, sender: str, domain: str
) -> EmailMessage:
    """The email for one notification: a subject and a plain-text body by kind.

    A confirmation's payload carries its ``receipt`` (lines, subtotal, discounts, total),
    written into the body; every body ends with the booking or event it is about.
    """
    subject, lines = _content(kind, payload)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = Address(addr_spec=to)
    message["Message-ID"] = message_id(outbox_id, kind, domain)
    message["X-Evently-Kind"] = kind
    message["Date"] = format_datetime(datetime.now(UTC))
    message.set_content("\n".join(lines) + "\n")
    return message


def _content(kind: str, payload: dict[str, Any]) -> tuple[str, list[str]]:
    reference = payload.get("reference")
    event = payload.get("event")
    if kind == "booking_confirmed":
        lines = [f"Your booking {reference} is confirmed.", ""]
        receipt = payload.get("receipt")
        if isinstance(receipt, dict):
            lines += _receipt_lines(receipt)
        lines += ["", f"Booking reference: {reference}"]
        return f"Booking {reference} confirmed", lines
    if kind == "booking_cancelled":
        refund = payload.get("refund_cents")
        lines = [f"Your booking {reference} is cancelled."]
        if isinstance(refund, int):
            lines.append(f"Refund: {Decimal(refund) / 100:.2f}, paid to your card.")
        lines += ["", f"Booking reference: {reference}"]
        return f"Booking {reference} cancelled", lines
    if kind == "waitlist_offer":
        lines = [f"Seats for {event} are held for you until {payload.get('expires_at')}.", ""]
        for seat in payload.get("seats") or []:
            if isinstance(seat, dict):
                lines.append(
                    f"  {seat.get('section')} row {seat.get('row')} seat {seat.get('number')}"
                    f"  {_money(seat.get('price'))}"
                )
        lines += ["", f"Hold: {payload.get('hold_id')}", "Book them before the hold expires."]
        return f"Seats are waiting for you: {event}", lines
    if kind == "event_cancelled":
        lines = [
            f"{event} is cancelled.",
            "Any booking you had for it is cancelled and refunded in full.",
            "",
            f"Event: {payload.get('event_id')}",
        ]
        return f"{event} is cancelled", lines
    return f"Evently: {kind}", [json.dumps(payload, indent=2, sort_keys=True, default=str)]


def _receipt_lines(receipt: dict[str, Any]) -> list[str]:
    lines = ["Receipt"]
    if receipt.get("group_name"):
        lines.append(f"Group: {receipt['group_name']}")
    for line in receipt.get("lines") or []:
        lines.append(
            f"  {line.get('section')} row {line.get('row')} seat {line.get('number')}"
            f"  {_money(line.get('price'))}"
        )
    lines.append(f"Subtotal: {_money(receipt.get('subtotal'))}")
    for discount in receipt.get("discounts") or []:
        lines.append(f"{discount.get('name')}: -{_money(discount.get('amount'))}")
    lines.append(f"Total: {_money(receipt.get('total'))}")
    return lines


def _money(value: Any) -> str:
    try:
        return f"{Decimal(str(value)):.2f}"
    except ArithmeticError:
        return str(value)
