"""Finnhub's day statistics, sans I/O: the quote's open, high and low, and the day's volume from the trades.

The day is the US/Eastern calendar day (00:00-24:00 America/New_York, extended hours included). The
quote has no volume, so the volume is the sum of the WebSocket trades' `v` that day, known only when
one connection was open all day: after a (re)connect it is null until the next day starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from ..model import DayStats

EASTERN = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True)
class SessionDay:
    """One US/Eastern calendar day as epoch ms: [start_ms, end_ms) (23, 24 or 25 h long)."""

    start_ms: int
    end_ms: int

    @classmethod
    def of(cls, ts_ms: int) -> SessionDay:
        local = datetime.fromtimestamp(ts_ms / 1000, EASTERN)
        midnight = datetime(local.year, local.month, local.day, tzinfo=EASTERN)
        following = midnight.date() + timedelta(days=1)
        next_midnight = datetime(following.year, following.month, following.day, tzinfo=EASTERN)
        return cls(int(midnight.timestamp() * 1000), int(next_midnight.timestamp() * 1000))

    def __contains__(self, ts_ms: object) -> bool:
        return isinstance(ts_ms, int) and self.start_ms <= ts_ms < self.end_ms


@dataclass(slots=True)
class _SymbolDay:
    day: SessionDay
    open: float | None = None  # the quote's, when a quote of this day came
    high: float | None = None
    low: float | None = None
    volume: Decimal = Decimal(0)


class FinnhubDays:
    """Per symbol, the statistics of the day of its latest trade or quote."""

    def __init__(self) -> None:
        self._days: dict[str, _SymbolDay] = {}
        self._connected_since_ms: int | None = None

    def start_connection(self, now_ms: int) -> None:
        """A new connection: trades before it may be lost, so no day that began earlier has a known volume."""
        self._connected_since_ms = now_ms

    def on_quote(self, symbol: str, ts_ms: int, open_: float | None, high: float | None, low: float | None) -> DayStats:
        """The quote's open, high and low for the day of its time `ts_ms`."""
        day = self._day(symbol, ts_ms)
        if ts_ms in day.day:  # a quote of an earlier day than the trades already counted says nothing of today
            day.open, day.high, day.low = open_, high, low
        return self._stats(day)

    def on_trade(self, symbol: str, ts_ms: int, price: float, volume: float) -> DayStats:
        """Count one trade (or a batch's, `volume` summed) into its day; the day's statistics after it."""
        day = self._day(symbol, ts_ms)
        if ts_ms in day.day:
            if volume > 0:
                day.volume += Decimal(repr(volume))
            # The range is the quote's, widened by the trades since; without a quote of the day it is unknown.
            if day.high is not None:
                day.high = max(day.high, price)
            if day.low is not None:
                day.low = min(day.low, price)
        return self._stats(day)

    def stats(self, symbol: str) -> DayStats | None:
        day = self._days.get(symbol)
        return None if day is None else self._stats(day)

    def _day(self, symbol: str, ts_ms: int) -> _SymbolDay:
        """The symbol's day record, started afresh when `ts_ms` is in a later day (an older time keeps it)."""
        day = self._days.get(symbol)
        if day is None or ts_ms >= day.day.end_ms:
            try:
                session = SessionDay.of(ts_ms)
            except (ValueError, OverflowError, OSError):  # not a date (year 10000 and later): a day of its own
                session = SessionDay(ts_ms, ts_ms + 1)
            day = self._days[symbol] = _SymbolDay(session)
        return day

    def _stats(self, day: _SymbolDay) -> DayStats:
        since = self._connected_since_ms
        complete = since is not None and since <= day.day.start_ms
        return DayStats(day.open, day.high, day.low, float(day.volume) if complete else None)
