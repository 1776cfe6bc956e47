"""Shared test helpers: settings without a developer's `.env`, a live-task counter, the warnings
trio_ticker logs, and the full protocol's welcome frame read off a real WebSocket."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import trio
from trio_websocket import WebSocketConnection

from trio_ticker.protocol.dialects import FULL_PROTOCOL_V1
from trio_ticker.settings import Settings

FULL_PROTOCOL = (FULL_PROTOCOL_V1,)
"""The subprotocols a client of the full protocol offers (a plain connection speaks the prototypes' dialect)."""
PRICE_OBJECT_KEYS = frozenset(
    {
        "ticker",
        "price",
        "change",
        "mode",
        "symbol",
        "last_price",
        "change_percent",
        "timestamp_ms",
        "ts",
        "seq",
        "stale",
        "open",
        "high",
        "low",
        "volume",
    }
)
"""Every key of a prototype-dialect price object, and nothing else (docs/protocol.md, "The prototypes' dialect")."""


async def read_welcome(ws: WebSocketConnection) -> dict[str, Any]:
    """The full protocol's first frame, which comes alone (an array of one when batching): the `welcome`."""
    with trio.fail_after(5):
        message = orjson.loads(await ws.get_message())
    if isinstance(message, list):
        [message] = message
    assert message["type"] == "welcome", message
    return message  # type: ignore[no-any-return]


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: defaults plus overrides, ignoring any developer `.env` file."""
    overrides.setdefault("demo_seed", 7)
    overrides.setdefault("gc_thresholds", None)  # tests leave the pytest process's collector alone
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def count_tasks() -> int:
    """Every task currently alive in this trio run (walks the task tree from the root)."""
    total = 0
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        assert task is not None
        total += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return total


@contextmanager
def trio_ticker_warnings() -> Iterator[list[logging.LogRecord]]:
    """WARNING+ records of the `trio_ticker` loggers (which stop propagating to pytest's once an app exists)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("trio_ticker")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
