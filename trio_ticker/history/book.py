"""The candle book, sans I/O: every symbol's open candle per interval, updated by each tick.

`record` folds one price (and its traded quantity) into every interval's open candle; a tick in a
later interval closes the open one first (rollover), and `close_due` closes candles whose interval
ended `close_delay_ms` ago with no newer tick. Closed candles and changed symbols wait here for
their two readers: the live candle frames and the store writer. Time is passed in, never read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .candles import INTERVAL_MS, INTERVALS, Candle, Interval


@dataclass(frozen=True, slots=True)
class BookCandle:
    """A candle as the book hands it on, with what the writer and the backfill need to know.

    `merge_from`: the first tick's time, when the store may hold an earlier part of the same
    interval (the first candle of a series since this process started). `incomplete`: it may lack
    trades (it started with this process, or spanned a silence), so an exchange's kline is better.
    """

    candle: Candle
    merge_from: int | None
    incomplete: bool


@dataclass(frozen=True, slots=True)
class Gap:
    """A symbol's ticks stopped at `last_ts` and resumed at `resumed_ts` (epoch ms)."""

    symbol: str
    last_ts: int
    resumed_ts: int


class _Bar:
    __slots__ = (
        "close",
        "close_at",
        "high",
        "incomplete",
        "low",
        "merge_from",
        "open",
        "open_time",
        "trades",
        "updated_ts",
        "volume",
    )

    def __init__(self, open_time: int, ms: int, price: Decimal, volume: Decimal | None, ts: int) -> None:
        self.open_time = open_time
        self.close_at = open_time + ms
        self.open = self.high = self.low = self.close = price
        self.volume = volume if volume is not None else Decimal(0)
        self.trades = 0 if volume is None else 1
        self.updated_ts = ts
        self.merge_from: int | None = None
        self.incomplete = False


class CandleBook:
    def __init__(
        self,
        symbols: Iterable[str],
        *,
        intervals: tuple[Interval, ...] = INTERVALS,
        close_delay_ms: int = 500,
        future_tolerance_ms: int = 60_000,
        gap_after_ms: int = 30_000,
    ) -> None:
        self.intervals = intervals
        self._lengths = tuple(INTERVAL_MS[interval] for interval in intervals)
        self._close_delay = close_delay_ms
        self._future_tolerance = future_tolerance_ms
        self._gap_after = gap_after_ms
        self._bars: dict[str, list[_Bar | None]] = {symbol: [None] * len(intervals) for symbol in symbols}
        self._seen: dict[str, list[bool]] = {symbol: [False] * len(intervals) for symbol in self._bars}
        self._last_ts: dict[str, int] = {}
        self.first_ts: dict[str, int] = {}  # each symbol's first tick in this process
        self.first_price: dict[str, Decimal] = {}
        self._store_changes: set[str] = set()
        self._live_changes: set[str] = set()
        self._closed_for_store: list[BookCandle] = []
        self._closed_for_live: list[Candle] = []
        self.gaps: list[Gap] = []
        self.late_ticks = 0  # ticks left out of at least one interval: older than its open candle, or out of range

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._bars)

    def record(self, symbol: str, price: Decimal, volume: Decimal | None, ts: int, now_ms: int) -> bool:
        """Fold one tick into the symbol's candles. `volume` None: a price without a trade (a snapshot).

        True when it opened a candle (so the next `close_due` time may be earlier)."""
        bars = self._bars.get(symbol)
        if bars is None:  # a symbol streamed on demand: its candles start with its first tick here
            bars = self._bars[symbol] = [None] * len(self.intervals)
            self._seen[symbol] = [False] * len(self.intervals)
        last = self._last_ts.get(symbol)
        resumed = last is not None and ts - last > self._gap_after
        if resumed:
            assert last is not None
            self.gaps.append(Gap(symbol, last, ts))
            for bar in bars:
                if bar is not None:
                    bar.incomplete = True
        if last is None:
            self.first_ts[symbol] = ts
            self.first_price[symbol] = price
        if last is None or ts > last:
            self._last_ts[symbol] = ts
        late = opened = False
        for index, bar in enumerate(bars):
            if bar is not None and ts < bar.close_at:
                if ts < bar.open_time:
                    late = True
                    continue
                if price > bar.high:
                    bar.high = price
                elif price < bar.low:
                    bar.low = price
                bar.close = price
                if volume is not None:
                    bar.volume += volume
                    bar.trades += 1
                if ts > bar.updated_ts:
                    bar.updated_ts = ts
                continue
            if bar is not None:
                self._close(symbol, index, bar)
            ms = self._lengths[index]
            open_time = ts - ts % ms
            if open_time + ms + self._close_delay <= now_ms or ts > now_ms + self._future_tolerance:
                late = True
                continue
            bar = bars[index] = _Bar(open_time, ms, price, volume, ts)
            opened = True
            seen = self._seen[symbol]
            if not seen[index]:
                seen[index] = True
                bar.merge_from = ts
                bar.incomplete = True
            elif resumed:
                bar.incomplete = True
        if late:
            self.late_ticks += 1
        self._store_changes.add(symbol)
        self._live_changes.add(symbol)
        return opened

    def close_due(self, now_ms: int) -> int | None:
        """Close every candle whose interval ended `close_delay_ms` before `now_ms`; the next such time, if any."""
        next_due: int | None = None
        delay = self._close_delay
        for symbol, bars in self._bars.items():
            for index, bar in enumerate(bars):
                if bar is None:
                    continue
                due = bar.close_at + delay
                if due <= now_ms:
                    self._close(symbol, index, bar)
                elif next_due is None or due < next_due:
                    next_due = due
        return next_due

    def _close(self, symbol: str, index: int, bar: _Bar) -> None:
        self._bars[symbol][index] = None
        candle = self._candle(symbol, index, bar, closed=True)
        self._closed_for_store.append(BookCandle(candle, bar.merge_from, bar.incomplete))
        self._closed_for_live.append(candle)

    def _candle(self, symbol: str, index: int, bar: _Bar, *, closed: bool = False) -> Candle:
        return Candle(
            symbol,
            self.intervals[index],
            bar.open_time,
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
            bar.trades,
            bar.updated_ts,
            closed,
        )

    def current(self, symbol: str, interval: Interval) -> Candle | None:
        """The symbol's open candle of `interval`, if it has one."""
        bars = self._bars.get(symbol)
        if bars is None or interval not in self.intervals:
            return None
        index = self.intervals.index(interval)
        bar = bars[index]
        return None if bar is None else self._candle(symbol, index, bar)

    # -- the readers ------------------------------------------------------------------------------

    def take_live_changes(self) -> set[str]:
        """Symbols whose open candles changed since the last call."""
        changed, self._live_changes = self._live_changes, set()
        return changed

    def take_closed_for_live(self) -> list[Candle]:
        closed, self._closed_for_live = self._closed_for_live, []
        return closed

    def take_for_store(self) -> list[BookCandle]:
        """Every candle closed since the last call, then the open candles of the symbols that changed."""
        taken, self._closed_for_store = self._closed_for_store, []
        for symbol in self._store_changes:
            for index, bar in enumerate(self._bars[symbol]):
                if bar is not None:
                    taken.append(BookCandle(self._candle(symbol, index, bar), bar.merge_from, bar.incomplete))
        self._store_changes = set()
        return taken

    def take_gaps(self) -> list[Gap]:
        gaps, self.gaps = self.gaps, []
        return gaps

    def absorb(self, written: Candle, sent: Candle) -> None:
        """The store merged `sent` (taken from an open candle) into `written`: add what it added to that candle,
        open still or closed since and not yet taken. Ticks since `sent` was taken stay; no second merge is asked."""
        bars = self._bars.get(written.symbol)
        if bars is not None and written.interval in self.intervals:
            bar = bars[self.intervals.index(written.interval)]
            if bar is not None and bar.open_time == written.open_time:
                bar.open = written.open
                bar.high = max(bar.high, written.high)
                bar.low = min(bar.low, written.low)
                bar.volume += written.volume - sent.volume
                bar.trades += written.trades - sent.trades
                bar.merge_from = None
                self._store_changes.add(written.symbol)
                self._live_changes.add(written.symbol)
                return
        for index, pending in enumerate(self._closed_for_store):
            if pending.candle.key == written.key and pending.merge_from is not None:
                self._closed_for_store[index] = BookCandle(
                    _absorbed(pending.candle, written, sent), None, pending.incomplete
                )
                return


def _absorbed(candle: Candle, written: Candle, sent: Candle) -> Candle:
    return dataclasses.replace(
        candle,
        open=written.open,
        high=max(candle.high, written.high),
        low=min(candle.low, written.low),
        volume=candle.volume + written.volume - sent.volume,
        trades=candle.trades + written.trades - sent.trades,
    )
