"""Candles as clients see them, sans I/O: the `candle` WebSocket message and the `/candles` body.

Prices and volume are decimal strings, exact (as in Binance's klines); times are epoch ms.
docs/protocol.md ("Candles") describes every field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from .candles import Candle, Interval, plain

STORE_UNAVAILABLE = "unavailable"
"""The `/candles` body's `store` field and `X-Candle-Store` header while the store cannot be read."""


def candle_fields(candle: Candle) -> dict[str, Any]:
    return {
        "open_time": candle.open_time,
        "close_time": candle.close_time,
        "open": plain(candle.open),
        "high": plain(candle.high),
        "low": plain(candle.low),
        "close": plain(candle.close),
        "volume": plain(candle.volume),
        "trades": candle.trades,
        "closed": candle.closed,
    }


def encode_candle(candle: Candle) -> str:
    message = {"type": "candle", "ticker": candle.symbol, "interval": candle.interval.value, **candle_fields(candle)}
    return orjson.dumps(message).decode()


def candles_body(
    symbol: str, interval: Interval, candles: Sequence[Candle], *, store_available: bool = True
) -> dict[str, Any]:
    """The `GET /candles` answer: oldest first; `"store": "unavailable"` when only memory's candles are in it."""
    body = {"symbol": symbol, "interval": interval.value, "candles": [candle_fields(candle) for candle in candles]}
    if not store_available:
        body["store"] = STORE_UNAVAILABLE
    return body
