"""The demo's past: seeded, plausible 1 m candles (and their 5 m .. 1 d roll-ups) before the first tick.

`generate_minutes` is the pure model: the demo's random walk (same volatility per minute as the live
feed shows) ending at the first live price, or bridging from the last stored close to it, so the
chart has no jump. `DemoPast` is the writer's preparer: it fills only what the store lacks.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import trio

from ..sources.demo import SECONDS_PER_YEAR, TYPICAL_TRADE_VALUE
from ..sources.demo_instruments import instrument_for
from .book import CandleBook
from .candles import INTERVALS, MINUTE_MS, Candle, Interval, bucket_start, exact, roll_up
from .store import CandleStore, CandleWrite

STEPS_PER_CANDLE = 6
"""Points drawn inside each generated minute for its high and low (its variance is a whole minute's)."""


def generate_minutes(
    symbol: str,
    *,
    start_ms: int,
    end_ms: int,
    anchor: float,
    join: float | None,
    volatility: float,
    tick_size: float,
    ticks_per_minute: int,
    dt_years_per_tick: float,
    rng: random.Random,
) -> list[Candle]:
    """1 m candles from `start_ms` up to (not including) `end_ms`, the last close being `anchor`;
    with `join`, the first open is `join` (a bridge between two known prices)."""
    minutes = (end_ms - start_ms) // MINUTE_MS
    if minutes <= 0:
        return []
    steps = minutes * STEPS_PER_CANDLE
    dt = dt_years_per_tick * ticks_per_minute / STEPS_PER_CANDLE
    drift, spread = -0.5 * volatility**2 * dt, volatility * math.sqrt(dt)
    walk = [0.0]
    for _ in range(steps):
        walk.append(walk[-1] + drift + spread * rng.gauss(0.0, 1.0))
    if join is None:
        prices = [anchor * math.exp(point - walk[-1]) for point in walk]
    else:
        correction = math.log(anchor / join) - walk[-1]
        prices = [join * math.exp(point + correction * index / steps) for index, point in enumerate(walk)]
    decimals = max(0, -math.floor(math.log10(tick_size) + 1e-9))
    ticks = [exact(round(max(1, round(price / tick_size)) * tick_size, decimals)) for price in prices]
    candles = []
    for minute in range(minutes):
        path = ticks[minute * STEPS_PER_CANDLE : (minute + 1) * STEPS_PER_CANDLE + 1]
        open_time = start_ms + minute * MINUTE_MS
        mean_quantity = TYPICAL_TRADE_VALUE / float(path[-1]) * math.exp(0.5)
        volume = exact(round(ticks_per_minute * mean_quantity * rng.lognormvariate(0.0, 0.3), 4))
        candles.append(
            Candle(
                symbol,
                Interval.M1,
                open_time,
                path[0],
                max(path),
                min(path),
                path[-1],
                volume,
                ticks_per_minute,
                open_time + MINUTE_MS - 1,
                closed=True,
            )
        )
    return candles


class DemoPast:
    """The writer's preparer in demo mode: generates what the store lacks of the last `hours`."""

    def __init__(
        self,
        symbols: Sequence[str],
        book: CandleBook,
        *,
        hours: float,
        seed: int | None,
        demo_interval: float,
        demo_speed: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._symbols = tuple(symbols)
        self._book = book
        self._span_ms = round(hours * 3_600_000) // MINUTE_MS * MINUTE_MS
        self._seed = seed
        self._ticks_per_minute = max(1, round(60 / demo_interval))
        self._dt_years = demo_interval * demo_speed / SECONDS_PER_YEAR
        self._wall_clock = wall_clock
        self.generated = 0

    async def prepare(self, store: CandleStore) -> list[CandleWrite]:
        if self._span_ms <= 0:
            return []
        writes: list[CandleWrite] = []
        for symbol in self._symbols:
            writes.extend(await self._fill(store, symbol))
        return writes

    async def _fill(self, store: CandleStore, symbol: str) -> list[CandleWrite]:
        instrument = instrument_for(symbol)
        first_ts = self._book.first_ts.get(symbol, int(self._wall_clock() * 1000))
        end = bucket_start(first_ts, Interval.M1)  # the live candles take over from this minute
        start, join = end - self._span_ms, None
        stored = await store.read(symbol, Interval.M1, start=None, end=end - 1, limit=1)
        if stored and stored[0].open_time + MINUTE_MS > start:
            start, join = stored[0].open_time + MINUTE_MS, float(stored[0].close)
        first_price = self._book.first_price.get(symbol)
        # A day of candles is about a hundred milliseconds of Python: in a thread, so ticks are not held up.
        writes = await trio.to_thread.run_sync(
            partial(
                past_writes,
                symbol,
                start_ms=start,
                end_ms=end,
                anchor=float(first_price) if first_price is not None else instrument.start_price,
                join=join,
                volatility=instrument.volatility,
                tick_size=instrument.tick_size,
                ticks_per_minute=self._ticks_per_minute,
                dt_years_per_tick=self._dt_years,
                rng=random.Random(f"{self._seed}/{symbol}") if self._seed is not None else random.Random(),
            )
        )
        self.generated += sum(1 for write in writes if write.candle.interval is Interval.M1)
        return writes


def past_writes(symbol: str, *, start_ms: int, **walk: Any) -> list[CandleWrite]:
    """The generated minutes and their roll-ups, each merged with what is stored: the edge intervals (e.g. this
    hour) hold stored or live ticks besides the generated minutes."""
    minutes = generate_minutes(symbol, start_ms=start_ms, **walk)
    writes = [CandleWrite(candle, candle.open_time) for candle in minutes]
    for interval in INTERVALS:
        if interval.ms > MINUTE_MS:
            writes.extend(CandleWrite(c, max(c.open_time, start_ms)) for c in roll_up(minutes, interval))
    return writes
