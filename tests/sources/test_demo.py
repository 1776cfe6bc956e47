"""The demo feed's GBM model (pure) and the feed task (autojump clock, memory channel)."""

from __future__ import annotations

import math
import random
import statistics
import time

import pytest
import trio

from trio_ticker.model import Ingest, Listing, Mode, PriceUpdate
from trio_ticker.sources.demo import SECONDS_PER_YEAR, DemoFeed, gbm_step
from trio_ticker.sources.demo_instruments import KNOWN_INSTRUMENTS, instrument_for
from trio_ticker.sources.source import FeedOutput


def test_log_returns_have_the_configured_volatility_and_no_drift() -> None:
    rng = random.Random(1)
    volatility, dt = 0.4, 1 / 252
    price, returns = 1_000_000.0, []  # a high price so rounding to the tick does not distort returns
    for _ in range(20_000):
        next_price = gbm_step(price, volatility, dt, rng.gauss(0, 1), 0.01)
        returns.append(math.log(next_price / price))
        price = next_price
    assert statistics.stdev(returns) == pytest.approx(volatility * math.sqrt(dt), rel=0.03)
    # Driftless GBM: E[S_t+1 / S_t] = 1, i.e. mean log return = -sigma^2 dt / 2.
    standard_error = volatility * math.sqrt(dt) / math.sqrt(len(returns))
    assert abs(statistics.fmean(returns) + 0.5 * volatility**2 * dt) < 4 * standard_error


def test_steps_are_multiplicative_not_a_fixed_walk() -> None:
    small = gbm_step(10.0, 0.3, 1 / 252, 1.0, 0.0001)
    large = gbm_step(1000.0, 0.3, 1 / 252, 1.0, 0.0001)
    assert large - 1000.0 == pytest.approx((small - 10.0) * 100, rel=1e-3)


def test_prices_are_rounded_to_the_tick_and_never_reach_zero() -> None:
    rng = random.Random(2)
    price = 0.05
    for _ in range(2_000):
        price = gbm_step(price, 3.0, 1 / 12, rng.gauss(0, 1) - 2, 0.01)
        assert price >= 0.01
        assert round(price * 100) == pytest.approx(price * 100, abs=1e-9)
    assert gbm_step(0.01, 1.0, 1.0, -50.0, 0.01) == 0.01


def test_same_seed_same_path() -> None:
    def path(seed: int) -> list[float]:
        rng, price, out = random.Random(seed), 100.0, []
        for _ in range(50):
            price = gbm_step(price, 0.3, 1e-4, rng.gauss(0, 1), 0.01)
            out.append(price)
        return out

    assert path(5) == path(5)
    assert path(5) != path(6)


def test_default_instruments_are_plausible() -> None:
    assert {"AAPL", "GOOGL", "AMZN", "MSFT", "BTCUSDT", "ETHUSDT"} <= set(KNOWN_INSTRUMENTS)
    stocks = [i for i in KNOWN_INSTRUMENTS.values() if not i.base]
    pairs = [i for i in KNOWN_INSTRUMENTS.values() if i.base]
    assert len(stocks) >= 30 and len(pairs) >= 20
    assert all(i.name and i.tick_size == 0.01 and 1 < i.start_price < 5_000 for i in stocks)
    assert all(i.symbol == i.base + i.quote and i.name == f"{i.base}/{i.quote}" for i in pairs)
    # Every start price is a whole number of ticks, and a sub-cent coin is quoted finer than a cent.
    assert all(abs(i.start_price / i.tick_size - round(i.start_price / i.tick_size)) < 1e-6 for i in pairs + stocks)
    assert KNOWN_INSTRUMENTS["DOGEUSDT"].decimals == 5 and KNOWN_INSTRUMENTS["SHIBUSDT"].decimals == 8
    assert all(0.1 <= i.volatility <= 1.5 for i in KNOWN_INSTRUMENTS.values())
    assert KNOWN_INSTRUMENTS["BTCUSDT"].start_price > 10_000
    assert KNOWN_INSTRUMENTS["ETHUSDT"].volatility > KNOWN_INSTRUMENTS["AAPL"].volatility
    assert instrument_for("XYZ").start_price == 100.0
    assert instrument_for("AAPL").decimals == 2


async def collect(feed: DemoFeed, seconds: float) -> tuple[list[PriceUpdate], list[float]]:
    send, receive = trio.open_memory_channel[Ingest](1000)
    output = FeedOutput(feed.name, feed.symbols, send, wall_clock=time.time)
    updates: list[PriceUpdate] = []
    times: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run_connection, output)
        assert receive.statistics().current_buffer_used == len(feed.symbols)  # the start prices
        with trio.move_on_after(seconds):
            async for item in receive:
                assert isinstance(item, PriceUpdate)  # the supervisor, not the feed, reports the source's state
                updates.append(item)
                times.append(trio.current_time())
        nursery.cancel_scope.cancel()
    return updates, times


async def test_feed_ticks_every_symbol_on_a_fixed_schedule(autojump_clock: trio.abc.Clock) -> None:
    feed = DemoFeed(("AAPL", "BTCUSDT"), interval=0.5, speed=60, seed=3)
    start = trio.current_time()
    updates, times = await collect(feed, 2.2)
    assert [update.symbol for update in updates] == ["AAPL", "BTCUSDT"] * 5
    assert [round(t - start, 6) for t in times[::2]] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert all(update.mode is Mode.DEMO and update.source == "demo" for update in updates)
    assert updates[0].price == updates[0].reference == KNOWN_INSTRUMENTS["AAPL"].start_price
    assert all(update.reference == KNOWN_INSTRUMENTS[update.symbol].start_price for update in updates)


async def test_feed_is_deterministic_for_a_seed(autojump_clock: trio.abc.Clock) -> None:
    first, _ = await collect(DemoFeed(("AAPL",), interval=1.0, speed=3600, seed=11), 10.5)
    second, _ = await collect(DemoFeed(("AAPL",), interval=1.0, speed=3600, seed=11), 10.5)
    assert [u.price for u in first] == [u.price for u in second]
    assert len({u.price for u in first}) > 3  # it actually moves


def test_speed_scales_the_time_step() -> None:
    feed = DemoFeed(("AAPL",), interval=0.5, speed=60, seed=1)
    assert feed._dt_years == pytest.approx(30 / SECONDS_PER_YEAR)


async def test_a_restarted_feed_goes_on_from_where_it_left_off(autojump_clock: trio.abc.Clock) -> None:
    feed = DemoFeed(("AAPL",), interval=1.0, speed=3600, seed=4)
    first_run, _ = await collect(feed, 5.5)
    second_run, _ = await collect(feed, 0.5)  # the supervisor restarted it
    assert second_run[0].price == first_run[-1].price != KNOWN_INSTRUMENTS["AAPL"].start_price
    assert second_run[0].reference == KNOWN_INSTRUMENTS["AAPL"].start_price  # change is still session-relative


async def test_a_new_feed_resumes_from_the_prices_clients_last_saw(autojump_clock: trio.abc.Clock) -> None:
    """A new ingest leader's demo must not jump back to the start prices."""
    last_published = {"AAPL": 201.37}
    feed = DemoFeed(("AAPL", "MSFT"), interval=1.0, speed=60, seed=4, latest_price=last_published.get)
    updates, _ = await collect(feed, 0.5)
    assert [(u.symbol, u.price) for u in updates] == [("AAPL", 201.37), ("MSFT", KNOWN_INSTRUMENTS["MSFT"].start_price)]


async def test_every_update_carries_the_walks_24h_statistics(autojump_clock: trio.abc.Clock) -> None:
    feed = DemoFeed(("BTCUSDT",), interval=1.0, speed=3600, seed=8)
    updates, _ = await collect(feed, 20.5)
    seen: list[PriceUpdate] = []
    for update in updates:
        seen.append(update)
        assert update.day_stats is not None
        assert update.day_stats.open == updates[0].price  # the window starts with the feed
        assert update.day_stats.high == max(u.price for u in seen)
        assert update.day_stats.low == min(u.price for u in seen)
        assert update.day_stats.volume == float(sum(u.volume or 0 for u in seen))
    assert len({u.day_stats.high for u in updates if u.day_stats}) > 1  # the walk moves the range


async def test_a_symbol_added_while_a_step_waits_for_the_hub_first_goes_out_at_its_start_price(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The hub is slow (a channel of one): a symbol streamed on demand while a step waits for it is not walked
    before its first price has gone out, so that first price is its start price."""
    feed = DemoFeed(("AAPL", "BTCUSDT"), interval=0.5, speed=3600, seed=5)
    send, receive = trio.open_memory_channel[Ingest](1)
    output = FeedOutput(feed.name, feed.symbols, send, wall_clock=time.time)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed.run_connection, output)
        first = [await receive.receive() for _ in range(2)]  # the start prices
        await trio.sleep(0.6)  # the first step has AAPL in the channel and waits to send BTCUSDT
        assert [u.symbol for u in first] == ["AAPL", "BTCUSDT"] and receive.statistics().current_buffer_used == 1
        feed.stream_symbol(Listing("DOGEUSDT", "demo", "DOGE/USDT", precision=5))
        output.track("DOGEUSDT")
        await trio.sleep(0.6)  # the second step came due while the first one waited
        updates: list[PriceUpdate] = []
        while not any(u.symbol == "DOGEUSDT" for u in updates):
            item = await receive.receive()
            assert isinstance(item, PriceUpdate)
            updates.append(item)
        doge = next(u for u in updates if u.symbol == "DOGEUSDT")
        assert doge.price == KNOWN_INSTRUMENTS["DOGEUSDT"].start_price
        nursery.cancel_scope.cancel()
