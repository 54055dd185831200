"""The ASGI entry point for uvicorn workers: ``uvicorn --factory hub.asgi:create``."""

from __future__ import annotations

from starlette.applications import Starlette

from hub.app import create_app
from hub.settings import Settings


def create() -> Starlette:
    return create_app(Settings.from_environ())
