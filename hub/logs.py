"""structlog set-up: JSON lines in production, a readable console on a terminal.

In JSON mode every line the process writes to stderr is one JSON object: structlog's own
events, and the records of libraries that log through the standard library (uvicorn,
asyncpg), which go through the same processors and renderer.
"""

from __future__ import annotations

import logging
import sys

import structlog

# uvicorn's loggers have handlers of their own (and do not propagate to the root logger):
# their output is re-rendered in place rather than moved.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure(fmt: str, level: str = "info") -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        formatter = _json_formatter(shared, renderer)
        handler.setFormatter(formatter)
        for name in SERVER_LOGGERS:
            for server_handler in logging.getLogger(name).handlers:
                server_handler.setFormatter(formatter)
    else:
        handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    # Libraries that use the standard library's logging go to the same stream.
    logging.basicConfig(level=max(numeric, logging.WARNING), handlers=[handler])


def _json_formatter(
    shared: list[structlog.typing.Processor], renderer: structlog.typing.Processor
) -> logging.Formatter:
    """A standard-library formatter that writes a record as structlog would: one JSON line,
    with the logger's name and any traceback as a field."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
