"""Workers' interest on the autojump clock, over the in-memory store: renewed every third of the lease, gone
one lease after its worker stops, and the leader's router streams the union but not what upstream refused."""

from __future__ import annotations

import trio
import trio.testing

from tests.fakes.memory_store import FakeRedis
from trio_ticker.ingest.scaleout.interest import InterestRouter, WorkerInterest
from trio_ticker.model import Listing
from trio_ticker.sources.demo import DemoFeed
from trio_ticker.sources.retry import RetryPolicy
from trio_ticker.sources.supervise import Supervisor

LEASE = 3.0
DOGE = Listing("DOGEUSDT", "demo", "DOGE/USDT", 5)
SOL = Listing("SOLUSDT", "demo", "SOL/USDT", 2)


def worker_interest(redis: FakeRedis) -> WorkerInterest:
    return WorkerInterest(redis.opener("w"), lease=LEASE, command_timeout=0.5, policy=RetryPolicy(initial=0.1))


async def test_a_stopped_workers_interest_counts_for_exactly_one_lease(autojump_clock: trio.abc.Clock) -> None:
    redis = FakeRedis()
    interest = worker_interest(redis)
    store = redis.opener("leader")
    async with trio.open_nursery() as nursery, store() as leader_view:
        worker_scope = trio.CancelScope()

        async def run_worker() -> None:
            with worker_scope:
                await interest.run()

        nursery.start_soon(run_worker)
        (stream,) = interest.streams(["demo"])
        stream.stream_symbol(DOGE)
        await trio.testing.wait_all_tasks_blocked()
        assert await leader_view.read_interest() == {"DOGEUSDT": DOGE}
        await trio.sleep(10 * LEASE + LEASE / 6)  # renewed all along; now between two renewals
        assert await leader_view.read_interest() == {"DOGEUSDT": DOGE}
        last_publish = trio.current_time() - (trio.current_time() % (LEASE / 3))
        worker_scope.cancel()
        await trio.sleep_until(last_publish + LEASE - 0.001)
        assert await leader_view.read_interest() == {"DOGEUSDT": DOGE}
        await trio.sleep_until(last_publish + LEASE)
        assert await leader_view.read_interest() == {}


async def test_the_router_streams_the_union_and_leaves_a_refused_symbol_alone(autojump_clock: trio.abc.Clock) -> None:
    demo = DemoFeed(("BTCUSDT",), interval=1.0, speed=1.0, seed=1)
    router = InterestRouter([Supervisor(demo, stale_after=None, policy=RetryPolicy())])
    router.apply({"DOGEUSDT": DOGE, "SOLUSDT": SOL})
    assert demo.symbols == ("BTCUSDT", "DOGEUSDT", "SOLUSDT")
    router.refused("SOLUSDT")
    demo.drop_symbol("SOLUSDT")  # what a refusing source does itself
    router.apply({"DOGEUSDT": DOGE, "SOLUSDT": SOL})  # a worker still wants it: not asked again
    assert demo.symbols == ("BTCUSDT", "DOGEUSDT")
    router.apply({"DOGEUSDT": DOGE})
    router.apply({"DOGEUSDT": DOGE, "SOLUSDT": SOL})  # wanted afresh after nobody wanted it: asked again
    assert demo.symbols == ("BTCUSDT", "DOGEUSDT", "SOLUSDT")
    router.apply({})
    assert demo.symbols == ("BTCUSDT",)
    assert router.streaming() == frozenset()
