"""Churn: 2000 connect / subscribe / disconnect cycles leave the hub empty and no task behind.

Sessions (with their limit guards) over in-memory transports, on the autojump clock, while a
publisher keeps ticking, so cycles end with frames in flight.
"""

from __future__ import annotations

import itertools

import trio
import trio.testing

from tests.support.delivery import Delivery
from tests.support.helpers import count_tasks, make_settings
from tests.support.memory_transport import MemoryTransport
from trio_ticker.edge.limits import InboundGuard, LimitCounters, SessionLimits
from trio_ticker.model import Mode, PriceUpdate

SYMBOLS = ("AAPL", "MSFT", "BTCUSDT")
CYCLES = 2000
CONCURRENT = 20


async def test_2000_cycles_leave_the_registry_empty_and_no_task_behind(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=8)
    hub = delivery.hub
    limits = SessionLimits.from_settings(make_settings())
    counters = LimitCounters()
    expected_messages_out = 0
    published = 0

    async def publish_forever() -> None:
        nonlocal expected_messages_out, published
        for price in itertools.count(100):
            symbol = SYMBOLS[price % len(SYMBOLS)]
            expected_messages_out += hub.subscriber_count(symbol)
            hub.publish(PriceUpdate(symbol, float(price), 100.0, 1_700_000_000_000, Mode.DEMO))
            published += 1
            await trio.sleep(0.003)

    async def cycle(index: int) -> None:
        transport = MemoryTransport(client_window=1000)
        guard = InboundGuard(limits, counters, trio.current_time())
        session = delivery.session(transport, peer=f"churn-{index}", guard=guard)
        async with trio.open_nursery() as nursery:
            await nursery.start(session.run)
            await transport.client_send(
                {"action": "subscribe", "symbols": [SYMBOLS[index % 3], SYMBOLS[(index + 1) % 3]]}
            )
            assert (await transport.client_receive())["type"] == "subscribed"
            await trio.sleep(0.01 * (index % 4))  # 0 to 3 ticks per symbol arrive meanwhile
            await transport.client_disconnect()

    baseline = count_tasks()
    async with trio.open_nursery() as outer:
        outer.start_soon(publish_forever)
        for batch in range(CYCLES // CONCURRENT):
            async with trio.open_nursery() as nursery:
                for offset in range(CONCURRENT):
                    nursery.start_soon(cycle, batch * CONCURRENT + offset)
            assert hub.statistics().clients == 0
        outer.cancel_scope.cancel()

    assert count_tasks() == baseline
    statistics = hub.statistics()
    assert statistics.clients == 0
    assert statistics.subscriptions == 0
    assert [hub.subscriber_count(symbol) for symbol in SYMBOLS] == [0, 0, 0]
    assert statistics.ticks_in == statistics.encodes == published
    assert statistics.messages_out == expected_messages_out
    assert statistics.conflated == statistics.evicted == 0
    assert expected_messages_out > CYCLES  # live ticks really were in flight as clients left
    assert counters.rate_limited == counters.too_many_subscriptions == 0
