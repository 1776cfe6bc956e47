"""What the follower reads from the stream before it applies a snapshot, on the autojump clock over the in-memory
store (tests/fakes/memory_store.py, whose stream ids are trio's clock in ms): on a fresh start the ticks within
the recovery window, as `PastTick`s by their age; after a reconnect, what its hub missed, as the news it is."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from itertools import pairwise

import trio
import trio.testing

from tests.fakes.memory_store import FakeRedis, FakeStore
from trio_ticker.ingest.scaleout.codec import Publishable
from trio_ticker.ingest.scaleout.follower import STATUS_SOURCE, TickFollower
from trio_ticker.model import Ingest, Mode, PastTick, PriceUpdate, SourceState, SourceStatus, StaleChange, Tick
from trio_ticker.sources.retry import RetryPolicy

SYMBOL = "BTCUSDT"
NODE = "worker"
WINDOW = 60.0


class HighestJitter:
    def uniform(self, a: float, b: float) -> float:
        return b


class Publisher:
    """The leader's side, by hand: holds the lease and publishes what a test says, when it says."""

    def __init__(self, redis: FakeRedis) -> None:
        self._redis = redis
        self._store: FakeStore | None = None
        self._token = 0
        self.prices = 0

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Publisher]:
        async with self._redis.open("leader") as store:
            self._store = store
            await self.take_lease()
            yield self

    async def take_lease(self) -> None:
        """The lease, again after the store lost it."""
        assert self._store is not None
        token = await self._store.try_acquire(1_000_000.0)
        assert token is not None
        self._token = token

    async def publish(self, *items: Publishable) -> None:
        assert self._store is not None and await self._store.publish(self._token, items)

    async def price(self) -> None:
        self.prices += 1
        ts = int(trio.current_time() * 1000)
        await self.publish(PriceUpdate(SYMBOL, 100.0 + self.prices, 100.0, ts=ts, mode=Mode.DEMO))

    async def prices_every(self, interval: float, *, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        while True:
            await self.price()
            await trio.sleep(interval)


def follower(redis: FakeRedis, recovery_window: float | None = WINDOW, epochs: list[str] | None = None) -> TickFollower:
    return TickFollower(
        redis.opener(NODE),
        dict,  # no hub here: nothing shown to clients that Redis could be behind
        command_timeout=1.0,
        policy=RetryPolicy(initial=0.2, maximum=1.0),
        jitter=HighestJitter(),
        on_epoch=(epochs if epochs is not None else []).append,
        recovery_window=recovery_window,
        range_page=2,  # several pages, even for a few entries
    )


async def collect(receive: trio.MemoryReceiveChannel[Ingest], items: list[Ingest]) -> None:
    async for item in receive:
        items.append(item)


async def start_following(nursery: trio.Nursery, tick_follower: TickFollower) -> list[Ingest]:
    """Run the follower into a list, until its first snapshot is in it."""
    items: list[Ingest] = []
    send, receive = trio.open_memory_channel[Ingest](1000)
    nursery.start_soon(collect, receive, items)
    await nursery.start(tick_follower.run, send)
    await trio.testing.wait_all_tasks_blocked()
    return items


def tick_seqs(items: Sequence[Ingest]) -> list[int]:
    return [item.seq for item in items if isinstance(item, Tick)]


def follower_states(items: Sequence[Ingest]) -> list[tuple[int, SourceState]]:
    """Where in `items` the follower said it was connected or reconnecting."""
    return [
        (index, item.state)
        for index, item in enumerate(items)
        if isinstance(item, SourceStatus) and item.source == STATUS_SOURCE
    ]


async def publish_for_100_seconds(publisher: Publisher) -> None:
    """Seqs 1-11 at t = 0, 10, ... 100; a source status and a stale flag at t = 75."""
    for step in range(11):
        await trio.sleep_until(10.0 * step)
        await publisher.price()
        if step == 7:
            await trio.sleep_until(75.0)
            await publisher.publish(SourceStatus("demo", SourceState.LIVE, 75_000), StaleChange(SYMBOL, True, 75_000))


async def test_a_fresh_follower_sends_the_ticks_within_the_window_by_age_and_then_the_snapshot(
    autojump_clock: trio.abc.Clock,
) -> None:
    redis = FakeRedis()
    async with Publisher(redis).open() as publisher, trio.open_nursery() as nursery:
        await publish_for_100_seconds(publisher)
        await trio.sleep_until(100.5)
        items = await start_following(nursery, follower(redis))
        nursery.cancel_scope.cancel()
    # The window's 60 s reach back to t = 40.5: seqs 6-11 (t = 50 ... 100), each by its age on the store's clock.
    past = [(item.tick.seq, item.age) for item in items if isinstance(item, PastTick)]
    assert past == [(6, 50.5), (7, 40.5), (8, 30.5), (9, 20.5), (10, 10.5), (11, 0.5)]
    assert all(isinstance(item, PastTick) for item in items[:6])  # the status and the stale flag are not past ticks
    snapshot = items[6:]
    assert [type(item).__name__ for item in snapshot] == ["SourceStatus", "Tick", "StaleChange", "SourceStatus"]
    assert tick_seqs(snapshot) == [11]
    assert follower_states(items) == [(9, SourceState.LIVE)]


async def test_recovery_off_reads_no_recent_ticks(autojump_clock: trio.abc.Clock) -> None:
    redis = FakeRedis()
    async with Publisher(redis).open() as publisher, trio.open_nursery() as nursery:
        await publish_for_100_seconds(publisher)
        await trio.sleep_until(100.5)
        items = await start_following(nursery, follower(redis, recovery_window=None))
        nursery.cancel_scope.cancel()
    assert [type(item).__name__ for item in items] == ["SourceStatus", "Tick", "StaleChange", "SourceStatus"]


async def test_ticks_published_while_the_follower_was_cut_off_reach_the_hub_in_order_after_it_reconnects(
    autojump_clock: trio.abc.Clock,
) -> None:
    redis = FakeRedis()
    async with Publisher(redis).open() as publisher, trio.open_nursery() as nursery:
        await nursery.start(publisher.prices_every, 0.1)
        await trio.sleep(1.05)
        tick_follower = follower(redis)
        items = await start_following(nursery, tick_follower)
        await trio.sleep(1.0)
        redis.set_cut_off(NODE, True)
        await trio.sleep(1.0)  # about 10 ticks published meanwhile
        redis.set_cut_off(NODE, False)
        while not tick_follower.connected:
            await trio.sleep(0.001)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    assert tick_follower.reconnects == 1
    states = follower_states(items)
    assert [state for _, state in states[:2]] == [SourceState.LIVE, SourceState.RECONNECTING]  # then, per attempt:
    assert {state for _, state in states[2:-1]} <= {SourceState.RECONNECTING} and states[-1][1] == SourceState.LIVE
    reconnecting, back = states[1][0], states[-1][0]
    before, after = tick_seqs(items[:reconnecting]), tick_seqs(items[reconnecting:back])
    assert len(after) > 10  # the ticks of the blip, and the snapshot's
    # Every seq once and in order, except the snapshot's tick again after what the follower read up to it.
    seqs = tick_seqs(items)
    assert seqs[0] == 11  # the first snapshot: seqs 1-11 were published before the follower started
    assert all(later in (earlier, earlier + 1) for earlier, later in pairwise(seqs))
    assert after[0] == before[-1] + 1 and after[-1] == after[-2] and seqs[-1] == publisher.prices
    assert not any(isinstance(item, PastTick) for item in items[states[0][0] :])  # only on the first connect


async def test_a_new_epoch_drops_the_old_cursor_and_reads_the_new_numbering_as_recent_ticks(
    autojump_clock: trio.abc.Clock,
) -> None:
    redis = FakeRedis()
    epochs: list[str] = []
    async with Publisher(redis).open() as publisher, trio.open_nursery() as nursery:
        for _ in range(3):
            await publisher.price()
            await trio.sleep(0.1)
        tick_follower = follower(redis, epochs=epochs)
        items = await start_following(nursery, tick_follower)
        await trio.sleep(1.0)
        redis.set_cut_off(NODE, True)
        redis.clear()  # Redis restarted without its data: a new numbering, a new epoch
        await publisher.take_lease()
        for _ in range(5):
            await trio.sleep(0.1)
            await publisher.publish(PriceUpdate(SYMBOL, 200.0, 100.0, ts=0, mode=Mode.DEMO))
        redis.set_cut_off(NODE, False)
        while not tick_follower.connected:
            await trio.sleep(0.001)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert len(epochs) == 2 and epochs[0] != epochs[1]
    reconnecting = follower_states(items)[1][0]
    after = items[reconnecting:]
    # Not news read from the old cursor on: the new stream's ticks go to the (cleared) recovery history.
    assert [item.tick.seq for item in after if isinstance(item, PastTick)] == [1, 2, 3, 4, 5]
    assert tick_seqs(after) == [5]  # the snapshot's
