"""A local SMTP server for the email tests: aiosmtpd in its own thread, keeping every
message it accepts; it can be stopped and started again on the same port."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def text_of(message: EmailMessage) -> str:
    """The plain-text body of a message."""
    body = message.get_body(("plain",))
    assert body is not None, message
    return str(body.get_content())


class Mailbox:
    """The messages accepted, parsed; a recipient starting ``nobody@`` is refused (550)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._messages.append(message)
        return "250 Message accepted"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    def about(self, text: str) -> list[EmailMessage]:
        """The messages whose subject or body mention ``text``."""
        return [m for m in self.messages if text in str(m["Subject"]) or text in text_of(m)]


class SmtpServer:
    """``start``/``stop`` an aiosmtpd server on one fixed local port."""

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
