"""The prototypes' dialect through hub and sessions over in-memory transports, on the autojump clock.

What the crypto broadcaster's and the stock streamer's clients get: the default symbol for a client that has
not subscribed after a delay, price objects and error objects only, stale marks inside the price objects; the
same limits and slow-client rules as the full protocol; and a prototype frame encoded once per tick, only when
needed.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import trio
import trio.testing

from tests.support.delivery import Delivery
from tests.support.helpers import PRICE_OBJECT_KEYS
from tests.support.memory_transport import MemoryTransport
from trio_ticker.delivery.hub import Hub
from trio_ticker.delivery.outbox import ClientOutbox
from trio_ticker.edge.limits import InboundGuard, LimitCounters, SessionLimits
from trio_ticker.model import Mode, PriceUpdate, SourceState, SourceStatus, StaleChange
from trio_ticker.protocol.dialects import Dialect
from trio_ticker.protocol.errors import CloseCode

SYMBOLS = ("AAPL", "GOOGL", "AMZN", "MSFT", "BTCUSDT")
STOCKS = ("AAPL", "GOOGL", "AMZN", "MSFT")
DEFAULT = "BTCUSDT"
DEFAULT_DELAY = 1.0
_timestamps = itertools.count(1_700_000_000_000)


def update(symbol: str, price: float) -> PriceUpdate:
    return PriceUpdate(symbol, price, 100.0, next(_timestamps), Mode.DEMO)


def limits(**overrides: Any) -> SessionLimits:
    values: dict[str, Any] = {
        "max_message_size": 4096,
        "burst": 20,
        "per_second": 5.0,
        "max_rejections": 20,
        "max_subscriptions": 100,
        "max_symbols_per_message": 50,
    }
    return SessionLimits(**(values | overrides))


async def open_prototype_session(
    nursery: trio.Nursery, delivery: Delivery, transport: MemoryTransport, *, guard_limits: SessionLimits | None = None
) -> ClientOutbox:
    guard = InboundGuard(guard_limits, LimitCounters(), trio.current_time()) if guard_limits else None
    session = delivery.session(
        transport,
        dialect=Dialect.PROTOTYPE,
        default_symbols=(DEFAULT,),
        default_symbols_delay=DEFAULT_DELAY,
        peer="prototype",
        guard=guard,
    )
    outbox: ClientOutbox = await nursery.start(session.run)
    return outbox


@asynccontextmanager
async def prototype_client(
    delivery: Delivery, *, client_window: int = 100, guard_limits: SessionLimits | None = None
) -> AsyncIterator[tuple[ClientOutbox, MemoryTransport]]:
    """A prototype-dialect session for the block; the test plays its client through the transport."""
    transport = MemoryTransport(client_window=client_window)
    async with trio.open_nursery() as nursery:
        outbox = await open_prototype_session(nursery, delivery, transport, guard_limits=guard_limits)
        yield outbox, transport
        nursery.cancel_scope.cancel()


async def receive_price(transport: MemoryTransport) -> dict[str, Any]:
    message = await transport.client_receive()
    assert set(message) == PRICE_OBJECT_KEYS, message
    return message


async def closed(hub: Hub, transport: MemoryTransport) -> tuple[int | None, str]:
    """The close code and reason the session sent, once it has ended (its client was the hub's only one)."""
    with trio.fail_after(5):
        await hub.wait_no_clients()
    return transport.close_code, transport.close_reason


async def received_now(transport: MemoryTransport) -> list[dict[str, Any]]:
    await trio.testing.wait_all_tasks_blocked()
    messages = []
    while (message := transport.client_receive_nowait()) is not None:
        messages.append(message)
    return messages


async def test_a_client_that_only_listens_gets_every_tick_of_the_default_symbol(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    delivery.hub.publish(update(DEFAULT, 96500.0))
    connected_at = trio.current_time()
    async with prototype_client(delivery) as (_, transport):
        snapshot = await receive_price(transport)
        assert trio.current_time() == connected_at + DEFAULT_DELAY  # it sent nothing: the default symbol starts
        assert snapshot == {
            "ticker": DEFAULT,
            "price": 96500.0,
            "change": 0.0,  # its first tick: no move yet
            "mode": "demo",
            "symbol": DEFAULT,
            "last_price": 96500.0,
            "change_percent": 96400.0,  # against the reference (100.0 here)
            "timestamp_ms": snapshot["ts"],
            "ts": snapshot["ts"],
            "seq": 1,
            "stale": False,
            "open": None,  # the update had no 24 h statistics
            "high": None,
            "low": None,
            "volume": None,
        }
        for price in (96620.5, 96620.25, 96700.0):
            delivery.hub.publish(update(DEFAULT, price))
            delivery.hub.publish(update("AAPL", 190.0))  # not the default: never sent
        ticks = [await receive_price(transport) for _ in range(3)]
        assert [(t["seq"], t["last_price"], t["change"]) for t in ticks] == [
            (2, 96620.5, 120.5),
            (3, 96620.25, -0.25),
            (4, 96700.0, 79.75),
        ]
        assert await received_now(transport) == []


async def test_a_client_that_subscribes_on_open_never_gets_the_default_symbol(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    for symbol in SYMBOLS:
        delivery.hub.publish(update(symbol, 100.0))
    async with prototype_client(delivery) as (outbox, transport):
        await trio.sleep(DEFAULT_DELAY / 2)  # a slow round trip
        for symbol in STOCKS:  # exactly what the stock streamer's page sends on open
            await transport.client_send({"action": "subscribe", "symbol": symbol})
        await trio.sleep(DEFAULT_DELAY * 2)
        for symbol in SYMBOLS:
            delivery.hub.publish(update(symbol, 101.0))
        received = await received_now(transport)
        assert [(m["ticker"], m["seq"]) for m in received] == [(s, 1) for s in STOCKS] + [(s, 2) for s in STOCKS]
        assert list(outbox.subscriptions) == list(STOCKS)


async def test_the_first_subscribe_replaces_the_default_and_each_later_one_adds_a_symbol(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    for symbol, price in zip(SYMBOLS, (189.5, 171.2, 185.6, 418.3, 96500.0), strict=True):
        delivery.hub.publish(update(symbol, price))
    async with prototype_client(delivery) as (outbox, transport):
        assert (await receive_price(transport))["ticker"] == DEFAULT
        for symbol in STOCKS:  # exactly what the stock streamer's page sends on open
            await transport.client_send({"action": "subscribe", "symbol": symbol})
        snapshots = [await receive_price(transport) for _ in STOCKS]  # no acks: a snapshot per stock
        assert [(s["ticker"], s["seq"]) for s in snapshots] == [(symbol, 1) for symbol in STOCKS]
        assert list(outbox.subscriptions) == list(STOCKS)
        for step, price in enumerate((190.0, 189.75)):
            for symbol in SYMBOLS:
                delivery.hub.publish(update(symbol, price + step))
        live = await received_now(transport)
        assert [(m["ticker"], m["seq"]) for m in live] == [(s, seq) for seq in (2, 3) for s in STOCKS]
        assert all(set(message) == PRICE_OBJECT_KEYS for message in live)
        assert delivery.hub.subscriber_count(DEFAULT) == 0


async def test_a_first_subscribe_naming_the_default_keeps_it_without_a_second_snapshot(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    delivery.hub.publish(update(DEFAULT, 96500.0))
    delivery.hub.publish(update("AAPL", 189.5))
    async with prototype_client(delivery) as (outbox, transport):
        await receive_price(transport)
        await transport.client_send({"action": "subscribe", "symbols": ["AAPL", DEFAULT]})
        assert [m["ticker"] for m in await received_now(transport)] == ["AAPL"]
        assert list(outbox.subscriptions) == [DEFAULT, "AAPL"]


async def test_a_refused_subscribe_changes_nothing_and_gets_one_error_object(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    async with prototype_client(delivery) as (outbox, transport):
        await transport.client_send({"action": "subscribe", "symbols": ["AAPL", "DOGE"], "id": 5})
        assert await received_now(transport) == [{"error": "unknown symbol DOGE", "code": "unknown_symbol", "id": 5}]
        delivery.hub.publish(update(DEFAULT, 96500.0))
        assert (await receive_price(transport))["ticker"] == DEFAULT  # not subscribed yet: the default comes
        assert list(outbox.subscriptions) == [DEFAULT]


async def test_garbage_gets_error_objects_and_list_and_ping_are_not_in_this_dialect(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    async with prototype_client(delivery, guard_limits=limits()) as (_, transport):
        for frame in ("nope", "[]", '{"action":"subscribe"}', '{"action":"list"}', '{"action":"ping"}', b"\xff"):
            await transport.client_send(frame)
        replies = await received_now(transport)
        assert [reply["code"] for reply in replies] == [
            "invalid_json",
            "not_an_object",
            "missing_field",
            "unknown_action",
            "unknown_action",
            "invalid_json",
        ]
        assert all(set(reply) == {"error", "code"} and isinstance(reply["error"], str) for reply in replies)


async def test_unsubscribe_stops_a_symbol_without_an_ack(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    async with prototype_client(delivery) as (_, transport):
        await transport.client_send({"action": "subscribe", "symbols": ["AAPL", "MSFT"]})
        await transport.client_send({"action": "unsubscribe", "symbol": "AAPL"})
        await transport.client_send({"action": "unsubscribe", "symbol": DEFAULT})  # never started: now it never will
        await trio.sleep(DEFAULT_DELAY)
        assert await received_now(transport) == []
        delivery.hub.publish(update("AAPL", 190.0))
        delivery.hub.publish(update("MSFT", 420.0))
        assert [m["ticker"] for m in await received_now(transport)] == ["MSFT"]


async def test_staleness_rides_in_the_price_object_and_source_states_are_not_sent(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    delivery.hub.publish(update(DEFAULT, 96500.0))
    delivery.hub.publish(update(DEFAULT, 96510.0))
    prototype, full = MemoryTransport(client_window=100), MemoryTransport(client_window=100)
    async with trio.open_nursery() as nursery:
        await open_prototype_session(nursery, delivery, prototype)
        await nursery.start(delivery.session(full).run)
        await full.client_send({"action": "subscribe", "symbol": DEFAULT})
        await received_now(full)
        assert (await receive_price(prototype))["seq"] == 2
        delivery.hub.ingest(SourceStatus("demo", SourceState.RECONNECTING, 1))
        delivery.hub.ingest(StaleChange(DEFAULT, stale=True, ts=2))
        marked = await received_now(prototype)
        # The latest price again, marked: the same tick (seq, price, change), nothing a client could misdraw.
        assert [(m["seq"], m["price"], m["change"], m["stale"]) for m in marked] == [(2, 96510.0, 10.0, True)]
        assert [(m["type"], m.get("state"), m.get("stale")) for m in await received_now(full)] == [
            ("status", "reconnecting", None),
            ("status", None, True),
        ]
        delivery.hub.ingest(StaleChange(DEFAULT, stale=False, ts=3))
        delivery.hub.publish(update(DEFAULT, 96505.0))
        assert [(m["seq"], m["change"], m["stale"]) for m in await received_now(prototype)] == [
            (2, 10.0, False),
            (3, -5.0, False),
        ]
        nursery.cancel_scope.cancel()


async def test_flooding_gets_rate_limited_error_objects_then_close_1008(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    async with prototype_client(delivery, guard_limits=limits(burst=1, max_rejections=3)) as (_, transport):
        subscribe = {"action": "subscribe", "symbol": "AAPL"}
        await transport.client_send(subscribe)
        await transport.client_send(subscribe)  # over the rate
        assert await received_now(transport) == [
            {"error": "more than 5 messages per second (burst 1); this message was ignored", "code": "rate_limited"}
        ]
        for _ in range(2):  # the third refusal in a row closes
            await transport.client_send(subscribe)
        assert await closed(delivery.hub, transport) == (CloseCode.POLICY_VIOLATION, "rate limit exceeded")


async def test_an_oversized_frame_closes_1009(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    async with prototype_client(delivery, guard_limits=limits(max_message_size=64)) as (_, transport):
        await transport.client_send({"action": "subscribe", "symbol": "A" * 80})
        assert await closed(delivery.hub, transport) == (CloseCode.MESSAGE_TOO_BIG, "message too big")


async def test_the_first_subscribe_may_use_the_whole_subscription_limit(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    async with prototype_client(delivery, guard_limits=limits(max_subscriptions=2)) as (outbox, transport):
        await transport.client_send({"action": "subscribe", "symbols": ["AAPL", "MSFT"]})  # replaces the default
        await transport.client_send({"action": "subscribe", "symbol": "GOOGL"})
        assert await received_now(transport) == [
            {"error": "at most 2 subscriptions per connection", "code": "too_many_subscriptions"}
        ]
        assert list(outbox.subscriptions) == ["AAPL", "MSFT"]


async def test_a_client_that_stops_reading_gets_the_latest_price_or_is_evicted_like_any_other(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=2, slow_client_timeout=5.0)
    async with (
        trio.open_nursery() as nursery,
        prototype_client(delivery, client_window=0) as (outbox, transport),  # it reads nothing until told
    ):
        await delivery.start(nursery)
        await trio.sleep(DEFAULT_DELAY)  # it listens: the default symbol streams
        for price in range(1, 41):
            delivery.hub.publish(update(DEFAULT, 100.0 + price))
        assert outbox.pending_count() <= 2  # conflated to the latest, whatever was published
        # The writer may or may not have taken a frame before the burst conflated: one or two frames arrive.
        with trio.fail_after(1):
            received = [await receive_price(transport)]
            while received[-1]["seq"] != 40:
                received.append(await receive_price(transport))
        assert len(received) <= 2 and received[-1]["change"] == 1.0  # the newest tick and its own move
        for _ in range(80):  # behind again, and for longer than the timeout
            delivery.hub.publish(update(DEFAULT, 200.0))
            await trio.sleep(0.1)
        assert (transport.close_code, transport.close_reason) == (CloseCode.SLOW_CONSUMER, "slow consumer")
        assert delivery.hub.statistics().evicted == 1
        nursery.cancel_scope.cancel()


async def test_the_prototype_frame_is_encoded_once_per_tick_and_only_while_someone_speaks_it() -> None:
    delivery = Delivery(SYMBOLS, client_buffer=64)
    full = [delivery.hub.connect() for _ in range(3)]
    for outbox in full:
        delivery.hub.subscribe(outbox, ("AAPL",))
    for price in range(10):
        delivery.hub.publish(update("AAPL", 100.0 + price))
    assert delivery.hub.statistics().encodes == 10  # nobody speaks the prototypes' dialect: it costs nothing
    prototypes = [delivery.hub.connect(dialect=Dialect.PROTOTYPE) for _ in range(5)]
    for outbox in prototypes:
        delivery.hub.subscribe(outbox, ("AAPL",))  # the snapshot: the latest tick encoded once for all five
    for price in range(10):
        delivery.hub.publish(update("AAPL", 110.0 + price))
    statistics = delivery.hub.statistics()
    assert statistics.encodes == 10 + 1 + 10 * 2
    assert statistics.messages_out == 10 * 3 + 10 * 8
    assert statistics.subscriptions == 8
    frames = [[frame for _, frame in drain(outbox)] for outbox in prototypes]
    assert all(frame is first for frame, first in zip(frames[1], frames[0], strict=True))  # shared, not copied
    assert [orjson.loads(frame)["change"] for frame in frames[0]] == [1.0] * 11  # the snapshot's move, then each tick's
    assert all("type" in orjson.loads(frame) for _, frame in drain(full[0]))  # full-protocol clients unchanged


def drain(outbox: ClientOutbox) -> list[tuple[str | None, str]]:
    entries: list[tuple[str | None, str]] = []
    outbox.take_nowait(entries)
    return entries
