"""How a notification leaves the hub: the ``Sender`` interface and the default log sender.

Below ``hub.context`` (the hub holds the process's sender, and tests put their own
there), so this module imports nothing that imports the hub. Until the monitoring work
brings email, the default sender writes each notification to the log.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)


class Sender(Protocol):
    async def send(self, email: str | None, kind: str, payload: dict[str, Any]) -> None:
        """Deliver one notification.

        Raises:
            Exception: any failure; the outbox keeps the notification and tries again.
        """
        ...


class LogSender:
    """Writes each notification as a structured log line."""

    async def send(self, email: str | None, kind: str, payload: dict[str, Any]) -> None:
        log.info("notification_sent", kind=kind, to=email, payload=payload)
