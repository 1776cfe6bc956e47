"""Subscriptions drive upstream, in memory on the autojump clock: a real demo feed (supervised) streams what
clients want, the linger keeps an unwatched symbol for exactly TICKER_SYMBOL_LINGER, the cap refuses with
`symbol_limit` and changes nothing, and an unlisted symbol gets `unknown_symbol` with no upstream change."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.support.demand import DemandDelivery, ListedDirectory
from tests.support.memory_transport import MemoryTransport
from trio_ticker.delivery.outbox import ClientOutbox
from trio_ticker.sources.demo import DemoFeed
from trio_ticker.sources.demo_instruments import instrument_for

CONFIGURED = ("BTCUSDT", "ETHUSDT")
LISTED = (*CONFIGURED, "DOGEUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT")
LINGER = 60.0


def demo_delivery(*, max_active: int = 100, linger: float = LINGER) -> tuple[DemandDelivery, DemoFeed]:
    demo = DemoFeed(CONFIGURED, interval=1.0, speed=1.0, seed=7)
    delivery = DemandDelivery(
        [demo],
        ListedDirectory("demo", LISTED, precision=5),
        always_on=CONFIGURED,
        linger=linger,
        max_active=max_active,
    )
    return delivery, demo


async def open_client(nursery: trio.Nursery, delivery: DemandDelivery) -> tuple[MemoryTransport, ClientOutbox]:
    transport = MemoryTransport(client_window=1000)
    outbox: ClientOutbox = await nursery.start(delivery.session(transport, peer="test").run)
    return transport, outbox


async def command(transport: MemoryTransport, action: str, *symbols: str) -> dict:  # type: ignore[type-arg]
    """The reply to one command (ticks already queued are skipped)."""
    await transport.client_send({"action": action, "symbols": list(symbols), "id": 1})
    while (message := await transport.client_receive())["type"] == "tick":
        pass
    return message


async def next_tick(transport: MemoryTransport, symbol: str) -> dict:  # type: ignore[type-arg]
    while True:
        message = await transport.client_receive()
        if message.get("type") == "tick" and message["ticker"] == symbol:
            return message


async def test_the_first_subscriber_starts_the_stream_and_gets_the_first_price_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivery, demo = demo_delivery()
    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        transport, _ = await open_client(nursery, delivery)
        assert demo.symbols == CONFIGURED
        started = trio.current_time()
        assert (await command(transport, "subscribe", "DOGEUSDT"))["type"] == "subscribed"
        assert demo.symbols == (*CONFIGURED, "DOGEUSDT")
        tick = await next_tick(transport, "DOGEUSDT")
        assert trio.current_time() == started  # not the next demo step, 1 s later
        assert tick["price"] == instrument_for("DOGEUSDT").start_price  # the demo table's, to its precision
        assert delivery.demand.active() == {*CONFIGURED, "DOGEUSDT"}
        nursery.cancel_scope.cancel()


async def test_the_upstream_subscription_is_dropped_exactly_one_linger_after_the_last_subscriber_leaves(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivery, demo = demo_delivery()
    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        first, _ = await open_client(nursery, delivery)
        second, _ = await open_client(nursery, delivery)
        await command(first, "subscribe", "DOGEUSDT")
        await command(second, "subscribe", "DOGEUSDT")
        await command(first, "unsubscribe", "DOGEUSDT")
        await trio.sleep(10)
        await second.client_disconnect()  # the last subscriber leaves at t0
        await trio.testing.wait_all_tasks_blocked()
        t0 = trio.current_time()
        assert delivery.demand.lingering() == {"DOGEUSDT"}
        await trio.sleep(30)  # a reload within the linger cancels the drop
        third, _ = await open_client(nursery, delivery)
        await command(third, "subscribe", "DOGEUSDT")
        assert delivery.demand.lingering() == frozenset()
        await trio.sleep(LINGER)  # past the first linger's end: still streaming
        assert "DOGEUSDT" in demo.symbols
        await command(third, "unsubscribe", "DOGEUSDT")
        t1 = trio.current_time()
        assert t1 == t0 + 30 + LINGER
        await trio.sleep_until(t1 + LINGER - 0.001)
        assert "DOGEUSDT" in demo.symbols
        assert delivery.hub.latest("DOGEUSDT") is not None
        await trio.sleep_until(t1 + LINGER)
        await trio.testing.wait_all_tasks_blocked()
        assert demo.symbols == CONFIGURED
        assert delivery.hub.latest("DOGEUSDT") is None  # a later subscriber gets a fresh first price, not this
        assert delivery.demand.statistics().dropped == 1
        nursery.cancel_scope.cancel()


async def test_configured_symbols_stay_subscribed_when_nobody_watches_them(autojump_clock: trio.abc.Clock) -> None:
    delivery, demo = demo_delivery()
    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        transport, _ = await open_client(nursery, delivery)
        await command(transport, "subscribe", "BTCUSDT")
        await command(transport, "unsubscribe", "BTCUSDT")
        await trio.sleep(LINGER * 3)
        assert demo.symbols == CONFIGURED
        assert delivery.demand.lingering() == frozenset()
        nursery.cancel_scope.cancel()


async def test_past_the_cap_a_subscribe_gets_symbol_limit_and_nothing_changes(autojump_clock: trio.abc.Clock) -> None:
    delivery, demo = demo_delivery(max_active=len(CONFIGURED) + 2)
    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        transport, outbox = await open_client(nursery, delivery)
        await command(transport, "subscribe", "DOGEUSDT", "SOLUSDT")
        other, other_outbox = await open_client(nursery, delivery)
        reply = await command(other, "subscribe", "BTCUSDT", "XRPUSDT")
        assert reply["type"] == "error"
        assert reply["code"] == "symbol_limit"
        assert reply["limit"] == len(CONFIGURED) + 2
        assert reply["id"] == 1
        assert "BTCUSDT" not in other_outbox.subscriptions  # the whole command is refused
        assert demo.symbols == (*CONFIGURED, "DOGEUSDT", "SOLUSDT")
        assert delivery.demand.active() == {*CONFIGURED, "DOGEUSDT", "SOLUSDT"}
        # Symbols already streaming are no new load: more subscribers are fine.
        assert (await command(other, "subscribe", "DOGEUSDT", "ETHUSDT"))["type"] == "subscribed"
        # A lingering symbol makes room for a new one rather than refusing it.
        await command(transport, "unsubscribe", "SOLUSDT")
        assert delivery.demand.lingering() == {"SOLUSDT"}
        assert (await command(other, "subscribe", "XRPUSDT"))["type"] == "subscribed"
        assert demo.symbols == (*CONFIGURED, "DOGEUSDT", "XRPUSDT")
        assert delivery.demand.lingering() == frozenset()
        assert set(outbox.subscriptions) == {"DOGEUSDT"}
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("symbols", [("NOPEUSDT",), ("DOGEUSDT", "NOPEUSDT")])
async def test_an_unlisted_symbol_gets_unknown_symbol_at_once_with_no_upstream_change(
    autojump_clock: trio.abc.Clock, symbols: tuple[str, ...]
) -> None:
    delivery, demo = demo_delivery()
    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        transport, outbox = await open_client(nursery, delivery)
        asked = trio.current_time()
        reply = await command(transport, "subscribe", *symbols)
        assert trio.current_time() == asked
        assert reply["code"] == "unknown_symbol"
        assert reply["symbols"] == ["NOPEUSDT"]
        assert demo.symbols == CONFIGURED
        assert delivery.demand.statistics().added == 0
        assert dict(outbox.subscriptions) == {}
        nursery.cancel_scope.cancel()
