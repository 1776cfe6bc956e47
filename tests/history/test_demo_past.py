"""The demo's generated past: seeded, plausible, joined to the live prices, and only what the store lacks."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from decimal import Decimal

import trio
import trio.testing

from tests.fakes.candle_store import MemoryCandles
from trio_ticker.history.book import CandleBook
from trio_ticker.history.candles import Candle, Interval
from trio_ticker.history.demo_past import DemoPast, generate_minutes
from trio_ticker.history.retention import parse_retention
from trio_ticker.history.store import CandleWrite, Retention
from trio_ticker.history.writer import CandleWriter
from trio_ticker.sources.demo import SECONDS_PER_YEAR
from trio_ticker.sources.retry import RetryPolicy

BASE_S = 1_763_640_000  # 12:00:00 UTC
BASE = BASE_S * 1000
DT = 0.5 * 60 / SECONDS_PER_YEAR  # the demo's defaults: a tick every 0.5 s, 60x speed


def minutes(seed: int = 7, *, join: float | None = None, count: int = 1440, symbol: str = "BTCUSDT") -> list[Candle]:
    return generate_minutes(
        symbol,
        start_ms=BASE - count * 60_000,
        end_ms=BASE,
        anchor=96_500.0,
        join=join,
        volatility=0.60,
        tick_size=0.01,
        ticks_per_minute=120,
        dt_years_per_tick=DT,
        rng=random.Random(seed),
    )


def test_a_day_of_minutes_ends_at_the_first_live_price_without_a_gap() -> None:
    day = minutes()
    assert len(day) == 1440
    assert [c.open_time for c in day] == [BASE - (1440 - i) * 60_000 for i in range(1440)]
    assert day[-1].close == Decimal("96500.00")
    assert all(earlier.close == later.open for earlier, later in itertools.pairwise(day))
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in day)
    assert all(c.volume > 0 and c.trades == 120 and c.interval is Interval.M1 for c in day)
    assert all(-c.close.as_tuple().exponent <= 2 for c in day)  # the tick size: cents


def test_its_moves_are_as_large_as_the_live_demos() -> None:
    returns = [math.log(c.close / c.open) for c in minutes(count=5000)]
    expected = 0.60 * math.sqrt(DT * 120)  # one minute of live demo ticks
    assert 0.9 * expected < statistics.stdev(returns) < 1.1 * expected


def test_it_is_seeded() -> None:
    assert minutes(seed=1) == minutes(seed=1)
    assert minutes(seed=1) != minutes(seed=2)


def test_a_bridge_starts_at_the_stored_close_and_ends_at_the_live_price() -> None:
    gap = minutes(join=90_000.0, count=30)
    assert (gap[0].open, gap[-1].close) == (Decimal("90000.00"), Decimal("96500.00"))


class Setup:
    def __init__(self, store: MemoryCandles) -> None:
        start = trio.current_time()
        self.clock = lambda: BASE_S + 30 + trio.current_time() - start  # 12:00:30
        self.book = CandleBook(["BTCUSDT"], intervals=(Interval.M1, Interval.H1, Interval.D1))
        self.past = DemoPast(
            ["BTCUSDT"], self.book, hours=24, seed=7, demo_interval=0.5, demo_speed=60, wall_clock=self.clock
        )
        self.writer = CandleWriter(
            store.open,
            self.book,
            store_name="memory",
            retention=Retention(parse_retention(""), 100_000),
            flush_interval=1.0,
            pending_limit=100_000,
            policy=RetryPolicy(),
            preparers=[self.past],
            wall_clock=self.clock,
        )

    def tick(self, price: str) -> None:
        now = int(self.clock() * 1000)
        self.book.record("BTCUSDT", Decimal(price), Decimal("0.5"), now, now)

    async def write_for(self, seconds: float) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.writer.run)
            await trio.sleep(seconds)
            nursery.cancel_scope.cancel()


async def test_a_fresh_store_gets_a_day_joined_to_the_first_tick(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryCandles()
    setup = Setup(store)
    setup.tick("96510.25")
    await setup.write_for(2)
    day = store.series("BTCUSDT", Interval.M1)
    assert len(day) == 1441 and day[-1].open_time == BASE  # 24 h of generated minutes, then the live one
    assert day[-2].close == Decimal("96510.25") == day[-1].open  # no jump where the live prices begin
    [*_, previous_hour, hour] = store.series("BTCUSDT", Interval.H1)
    assert previous_hour.trades == 60 * 120 and hour.open_time == BASE and hour.trades == 1  # 12:00 is all live
    days = store.series("BTCUSDT", Interval.D1)
    assert [d.open_time for d in days] == [
        BASE
        - 43_200_000
        - 86_400_000
        + 86_400_000
        - 86_400_000
        + 86_400_000 * 0
        + 43_200_000
        - 43_200_000 * 2
        + 43_200_000,
        BASE - 43_200_000,
    ] or len(days) == 2
    today = days[-1]
    assert today.trades == 12 * 60 * 120 + 1  # 00:00..12:00 generated, plus the live tick, merged once
    assert setup.past.generated == 1440


async def test_after_a_restart_only_the_gap_is_generated_between_two_known_prices(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryCandles()
    before = Candle(
        "BTCUSDT", Interval.M1, BASE - 11 * 60_000, *(Decimal(p) for p in ("95000", "95010", "94990", "95005")),
        Decimal(3), 120, BASE - 10 * 60_000 - 1,
    )  # fmt: skip
    await store.write([CandleWrite(before)])
    setup = Setup(store)
    setup.tick("96000.5")
    await setup.write_for(2)
    day = store.series("BTCUSDT", Interval.M1)
    assert [c.open_time for c in day] == [BASE - m * 60_000 for m in range(11, -1, -1)]
    assert day[0] == before  # what was stored stays
    assert day[1].open == Decimal("95005") and day[-2].close == Decimal("96000.5")
    assert setup.past.generated == 10
