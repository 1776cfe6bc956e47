"""The candle writer over an in-memory store on the autojump clock: batching, failures, bounds, merges."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from decimal import Decimal

import pytest
import trio
import trio.testing

from tests.fakes.candle_store import MemoryCandles
from trio_ticker.history.book import CandleBook
from trio_ticker.history.candles import Candle, Interval
from trio_ticker.history.store import CandleStore, CandleWrite, Retention
from trio_ticker.history.writer import CandleWriter
from trio_ticker.sources.retry import RetryPolicy

BASE_S = 1_763_640_000  # 12:00:00 UTC
BASE = BASE_S * 1000
KEEP_ALL = Retention(dict.fromkeys(Interval), max_per_series=1_000_000)


class Longest:
    """Full jitter's worst case: always the ceiling, so retry times are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Setup:
    def __init__(
        self,
        intervals: tuple[Interval, ...] = (Interval.M1, Interval.H1),
        *,
        pending_limit: int = 100_000,
        writing: Callable[[], bool] = lambda: True,
        preparers: tuple[object, ...] = (),
    ) -> None:
        start = trio.current_time()
        self.clock = lambda: BASE_S + trio.current_time() - start
        self.store = MemoryCandles()
        self.book = CandleBook(["BTCUSDT"], intervals=intervals)
        self.writer = CandleWriter(
            self.store.open,
            self.book,
            store_name="memory",
            retention=KEEP_ALL,
            flush_interval=1.0,
            pending_limit=pending_limit,
            policy=RetryPolicy(initial=1.0, maximum=8.0),
            writing=writing,
            preparers=preparers,  # type: ignore[arg-type]
            jitter=Longest(),
            wall_clock=self.clock,
        )
        self.volume = Decimal(0)
        self.ticks = 0

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def tick(self, price: str = "100.5", volume: str = "0.25") -> None:
        now = self.now_ms()
        self.book.record("BTCUSDT", Decimal(price), Decimal(volume), now, now)
        self.volume += Decimal(volume)
        self.ticks += 1

    async def ticks_for(self, seconds: float, every: float = 0.01) -> None:
        for _ in range(round(seconds / every)):
            self.tick()
            await trio.sleep(every)
        self.book.close_due(self.now_ms())


async def test_writes_are_batched_once_per_flush_interval_whatever_the_tick_rate(
    autojump_clock: trio.abc.Clock,
) -> None:
    setup = Setup()
    async with trio.open_nursery() as nursery:
        await nursery.start(setup.writer.run)
        started = trio.current_time()
        await setup.ticks_for(130)  # 13,000 ticks into two 1 m candles and a bit
        await trio.sleep(1.5)
        nursery.cancel_scope.cancel()
    times = [at - started for at, _ in setup.store.batches]
    assert 129 <= len(times) <= 131  # one call per second (none when nothing changed), not one per tick
    assert all(abs((later - earlier) - 1.0) < 1e-6 for earlier, later in itertools.pairwise(times))
    minutes = setup.store.series("BTCUSDT", Interval.M1)
    assert [c.open_time for c in minutes] == [BASE, BASE + 60_000, BASE + 120_000]
    assert sum((c.volume for c in minutes), Decimal(0)) == setup.volume
    assert sum(c.trades for c in minutes) == setup.ticks == 13_000
    [hour] = setup.store.series("BTCUSDT", Interval.H1)
    assert (hour.volume, hour.trades) == (setup.volume, setup.ticks)


async def test_a_shutdown_writes_what_changed_since_the_last_flush(autojump_clock: trio.abc.Clock) -> None:
    setup = Setup()
    async with trio.open_nursery() as nursery:
        await nursery.start(setup.writer.run)
        await setup.ticks_for(0.9)  # the first flush was at once; the next would be due at 1 s
        nursery.cancel_scope.cancel()
    [minute] = setup.store.series("BTCUSDT", Interval.M1)
    assert minute.trades == setup.ticks == 90


async def test_a_failed_store_logs_once_keeps_every_candle_and_retries_with_backoff(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    setup = Setup()
    caplog.set_level(logging.DEBUG, logger="trio_ticker.history.writer")
    async with trio.open_nursery() as nursery:
        await nursery.start(setup.writer.run)
        await setup.ticks_for(2.5)
        setup.store.down = True  # e.g. another process holds the SQLite file's lock
        await setup.ticks_for(300)  # five minutes of candles close meanwhile
        health = setup.writer.health()
        assert (health.state, health.error) == ("unavailable", "OperationalError: database is locked")
        opened_while_down = setup.store.opened
        setup.store.down = False
        await setup.ticks_for(10)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "event=history_store_failed" in errors[0].getMessage()
    assert "event=history_store_recovered" in caplog.text
    # Backoff 1, 2, 4, 8, 8, ... s: about 40 attempts in 300 s, never a tight loop.
    assert 35 <= opened_while_down <= 45
    minutes = setup.store.series("BTCUSDT", Interval.M1)
    assert [c.open_time for c in minutes] == [BASE + m * 60_000 for m in range(6)]  # none lost
    assert sum((c.volume for c in minutes), Decimal(0)) == setup.volume
    assert setup.writer.health().state == "ok" and setup.writer.health().pending == 0


async def test_a_batch_whose_write_failed_is_written_later(autojump_clock: trio.abc.Clock) -> None:
    setup = Setup()
    async with trio.open_nursery() as nursery:
        await nursery.start(setup.writer.run)
        await setup.ticks_for(50)
        setup.store.failing_writes = True  # the disk fills up: minute 0 closes and cannot be written
        await setup.ticks_for(30)
        setup.store.failing_writes = False
        await trio.sleep(20)
        nursery.cancel_scope.cancel()
    [first, second] = setup.store.series("BTCUSDT", Interval.M1)
    assert (first.open_time, first.trades) == (BASE, 6_000)
    assert first.trades + second.trades == setup.ticks


async def test_unwritten_candles_are_bounded_the_finest_oldest_go_first(autojump_clock: trio.abc.Clock) -> None:
    setup = Setup((Interval.S1, Interval.M1), pending_limit=120)
    async with trio.open_nursery() as nursery:
        setup.store.down = True
        await nursery.start(setup.writer.run)
        await setup.ticks_for(600, every=0.5)  # 600 closed 1 s candles and 10 of 1 m: more than 120
        assert setup.writer.health().pending <= 120
        setup.store.down = False
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert len(setup.store.series("BTCUSDT", Interval.M1)) == 10  # every coarser candle kept
    seconds = setup.store.series("BTCUSDT", Interval.S1)
    assert seconds[-1].open_time == BASE + 599_000  # the newest seconds kept
    assert setup.writer.health().dropped == 600 - len(seconds)
    assert len(seconds) <= 120


async def test_the_first_candle_after_a_restart_adds_to_the_stored_part_once(autojump_clock: trio.abc.Clock) -> None:
    setup = Setup()
    before = Candle(
        "BTCUSDT", Interval.H1, BASE, Decimal(90), Decimal(120), Decimal(80), Decimal(95), Decimal(7), 4, BASE - 1
    )
    setup.store.candles[before.key] = before  # written by the process that ran before this one
    async with trio.open_nursery() as nursery:
        await nursery.start(setup.writer.run)
        await setup.ticks_for(30)
        nursery.cancel_scope.cancel()
    [hour] = setup.store.series("BTCUSDT", Interval.H1)
    assert (hour.open, hour.high, hour.low) == (90, 120, 80)
    assert (hour.volume, hour.trades) == (7 + setup.volume, 4 + setup.ticks)  # added once, not once per flush
    current = setup.book.current("BTCUSDT", Interval.H1)
    assert current is not None and current.volume == hour.volume  # clients see the whole hour too


async def test_a_follower_writes_nothing_until_it_leads(autojump_clock: trio.abc.Clock) -> None:
    leading = False
    setup = Setup(writing=lambda: leading)
    async with trio.open_nursery() as nursery:
        await nursery.start(setup.writer.run)
        await setup.ticks_for(300)
        assert setup.store.batches == []
        assert setup.writer.health().pending <= 3  # the open candles and the last minute's closed one, no more
        # Another worker wrote the same stream meanwhile: on taking over, nothing is counted twice.
        hour = setup.book.current("BTCUSDT", Interval.H1)
        assert hour is not None
        setup.store.candles[hour.key] = hour
        leading = True
        await trio.sleep(1.5)
        nursery.cancel_scope.cancel()
    [stored] = setup.store.series("BTCUSDT", Interval.H1)
    assert stored.volume == setup.volume
    assert len(setup.store.series("BTCUSDT", Interval.M1)) == 2  # the one closed in the last minute, and the open one


class GeneratedPast:
    """A preparer that supplies the first half of the current hour, as the demo past does."""

    def __init__(self) -> None:
        self.calls = 0

    async def prepare(self, store: CandleStore) -> list[CandleWrite]:
        self.calls += 1
        part = Candle(
            "BTCUSDT", Interval.H1, BASE, Decimal(50), Decimal(60), Decimal(40), Decimal(55), Decimal(3), 10, BASE - 1
        )
        return [CandleWrite(part, merge_from=BASE)]


async def test_what_a_preparer_returns_is_written_first_and_once(autojump_clock: trio.abc.Clock) -> None:
    past = GeneratedPast()
    setup = Setup(preparers=(past,))
    async with trio.open_nursery() as nursery:
        await nursery.start(setup.writer.run)
        await setup.ticks_for(20)
        setup.store.down = True
        await trio.sleep(5)
        setup.store.down = False
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert past.calls == 1
    [hour] = setup.store.series("BTCUSDT", Interval.H1)
    assert (hour.open, hour.low, hour.volume, hour.trades) == (50, 40, 3 + setup.volume, 10 + setup.ticks)


async def test_klines_from_backfill_are_handed_to_the_live_candles_once_written(autojump_clock: trio.abc.Clock) -> None:
    store, book = MemoryCandles(), CandleBook(["BTCUSDT"], intervals=(Interval.M1,))
    send, fetched = trio.open_memory_channel[list[Candle]](4)
    told: list[tuple[bool, list[Candle]]] = []
    writer = CandleWriter(
        store.open,
        book,
        store_name="memory",
        retention=KEEP_ALL,
        flush_interval=1.0,
        pending_limit=1000,
        policy=RetryPolicy(initial=1.0, maximum=8.0),
        backfilled=fetched,
        on_repaired=lambda candles: told.append((bool(store.candles), list(candles))),
        jitter=Longest(),
    )
    kline = Candle(
        "BTCUSDT", Interval.M1, BASE, Decimal(90), Decimal(91), Decimal(89), Decimal(90), Decimal(2), 3,
        BASE + 59_999, True,
    )  # fmt: skip
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        store.down = True
        await send.send([kline])
        await trio.sleep(5)  # not written yet: nobody is told
        assert [candles for _, candles in told if candles] == []
        store.down = False
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert [(written, candles) for written, candles in told if candles] == [(True, [kline])]
