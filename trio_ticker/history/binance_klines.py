"""Binance's REST klines (`GET /api/v3/klines`), sans I/O: query parameters in, `Candle`s out.

A kline is `[openTime, "open", "high", "low", "close", "volume", closeTime, "quoteVolume", trades,
...]`, decimals as strings, times in epoch ms; the last row may be the interval still open.
`decode_klines` checks every row and raises `KlinesDecodeError` for anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from .candles import INTERVAL_MS, Candle, Interval, parse_decimal

KLINES_PATH = "/api/v3/klines"
MAX_KLINES = 1000  # rows per request
KLINES_WEIGHT = 2  # request weight of one klines call
WEIGHT_LIMIT = 6000  # Binance spot's request weight per minute per IP
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
USED_WEIGHT_PAUSE_SHARE = 0.9
"""Past this share of Binance's weight limit (every client of our IP counts), a caller waits for the next minute."""


class KlinesDecodeError(ValueError):
    """A klines body that is not what Binance documents."""


def klines_params(symbol: str, interval: Interval, *, start_ms: int, end_ms: int, limit: int) -> dict[str, str]:
    return {
        "symbol": symbol,
        "interval": interval.value,
        "startTime": str(start_ms),
        "endTime": str(end_ms),
        "limit": str(max(1, min(limit, MAX_KLINES))),
    }


def decode_klines(body: str | bytes, symbol: str, interval: Interval) -> list[Candle]:
    try:
        rows = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise KlinesDecodeError("klines body is not JSON") from None
    if not isinstance(rows, list):
        raise KlinesDecodeError(f"klines body is not an array: {str(rows)[:100]}")
    return [_candle(row, symbol, interval) for row in rows]


def _candle(row: Any, symbol: str, interval: Interval) -> Candle:
    if not isinstance(row, list) or len(row) < 9:
        raise KlinesDecodeError(f"a kline is not an array of at least 9: {str(row)[:100]}")
    open_time, close_time, trades = row[0], row[6], row[8]
    for name, value in (("openTime", open_time), ("closeTime", close_time), ("trades", trades)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise KlinesDecodeError(f"kline {name} is not a whole number >= 0: {value!r}")
    length = INTERVAL_MS[interval]
    if open_time % length or close_time != open_time + length - 1:
        raise KlinesDecodeError(f"kline {open_time}..{close_time} is not one aligned {interval.value} interval")
    open_, high, low, close = (
        _decimal(row[index], name) for index, name in enumerate(("open", "high", "low", "close"), 1)
    )
    volume = _decimal(row[5], "volume", positive=False)
    if not low <= min(open_, close) <= max(open_, close) <= high:
        raise KlinesDecodeError(f"kline at {open_time} has prices outside its low..high")
    return Candle(symbol, interval, open_time, open_, high, low, close, volume, trades, close_time)


def _decimal(text: Any, name: str, *, positive: bool = True) -> Decimal:
    try:
        return parse_decimal(text, positive=positive)
    except ValueError as error:
        raise KlinesDecodeError(f"kline {name} {error}: {str(text)[:40]!r}") from None


def decode_error(body: str | bytes) -> str:
    """Binance's `{"code":-1121,"msg":"Invalid symbol."}`, as one line (or the body's start)."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        message = None
    if isinstance(message, dict) and "msg" in message:
        return f"{message.get('code')} {str(message['msg'])[:200]}"
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    return text[:200]


def weight_near_limit(headers: Mapping[str, str]) -> int | None:
    """The request weight Binance says our IP used this minute, when it is near the limit; else None."""
    try:
        used = int(headers.get(USED_WEIGHT_HEADER, "0"))
    except ValueError:
        return None
    return used if used >= USED_WEIGHT_PAUSE_SHARE * WEIGHT_LIMIT else None
