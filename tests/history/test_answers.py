"""What `/candles` answers while the writer is at work, over an in-memory store on the autojump clock: on the
writing node the candles as the store will hold them, whenever it is asked; on a follower what the store holds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

import trio

from tests.fakes.candle_store import MemoryCandles
from trio_ticker.history.book import CandleBook
from trio_ticker.history.candles import Candle, Interval
from trio_ticker.history.history import CandleHistory
from trio_ticker.history.live import LiveCandles
from trio_ticker.history.query import CandleQuery
from trio_ticker.history.store import CandleWrite, Retention
from trio_ticker.history.writer import CandleWriter
from trio_ticker.sources.retry import RetryPolicy

BASE_S = 1_763_640_000  # 12:00:00 UTC
BASE = BASE_S * 1000
SECONDS = CandleQuery("BTCUSDT", Interval.S1, start=None, end=None, limit=1000)


class SlowCandles(MemoryCandles):
    """A store whose writes take `write_delay` to land and whose reads answer `read_delay` after they looked."""

    write_delay = 0.0
    read_delay = 0.0

    async def write(self, writes: Sequence[CandleWrite]) -> list[Candle]:
        await trio.sleep(self.write_delay)
        return await super().write(writes)

    async def read(
        self, symbol: str, interval: Interval, *, start: int | None, end: int | None, limit: int
    ) -> list[Candle]:
        found = await super().read(symbol, interval, start=start, end=end, limit=limit)
        await trio.sleep(self.read_delay)
        return found


class Node:
    """One node's book, writer and history over `store`: it writes once a second from when its writer starts,
    unless it follows."""

    def __init__(self, store: MemoryCandles, *, writing: bool = True) -> None:
        self.start = trio.current_time()
        self.clock = lambda: BASE_S + self.elapsed()
        self.store = store
        self.book = CandleBook(["BTCUSDT"], intervals=(Interval.S1,))
        self.writer = CandleWriter(
            store.open,
            self.book,
            store_name="memory",
            retention=Retention(dict.fromkeys(Interval), max_per_series=1_000_000),
            flush_interval=1.0,
            pending_limit=100_000,
            policy=RetryPolicy(initial=1.0, maximum=1.0),
            writing=lambda: writing,
            wall_clock=self.clock,
        )
        live = LiveCandles(self.book, flush_interval=0.1, wall_clock=self.clock)
        self.history = CandleHistory(live, self.writer, wall_clock=self.clock)

    def elapsed(self) -> float:
        return trio.current_time() - self.start

    def tick(self, volume: str = "1") -> None:
        now = int(self.clock() * 1000)
        self.book.record("BTCUSDT", Decimal(100), Decimal(volume), now, now)

    async def ticks_until(self, until: float) -> None:
        """A tick at x.05, x.15, ... s until `until`: each second closes with the next one's first tick."""
        at = math.floor(self.elapsed() * 10) / 10 + 0.05
        while at < until:
            await trio.sleep_until(self.start + at)
            self.tick()
            at += 0.1

    async def closed_seconds(self) -> dict[int, int]:
        """Open time -> trades of each closed 1 s candle the node answers."""
        answer = await self.history.candles(SECONDS)
        return {candle.open_time: candle.trades for candle in answer.candles if candle.closed}


async def test_a_second_the_book_closed_since_the_last_write_is_answered_whole(autojump_clock: trio.abc.Clock) -> None:
    node = Node(MemoryCandles())
    async with trio.open_nursery() as nursery:
        await trio.sleep(0.5)
        await nursery.start(node.writer.run)  # writes at 0.5, 1.5, 2.5 s
        await node.ticks_until(2.1)  # second 1 stored at 1.5 s half done, closed at 2.05 s by the next tick
        answered = await node.closed_seconds()
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    assert answered[BASE + 1000] == 10
    assert {c.open_time: c.trades for c in node.store.series("BTCUSDT", Interval.S1)}[BASE + 1000] == 10


async def test_a_second_being_written_is_answered_whole(autojump_clock: trio.abc.Clock) -> None:
    store = SlowCandles()
    node = Node(store)
    async with trio.open_nursery() as nursery:
        await trio.sleep(0.5)
        await nursery.start(node.writer.run)
        await node.ticks_until(2.4)
        store.write_delay = 0.3  # the write at 2.5 s, of the whole second 1, lands at 2.8 s
        await trio.sleep_until(node.start + 2.6)
        answered = await node.closed_seconds()
        nursery.cancel_scope.cancel()
    assert answered[BASE + 1000] == 10


async def test_a_write_that_lands_during_a_read_is_not_missed(autojump_clock: trio.abc.Clock) -> None:
    store = SlowCandles()
    node = Node(store)
    async with trio.open_nursery() as nursery:
        await trio.sleep(0.5)
        await nursery.start(node.writer.run)
        await node.ticks_until(2.4)
        store.read_delay = 0.3  # it looks at 2.4 s, before the write of 2.5 s, and answers at 2.7 s
        answered = await node.closed_seconds()
        nursery.cancel_scope.cancel()
    assert answered[BASE + 1000] == 10


async def test_a_follower_answers_what_the_leader_stored_and_fills_in_only_what_is_not_stored(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryCandles()
    follower = Node(store, writing=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(follower.writer.run)
        await follower.ticks_until(3.1)  # seconds 0, 1 and 2 closed, of 10 trades each here
        # The leader kept a tick of second 1 that this worker found too late (a loaded machine), and has not written
        # seconds 0 and 2 yet: this worker's own second 2 fills in, not its first, a part of what the leader saw.
        prices = [Decimal(100)] * 4
        leaders = Candle("BTCUSDT", Interval.S1, BASE + 1000, *prices, Decimal(11), 11, BASE + 1950)
        store.candles[leaders.key] = leaders
        answered = await follower.closed_seconds()
        nursery.cancel_scope.cancel()
    assert store.batches == []  # a follower writes nothing
    assert answered == {BASE + 1000: 11, BASE + 2000: 10}
