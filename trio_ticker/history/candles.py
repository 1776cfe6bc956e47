"""Candle values, sans I/O: the intervals (UTC-aligned like Binance's klines), `Candle`, exact decimals.

A candle's prices and volume are `Decimal`s, exact as the feeds report them; `open_time` is the
start of its interval in epoch milliseconds, so a day starts at 00:00 UTC and 4 h at 00/04/08.. UTC.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


class Interval(enum.StrEnum):
    """A candle interval, spelled as Binance spells it (case-sensitive)."""

    S1 = "1s"
    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"

    @property
    def ms(self) -> int:
        return INTERVAL_MS[self]


INTERVAL_MS = {
    Interval.S1: SECOND_MS,
    Interval.M1: MINUTE_MS,
    Interval.M5: 5 * MINUTE_MS,
    Interval.M15: 15 * MINUTE_MS,
    Interval.H1: HOUR_MS,
    Interval.H4: 4 * HOUR_MS,
    Interval.D1: DAY_MS,
}
INTERVALS: tuple[Interval, ...] = tuple(Interval)
"""Every interval, finest first."""


class InvalidInterval(ValueError):
    """Not one of the interval names."""


def parse_interval(text: str) -> Interval:
    try:
        return Interval(text)
    except ValueError:
        names = ", ".join(INTERVALS)
        raise InvalidInterval(f"unknown interval {text[:20]!r}; expected one of {names}") from None


def bucket_start(ts: int, interval: Interval) -> int:
    """The open time of the candle that holds epoch-ms `ts`."""
    return ts - ts % INTERVAL_MS[interval]


def exact(value: Decimal | float | int | str) -> Decimal:
    """A price or quantity as an exact Decimal: a float by its shortest repr (the digits the feed sent)."""
    if isinstance(value, Decimal):
        number = value
    else:
        try:
            number = Decimal(repr(value) if isinstance(value, float) else str(value))
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def parse_decimal(text: object, *, positive: bool) -> Decimal:
    """A feed's decimal string, exactly; raises ValueError unless it is finite and >= 0 (> 0 if `positive`)."""
    try:
        value = Decimal(text) if isinstance(text, str) else None
    except InvalidOperation:
        value = None
    if value is None:
        raise ValueError("is not a decimal number in a string")
    if not value.is_finite() or value < 0 or (positive and value == 0):
        raise ValueError("is not a positive number" if positive else "is not a number >= 0")
    return value


def plain(value: Decimal) -> str:
    """A Decimal in positional notation (never `1E+2`), as Binance writes numbers."""
    return format(value, "f")


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle; `trades` counts the trade ticks in it and `updated_ts` is its latest one's time."""

    symbol: str
    interval: Interval
    open_time: int  # epoch ms, aligned to the interval
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int
    updated_ts: int  # epoch ms of the latest tick (or kline) it includes
    closed: bool = False

    @property
    def close_time(self) -> int:
        """The last millisecond of the candle's interval (Binance's `closeTime`)."""
        return self.open_time + INTERVAL_MS[self.interval] - 1

    @property
    def key(self) -> tuple[str, Interval, int]:
        return self.symbol, self.interval, self.open_time


def combine(earlier: Candle, later: Candle) -> Candle:
    """Two parts of one interval with disjoint ticks, `earlier` first: the candle of all of them."""
    return Candle(
        symbol=later.symbol,
        interval=later.interval,
        open_time=later.open_time,
        open=earlier.open,
        high=max(earlier.high, later.high),
        low=min(earlier.low, later.low),
        close=later.close,
        volume=earlier.volume + later.volume,
        trades=earlier.trades + later.trades,
        updated_ts=max(earlier.updated_ts, later.updated_ts),
        closed=later.closed,
    )


def merge_stored(stored: Candle | None, ours: Candle, covers_from: int) -> Candle:
    """What to store when `ours` (ticks since epoch-ms `covers_from`) meets what the store has.

    Ticks after everything stored (a restart, a generated past): the parts add up. Otherwise both saw
    the same stream (another worker wrote it, before a leader change): the union of what each shows,
    with the larger volume (the exact overlap is unknown; it is at most the last seconds').
    """
    if stored is None:
        return ours
    if stored.updated_ts < covers_from:
        return combine(stored, ours)
    newer = ours if ours.updated_ts >= stored.updated_ts else stored
    return dataclasses.replace(
        ours,
        open=stored.open,
        high=max(stored.high, ours.high),
        low=min(stored.low, ours.low),
        close=newer.close,
        volume=max(stored.volume, ours.volume),
        trades=max(stored.trades, ours.trades),
        updated_ts=newer.updated_ts,
    )


def roll_up(candles: Iterable[Candle], interval: Interval) -> list[Candle]:
    """Candles of a coarser `interval` built from finer ones (in time order); edge buckets hold only what is given."""
    result: list[Candle] = []
    for candle in candles:
        start = bucket_start(candle.open_time, interval)
        part = Candle(
            candle.symbol,
            interval,
            start,
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
            candle.trades,
            candle.updated_ts,
            candle.closed,
        )
        if result and result[-1].open_time == start:
            result[-1] = combine(result[-1], part)
        else:
            result.append(part)
    return result
