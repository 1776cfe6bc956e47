"""A numbered tick's fields as a compact JSON array, and back: what the Redis stream and the tick journal store.

Sans-I/O. The body leaves out the symbol, the seq and the stale flag, which each store keeps beside it; a body
this version did not write raises `EntryError`, naming the part that is wrong.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from .model import DayStats, Mode, Tick, is_usable_price, is_usable_volume

NO_DAY_STATS = DayStats()
LEGACY_PRECISION = 2
"""The precision of a tick whose writer did not store one (the model's default)."""


class EntryError(ValueError):
    """A stored entry (a stream entry, a snapshot field, a journal row) is not what this version writes; the
    message says which part."""


def encode_tick_body(tick: Tick) -> bytes:
    """Price, change, change %, ts, mode, source, trade volume, precision, then the 24 h open, high, low, volume."""
    volume = None if tick.volume is None else format(tick.volume, "f")
    day = tick.day_stats or NO_DAY_STATS
    body = [tick.price, tick.change, tick.change_percent, tick.ts, tick.mode.value, tick.source, volume]
    body += [tick.precision, day.open, day.high, day.low, day.volume]
    return orjson.dumps(body)


def decode_tick(symbol: str, seq: int, body: str | bytes, *, stale: bool) -> Tick:
    # 6 and 7 fields: written by leaders from before ticks carried a volume, and then the 24 h statistics.
    fields = json_list(body, f"tick body for {symbol}", 6, 7, 12)
    price, change, change_percent, ts, mode, source = fields[:6]
    volume = fields[6] if len(fields) > 6 else None
    recent = len(fields) == 12
    try:
        return Tick(
            symbol=symbol,
            price=float(price),
            change=float(change),
            change_percent=float(change_percent),
            ts=int(ts),
            seq=seq,
            mode=Mode(mode),
            stale=stale,
            source=str(source),
            volume=_volume(volume),
            precision=_precision(fields[7]) if recent else LEGACY_PRECISION,
            day_stats=_day_stats(fields[8:]) if recent else None,
        )
    except (TypeError, ValueError, InvalidOperation) as error:
        raise EntryError(f"tick body for {symbol} is invalid ({error}): {body!r}") from None


def _volume(text: Any) -> Decimal | None:
    if text is None:
        return None
    volume = Decimal(text) if isinstance(text, str) else None
    if volume is None or not volume.is_finite() or volume < 0:
        raise ValueError(f"volume {text!r} is not a decimal string >= 0")
    return volume


def _precision(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 20:
        raise ValueError(f"precision {value!r} is not an integer in 0..20")
    return value


def _day_stats(values: list[Any]) -> DayStats | None:
    """The 24 h open, high, low and volume: numbers within the model's ranges, or null (unknown)."""
    if all(value is None for value in values):
        return None
    open_, high, low, volume = (_number(value) for value in values)
    for price in (open_, high, low):
        if price is not None and not is_usable_price(price):
            raise ValueError(f"24 h price {price!r} is outside the price range")
    if volume is not None and not is_usable_volume(volume):
        raise ValueError(f"24 h volume {volume!r} is outside the volume range")
    return DayStats(open_, high, low, volume)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def json_value(text: str | bytes, what: str) -> Any:
    """`text` parsed as JSON, or `EntryError` naming `what`."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise EntryError(f"{what} is not JSON ({error}): {text!r}") from None


def json_list(text: str | bytes, what: str, *lengths: int) -> list[Any]:
    """`text` parsed as a JSON array of one of `lengths` items, or `EntryError` naming `what`."""
    value = json_value(text, what)
    if not isinstance(value, list) or len(value) not in lengths:
        counts = " or ".join(map(str, lengths))
        raise EntryError(f"{what} must be a JSON array of {counts}, got {text!r}")
    return value
