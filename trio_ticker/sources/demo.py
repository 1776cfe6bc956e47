"""The simulated feed: geometric Brownian motion per symbol, seeded, rounded to the tick size.

`gbm_step` is the pure model; `DemoFeed` is an on-demand `Source` whose one "connection" steps every
symbol on a fixed schedule (no drift from processing time) and publishes the prices, each with the 24 h
statistics of the walk since the feed started (`RollingDay`).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

import trio

from ..model import Listing, Mode, PriceUpdate
from .demo_instruments import instrument_for
from .rolling_day import RollingDay
from .source import FeedOutput

SECONDS_PER_YEAR = 365.25 * 24 * 3600
TYPICAL_TRADE_VALUE = 5_000.0
"""A simulated trade is worth about this much in the quote currency (log-normally spread), for candle volume."""


def gbm_step(price: float, volatility: float, dt_years: float, shock: float, tick_size: float) -> float:
    """One step of driftless GBM for a standard-normal `shock`, rounded to the tick, never <= 0."""
    growth = math.exp(-0.5 * volatility**2 * dt_years + volatility * math.sqrt(dt_years) * shock)
    ticks = max(1, round(price * growth / tick_size))
    decimals = max(0, -math.floor(math.log10(tick_size) + 1e-9))
    return round(ticks * tick_size, decimals)


def simulated_volume(rng: random.Random, price: float) -> Decimal:
    """A plausible traded quantity for one demo tick, to 4 decimal places (at least 0.0001)."""
    quantity = round(TYPICAL_TRADE_VALUE / price * rng.lognormvariate(0.0, 1.0), 4)
    return Decimal(repr(max(quantity, 0.0001)))


class DemoFeed:
    """Simulated prices for its symbols, one update per symbol every `interval` seconds; symbols added at
    runtime (`stream_symbol`) get their first price at once, then walk with the rest."""

    name = "demo"

    def __init__(
        self,
        symbols: tuple[str, ...],
        *,
        interval: float,
        speed: float,
        seed: int | None,
        latest_price: Callable[[str], float | None] | None = None,
    ) -> None:
        self._instruments = {symbol: instrument_for(symbol) for symbol in symbols}
        self._interval = interval
        self._dt_years = interval * speed / SECONDS_PER_YEAR
        self._random = random.Random(seed)
        self._volume_random = random.Random(seed)  # its own stream: volumes leave the seeded prices as they were
        self._latest_price = latest_price
        self._prices = {symbol: instrument.start_price for symbol, instrument in self._instruments.items()}
        self._fresh: set[str] = set()  # added since the last publish: their first price goes out at once
        self._added = trio.Event()
        # The walk's own last 24 h, kept across reconnects; the seeded past candles are the history
        # wing's (written only where the store lacks them), so the window starts with this feed.
        self._days: defaultdict[str, RollingDay] = defaultdict(RollingDay)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._instruments)

    def stream_symbol(self, listing: Listing) -> None:
        if listing.symbol in self._instruments:
            return
        instrument = instrument_for(listing.symbol)
        if listing.precision is not None:
            instrument = dataclasses.replace(instrument, tick_size=10.0**-listing.precision)
        self._instruments[listing.symbol] = instrument
        resumed = self._latest_price(listing.symbol) if self._latest_price is not None else None
        self._prices[listing.symbol] = resumed or instrument.start_price
        self._fresh.add(listing.symbol)
        self._added.set()

    def drop_symbol(self, symbol: str) -> None:
        self._instruments.pop(symbol, None)
        self._prices.pop(symbol, None)
        self._fresh.discard(symbol)
        self._days.pop(symbol, None)

    def _resume_prices(self) -> None:
        """Where the walk goes on from: the price clients last saw (a restart or a new ingest leader
        must not jump back to the start prices), else where this feed left off."""
        if self._latest_price is None:
            return
        for symbol, price in self._prices.items():
            self._prices[symbol] = self._latest_price(symbol) or price

    async def run_connection(
        self, feed: FeedOutput, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Publish the current prices at once (so snapshots exist), then step until cancelled."""
        self._resume_prices()
        self._fresh.clear()
        await self._publish(feed, list(self._instruments))
        task_status.started()
        next_step = trio.current_time() + self._interval
        while True:
            with trio.move_on_at(next_step):
                await self._added.wait()
            if self._added.is_set():
                self._added = trio.Event()
                fresh, self._fresh = list(self._fresh), set()
                await self._publish(feed, fresh)
            # Under load this task wakes late: take every step that came due, so the rate holds. A symbol added
            # while a step waited for the hub is not stepped before its first price has gone out as it was.
            while next_step <= trio.current_time():
                prices = self._prices
                walking = [symbol for symbol in self._instruments if symbol not in self._fresh]
                for symbol in walking:
                    instrument = self._instruments[symbol]
                    prices[symbol] = gbm_step(
                        prices[symbol],
                        instrument.volatility,
                        self._dt_years,
                        self._random.gauss(0.0, 1.0),
                        instrument.tick_size,
                    )
                await self._publish(feed, walking)
                next_step += self._interval

    async def _publish(self, feed: FeedOutput, symbols: list[str]) -> None:
        """One step of `symbols`: a message from the feed, then their prices (no checkpoint while the hub has room)."""
        feed.note_message()
        ts = feed.now_ms()
        for symbol in symbols:
            instrument = self._instruments.get(symbol)
            if instrument is None:
                continue  # dropped while an earlier publish waited for the hub
            price = self._prices[symbol]
            volume = simulated_volume(self._volume_random, price)
            await feed.publish(
                PriceUpdate(
                    symbol=symbol,
                    price=price,
                    reference=instrument.start_price,
                    ts=ts,
                    mode=Mode.DEMO,
                    decimals=instrument.decimals,
                    source=self.name,
                    volume=volume,
                    day_stats=self._days[symbol].add(ts, price, volume),
                )
            )
