"""Live candles: the hub hands every published tick to `record`; candle subscribers get frames.

The candle task closes intervals on time (a quiet symbol's candle still closes at its boundary)
and sends each subscribed open candle at most once per flush interval, plus `closed: true` once
per candle when it closes (and again when the exchange's kline repairs it). Frames go into the
clients' outboxes without waiting, conflated per symbol and interval like ticks (a closed candle
is never conflated away).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import trio

from ..delivery.outbox import ClientOutbox, status_key
from ..model import Tick, is_usable_price
from .book import CandleBook
from .candles import Candle, Interval, exact
from .frames import encode_candle

Series = tuple[str, Interval]


def candle_key(symbol: str, interval: Interval) -> str:
    """The conflation key of a symbol's open-candle updates: only the newest matters."""
    return status_key(symbol, f"candle:{interval.value}")


def closed_candle_key(candle: Candle) -> str:
    """One key per closed candle, so a behind client still gets each `closed: true`."""
    return status_key(candle.symbol, f"candle:{candle.interval.value}:{candle.open_time}")


class LiveCandles:
    def __init__(
        self,
        book: CandleBook,
        *,
        flush_interval: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.book = book
        self._flush_interval = flush_interval
        self._wall_clock = wall_clock
        self._subscribers: dict[Series, dict[ClientOutbox, None]] = {}
        self._watched: dict[str, int] = {}  # symbol -> candle subscriptions to it
        self._by_outbox: dict[ClientOutbox, set[Series]] = {}
        self._wake = trio.Event()
        self.frames_out = 0
        self.unusable_ticks = 0

    def now_ms(self) -> int:
        return int(self._wall_clock() * 1000)

    # -- the hub's side (never waits) -----------------------------------------------------------

    def record(self, tick: Tick) -> None:
        if not is_usable_price(tick.price):  # e.g. from a Redis entry written by another version: never a candle
            self.unusable_ticks += 1
            return
        opened = self.book.record(tick.symbol, exact(tick.price), tick.volume, tick.ts, self.now_ms())
        if opened or tick.symbol in self._watched:
            self._wake.set()  # a new candle may close before the task's deadline; a watched one is news

    def subscribe(self, outbox: ClientOutbox, symbols: Iterable[str], interval: Interval) -> None:
        """Add candle subscriptions and queue each symbol's open candle (if it has one) at once."""
        series_of_outbox = self._by_outbox.setdefault(outbox, set())
        for symbol in symbols:
            series = (symbol, interval)
            if series in series_of_outbox:
                continue
            series_of_outbox.add(series)
            self._subscribers.setdefault(series, {})[outbox] = None
            self._watched[symbol] = self._watched.get(symbol, 0) + 1
            candle = self.book.current(symbol, interval)
            if candle is not None:
                outbox.offer(candle_key(symbol, interval), encode_candle(candle))

    def unsubscribe(self, outbox: ClientOutbox, symbols: Iterable[str], interval: Interval | None = None) -> None:
        """Drop the candle subscriptions of `symbols` (of one interval, or all) and their unsent frames."""
        series_of_outbox = self._by_outbox.get(outbox)
        if not series_of_outbox:
            return
        wanted = set(symbols)
        dropped = [s for s in series_of_outbox if s[0] in wanted and (interval is None or s[1] == interval)]
        for series in dropped:
            self._drop(outbox, series)
        outbox.discard_pending_keys(candle_key(symbol, series_interval) for symbol, series_interval in dropped)

    def forget(self, outbox: ClientOutbox) -> None:
        """The client is gone."""
        for series in list(self._by_outbox.get(outbox, ())):
            self._drop(outbox, series)
        self._by_outbox.pop(outbox, None)

    def _drop(self, outbox: ClientOutbox, series: Series) -> None:
        self._by_outbox[outbox].discard(series)
        subscribers = self._subscribers.get(series)
        if subscribers is not None:
            subscribers.pop(outbox, None)
            if not subscribers:
                del self._subscribers[series]
        symbol = series[0]
        remaining = self._watched.get(symbol, 0) - 1
        if remaining > 0:
            self._watched[symbol] = remaining
        else:
            self._watched.pop(symbol, None)

    def subscriptions(self, outbox: ClientOutbox) -> set[Series]:
        return set(self._by_outbox.get(outbox, ()))

    def repaired(self, candles: Iterable[Candle]) -> None:
        """Closed candles the store now holds from the exchange's klines (backfill after a gap, or of an incomplete
        candle): each one this process streamed live goes out again, `closed: true`, to its subscribers."""
        first_ts = self.book.first_ts
        sent = 0
        for candle in candles:
            subscribers = self._subscribers.get((candle.symbol, candle.interval))
            first = first_ts.get(candle.symbol)
            if not subscribers or first is None or candle.close_time < first or not candle.closed:
                continue  # nobody to tell, or older than this process's stream: clients load it from /candles
            frame = encode_candle(candle)
            key = closed_candle_key(candle)
            for outbox in subscribers:
                outbox.offer(key, frame)
            sent += len(subscribers)
        self.frames_out += sent

    # -- the candle task ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Close candles on time and send subscribed changes, paced; sleeps while nothing is due."""
        task_status.started()
        while True:
            self._wake = trio.Event()  # before looking: a tick from now on wakes the next wait
            next_due = self.book.close_due(self.now_ms())
            if self._send_changes():
                await trio.sleep(self._flush_interval)
                continue
            wait = math.inf if next_due is None else max(0.0, (next_due - self.now_ms()) / 1000)
            with trio.move_on_after(wait):
                await self._wake.wait()

    def _send_changes(self) -> bool:
        """Offer every closed candle, then each changed open candle, to their subscribers; True if any went out."""
        sent = 0
        for candle in self.book.take_closed_for_live():
            subscribers = self._subscribers.get((candle.symbol, candle.interval))
            if subscribers:
                frame = encode_candle(candle)
                key = closed_candle_key(candle)
                for outbox in subscribers:
                    outbox.offer(key, frame)
                sent += len(subscribers)
        for symbol in self.book.take_live_changes():
            if symbol not in self._watched:
                continue
            for interval in self.book.intervals:
                subscribers = self._subscribers.get((symbol, interval))
                current = self.book.current(symbol, interval) if subscribers else None
                if subscribers and current is not None:
                    frame = encode_candle(current)
                    key = candle_key(symbol, interval)
                    for outbox in subscribers:
                        outbox.offer(key, frame)
                    sent += len(subscribers)
        self.frames_out += sent
        return sent > 0
