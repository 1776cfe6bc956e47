"""Structured logging: one line per event, `key=value` fields, level from Settings, and no token in any line.

The token filter also sits on Hypercorn's own loggers, which write its access log and the requests it
answers itself, so it holds under `python -m trio_ticker` and the bare `hypercorn` command alike.
"""

from __future__ import annotations

import logging

from ..errors import redact_tokens

FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
HYPERCORN_LOGGERS = ("hypercorn.access", "hypercorn.error")
"""The loggers Hypercorn's `--access-logfile` / `--error-logfile` write to (it replaces their handlers, not filters)."""


class TokenRedactingFilter(logging.Filter):
    """Hides every token (`errors.TOKEN_IN_TEXT`) in a record's message, traceback and stack, in place."""

    _tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._tracebacks.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_tokens(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_tokens(record.stack_info)
        return True


def configure_logging(level: str) -> None:
    """Give the `trio_ticker` loggers one stderr handler, and it and Hypercorn's loggers the token filter
    (idempotent: apps are built many times in tests)."""
    logger = logging.getLogger("trio_ticker")
    logger.setLevel(level)
    if not any(getattr(handler, "trio_ticker", False) for handler in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(TokenRedactingFilter())  # on the handler: it sees every trio_ticker.* record
        handler.trio_ticker = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    for name in HYPERCORN_LOGGERS:
        hypercorn_logger = logging.getLogger(name)
        if not any(isinstance(existing, TokenRedactingFilter) for existing in hypercorn_logger.filters):
            hypercorn_logger.addFilter(TokenRedactingFilter())
