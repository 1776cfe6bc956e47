"""A rolling 24 h window over one symbol's prices and traded quantities: its open, high, low and volume.

The demo feed keeps one per symbol. Prices fall into one-minute buckets, so memory stays at most 1 440
buckets whatever the tick rate, and a tick costs O(1): the closed buckets' extremes and volume are
summed once per new minute, not per tick. The window's edge moves by whole minutes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from ..model import DayStats

BUCKET_MS = 60_000
WINDOW_MS = 24 * 3600 * 1000


@dataclass(slots=True)
class _Minute:
    start: int  # epoch ms, a multiple of BUCKET_MS
    open: float
    high: float
    low: float
    volume: Decimal


class RollingDay:
    """The last 24 h (to the minute) of one symbol, from the first price it was given."""

    def __init__(self) -> None:
        self._minutes: deque[_Minute] = deque()
        # The closed minutes' aggregates (every bucket in the window but the newest).
        self._closed_high = float("-inf")
        self._closed_low = float("inf")
        self._closed_volume = Decimal(0)

    def add(self, ts: int, price: float, volume: Decimal | None = None) -> DayStats:
        """Count one price (and its traded quantity) at epoch ms `ts`; the window's statistics after it."""
        minutes = self._minutes
        start = ts - ts % BUCKET_MS
        if not minutes or start > minutes[-1].start:
            minutes.append(_Minute(start, price, price, price, Decimal(0)))
            while minutes[0].start <= start - WINDOW_MS:
                minutes.popleft()
            self._close_minutes()
        current = minutes[-1]  # a clock that stepped back counts in the newest minute
        current.high = max(current.high, price)
        current.low = min(current.low, price)
        if volume is not None:
            current.volume += volume
        return DayStats(
            open=minutes[0].open,
            high=max(self._closed_high, current.high),
            low=min(self._closed_low, current.low),
            volume=float(self._closed_volume + current.volume),
        )

    def _close_minutes(self) -> None:
        closed = list(self._minutes)[:-1]
        self._closed_high = max((minute.high for minute in closed), default=float("-inf"))
        self._closed_low = min((minute.low for minute in closed), default=float("inf"))
        self._closed_volume = sum((minute.volume for minute in closed), Decimal(0))
