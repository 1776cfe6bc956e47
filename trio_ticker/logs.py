"""Structured logging: one line per event, `key=value` fields, level from Settings."""

from __future__ import annotations

import logging

FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def configure_logging(level: str) -> None:
    """Give the `trio_ticker` loggers one stderr handler (idempotent: apps are built many times in tests)."""
    logger = logging.getLogger("trio_ticker")
    logger.setLevel(level)
    if not any(getattr(handler, "trio_ticker", False) for handler in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.trio_ticker = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
