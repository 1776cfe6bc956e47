"""Lease, failover and reconnect timing of the scale-out leader and follower, on the autojump clock
over the in-memory store (tests/fakes/memory_store.py); tests/ingest/scaleout/test_redis.py runs them on real Redis.
"""

from __future__ import annotations

import trio

from tests.fakes.memory_store import FakeRedis
from tests.support.delivery import Delivery
from trio_ticker.ingest.scaleout.codec import TICK
from trio_ticker.ingest.scaleout.follower import STATUS_SOURCE, TickFollower
from trio_ticker.ingest.scaleout.leader import IngestLeader
from trio_ticker.model import Ingest, Mode, PriceUpdate, SourceState
from trio_ticker.sources.retry import RetryPolicy

LEASE = 3.0
SYMBOL = "BTCUSDT"
POLICY = RetryPolicy(initial=0.2, maximum=5.0)


class HighestJitter:
    """Always the top of the backoff window, so retry times are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


class CountingSource:
    """Sends a price every 0.1 s, as a real source would; counts its runs."""

    name = "counting"
    symbols = (SYMBOL,)

    def __init__(self) -> None:
        self.runs = 0

    async def run(
        self, updates: trio.MemorySendChannel[Ingest], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self.runs += 1
        async with updates:
            task_status.started()
            for step in range(1, 1_000_000):
                await updates.send(PriceUpdate(SYMBOL, 100.0 + step, 100.0, ts=step, mode=Mode.DEMO))
                await trio.sleep(0.1)


def leader(redis: FakeRedis, source: CountingSource, node: str = "") -> IngestLeader:
    return IngestLeader(
        redis.opener(node),
        [source],
        lease=LEASE,
        command_timeout=1.0,
        policy=POLICY,
        ingest_buffer=16,
        jitter=HighestJitter(),
    )


async def wait_until_leading(candidate: IngestLeader) -> float:
    while candidate.leading_since is None:
        await trio.sleep(0.001)
    return candidate.leading_since


def published_seqs(redis: FakeRedis) -> list[int]:
    return [int(fields["seq"]) for _, fields in redis.stream if fields["kind"] == TICK]


async def test_a_hung_leader_steps_down_and_the_other_takes_over_at_lease_expiry(autojump_clock: object) -> None:
    redis = FakeRedis()
    sources = CountingSource(), CountingSource()
    first, second = leader(redis, sources[0], "a"), leader(redis, sources[1], "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(first.run)
        await nursery.start(second.run)
        assert first.leading and not second.leading
        await trio.sleep(10.55)  # renewed at t = 1, 2, ... 10
        redis.partitioned.add("a")  # the leader's node hangs: no answer, no error
        stepped_down_at = None
        while first.leading:
            await trio.sleep(0.001)
        stepped_down_at = trio.current_time()  # to the polling step
        took_over_at = await wait_until_leading(second)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    # Its next publish (at 10.6) gets no answer within the 1 s command timeout, so it stops before the
    # renewal due at 11 would have given up at 12, and before the lease expires at 13, when the other
    # candidate's attempt (every lease/3) wins it.
    assert round(stepped_down_at, 2) == 11.6
    assert round(took_over_at, 3) == 13.0
    assert (first.terms, second.terms, sources[1].runs) == (1, 1, 1)
    seqs = published_seqs(redis)
    assert seqs == list(range(1, len(seqs) + 1))  # no gap and no repeat across the change


async def test_a_cancelled_leader_releases_its_lease_for_an_immediate_takeover(autojump_clock: object) -> None:
    redis = FakeRedis()
    first, second = leader(redis, CountingSource()), leader(redis, CountingSource())
    async with trio.open_nursery() as nursery:
        first_scope = trio.CancelScope()

        async def run_first(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with first_scope:
                await first.run(task_status=task_status)

        await nursery.start(run_first)
        await nursery.start(second.run)  # its attempts come at t = 0, 1, 2, ...
        assert first.leading
        await trio.sleep(10.5)
        first_scope.cancel()
        took_over_at = await wait_until_leading(second)
        nursery.cancel_scope.cancel()
    assert round(took_over_at, 3) == 11.0  # its next attempt, not the lease expiry at 12
    seqs = published_seqs(redis)
    assert seqs == list(range(1, len(seqs) + 1))


async def test_an_unreachable_store_is_retried_with_capped_exponential_backoff(autojump_clock: object) -> None:
    redis = FakeRedis()
    redis.set_down(True)
    candidate = leader(redis, CountingSource())
    async with trio.open_nursery() as nursery:
        await nursery.start(candidate.run)
        await trio.sleep(20.0)
        redis.set_down(False)
        leading_at = await wait_until_leading(candidate)
        nursery.cancel_scope.cancel()
    attempts = [round(t, 3) for t in redis.opened_at]
    assert attempts == [0.0, 0.2, 0.6, 1.4, 3.0, 6.2, 11.2, 16.2, 21.2]
    assert round(leading_at, 3) == 21.2


async def test_the_follower_marks_stale_while_the_store_is_down_and_recovers_above_the_seen_seq(
    autojump_clock: object,
) -> None:
    redis = FakeRedis()
    delivery = Delivery((SYMBOL,), client_buffer=16)
    hub = delivery.hub
    source = CountingSource()
    candidate = leader(redis, source)
    follower = TickFollower(redis.open, hub.all_latest, command_timeout=1.0, policy=POLICY, jitter=HighestJitter())
    send, receive = trio.open_memory_channel[Ingest](64)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run, receive)
        await nursery.start(candidate.run)
        await trio.sleep(1.05)
        await nursery.start(follower.run, send)
        first = hub.latest(SYMBOL)
        assert first is not None and first.seq == 11  # the snapshot, before any live tick
        await trio.sleep(1.0)
        live = hub.latest(SYMBOL)
        assert live is not None and live.seq == 21 and not live.stale

        redis.set_down(True)
        await trio.sleep(0.5)
        down = hub.latest(SYMBOL)
        assert down is not None and down.stale and down.seq == live.seq
        assert hub.source_statuses()[STATUS_SOURCE].state == SourceState.RECONNECTING
        assert not follower.connected

        redis.clear()  # Redis comes back empty: no lease, no counters
        redis.set_down(False)
        while not follower.connected:
            await trio.sleep(0.001)
        # The follower raised the counter to what its clients saw before the new leader got far.
        assert redis.seq[SYMBOL] >= live.seq
        await trio.sleep(0.5)
        back = hub.latest(SYMBOL)
        nursery.cancel_scope.cancel()
    assert back is not None and back.seq > live.seq and not back.stale
    assert follower.reconnects == 1
    assert hub.source_statuses()[STATUS_SOURCE].state == SourceState.LIVE
