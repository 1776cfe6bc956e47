"""Fan-out under load: each tick is encoded once however many clients subscribe, and the slow-client
watchdog copes with a client that falls behind and catches up before the watchdog gets to run.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_ticker.hub import Hub
from trio_ticker.model import Mode, PriceUpdate
from trio_ticker.outbox import ClientOutbox

TICKS = 20


def publish_ticks(hub: Hub, symbol: str, count: int) -> None:
    for price in range(count):
        hub.publish(PriceUpdate(symbol, 100.0 + price, 100.0, 1_700_000_000_000 + price, Mode.DEMO))


@pytest.mark.parametrize("subscribers", [0, 1, 10, 1000])
def test_each_tick_is_encoded_once_regardless_of_subscriber_count(subscribers: int) -> None:
    hub = Hub(("BTCUSDT", "AAPL"), client_buffer=TICKS)
    outboxes = [hub.connect() for _ in range(subscribers)]
    for outbox in outboxes:
        hub.subscribe(outbox, ("BTCUSDT",))
    publish_ticks(hub, "BTCUSDT", TICKS)
    statistics = hub.statistics()
    assert statistics.ticks_in == TICKS
    assert statistics.encodes == TICKS
    assert statistics.messages_out == TICKS * subscribers
    assert statistics.conflated == 0
    queued = [[outbox.receive.receive_nowait()[1] for _ in range(TICKS)] for outbox in outboxes]
    for frames in queued[1:]:
        assert all(frame is first for frame, first in zip(frames, queued[0], strict=True))


async def test_the_watchdog_survives_a_client_that_catches_up_before_it_runs(
    autojump_clock: trio.abc.Clock,
) -> None:
    """On a busy server a client can fall behind and catch up between two runs of its watchdog."""
    outbox = ClientOutbox(1, capacity=1)
    evicted_at: list[float] = []

    async def watchdog() -> None:
        await outbox.wait_behind_for(5.0)
        evicted_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watchdog)
        await trio.testing.wait_all_tasks_blocked()
        outbox.offer("AAPL", "tick 1")
        outbox.offer("AAPL", "tick 2")  # the channel is full: behind (tick 1 collapses into tick 2)
        # Caught up again, before the watchdog had a chance to run.
        assert outbox.take_pending_entries() == [("AAPL", "tick 2")]
        await trio.sleep(10.0)
        assert evicted_at == []
        start = trio.current_time()
        outbox.offer("AAPL", "tick 3")
        outbox.offer("AAPL", "tick 4")  # behind again, and this time for good
        await trio.sleep(10.0)
        assert evicted_at == [start + 5.0]
