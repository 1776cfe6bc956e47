"""Hub + client sessions over in-memory transports, on the autojump clock.

Ordering, snapshot-on-subscribe, unsubscribe, conflation for slow clients, eviction after the
exact timeout, shutdown closes, and cleanup (registry empty, no task left behind).
"""

from __future__ import annotations

import itertools

import orjson
import pytest
import trio
import trio.testing

from tests.support.delivery import Delivery
from tests.support.helpers import count_tasks
from tests.support.memory_transport import MemoryTransport
from trio_ticker.delivery.outbox import ClientOutbox
from trio_ticker.model import Mode, PriceUpdate
from trio_ticker.protocol.errors import CloseCode

SYMBOLS = ("AAPL", "MSFT", "BTCUSDT")
_prices = itertools.count(100)


def update(symbol: str, price: float | None = None) -> PriceUpdate:
    return PriceUpdate(symbol, float(price or next(_prices)), 100.0, 1_700_000_000_000, Mode.DEMO)


async def open_session(
    nursery: trio.Nursery, delivery: Delivery, transport: MemoryTransport, *, batch: bool = False
) -> ClientOutbox:
    session = delivery.session(transport, batch=batch, peer="test")
    outbox: ClientOutbox = await nursery.start(session.run)
    return outbox


async def subscribe(transport: MemoryTransport, *symbols: str) -> None:
    await transport.client_send({"action": "subscribe", "symbols": list(symbols)})
    assert await transport.client_receive() == {"type": "subscribed", "symbols": list(symbols)}


async def test_a_client_that_keeps_up_gets_every_tick_in_order(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=8)
    transport = MemoryTransport(client_window=1000)
    async with trio.open_nursery() as nursery:
        await open_session(nursery, delivery, transport)
        await subscribe(transport, "AAPL", "MSFT")
        for _ in range(200):
            delivery.hub.publish(update("AAPL"))
            delivery.hub.publish(update("BTCUSDT"))  # not subscribed: never sent
            delivery.hub.publish(update("MSFT"))
            await trio.sleep(0.01)
        seen: dict[str, list[int]] = {"AAPL": [], "MSFT": []}
        while (message := transport.client_receive_nowait()) is not None:
            seen[message["ticker"]].append(message["seq"])
        assert seen == {"AAPL": list(range(1, 201)), "MSFT": list(range(1, 201))}
        nursery.cancel_scope.cancel()
    assert delivery.hub.statistics().conflated == 0


async def test_subscribe_acks_then_sends_the_snapshot_before_live_ticks(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=8)
    for price in (101, 102, 103):
        delivery.hub.publish(update("AAPL", price))
    transport = MemoryTransport(client_window=100)
    async with trio.open_nursery() as nursery:
        await open_session(nursery, delivery, transport)
        await transport.client_send({"action": "subscribe", "symbols": ["AAPL", "MSFT"], "id": 7})
        assert await transport.client_receive() == {
            "type": "subscribed",
            "symbols": ["AAPL", "MSFT"],
            "id": 7,
        }
        snapshot = await transport.client_receive()
        assert (snapshot["ticker"], snapshot["price"], snapshot["seq"]) == (
            "AAPL",
            103.0,
            3,
        )  # MSFT has no data
        delivery.hub.publish(update("MSFT", 50))
        delivery.hub.publish(update("AAPL", 104))
        assert [(m["ticker"], m["seq"]) for m in [await transport.client_receive() for _ in range(2)]] == [
            ("MSFT", 1),
            ("AAPL", 4),
        ]
        # Subscribing again is idempotent: an ack, no duplicate snapshot.
        await subscribe(transport, "AAPL")
        await trio.testing.wait_all_tasks_blocked()
        assert transport.client_receive_nowait() is None
        nursery.cancel_scope.cancel()


async def test_unsubscribe_stops_exactly_that_symbol(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=8)
    transport = MemoryTransport(client_window=100)
    async with trio.open_nursery() as nursery:
        outbox = await open_session(nursery, delivery, transport)
        await subscribe(transport, "AAPL", "MSFT")
        await transport.client_send({"action": "unsubscribe", "symbol": "AAPL"})
        assert await transport.client_receive() == {"type": "unsubscribed", "symbols": ["AAPL"]}
        delivery.hub.publish(update("AAPL"))
        delivery.hub.publish(update("MSFT"))
        assert (await transport.client_receive())["ticker"] == "MSFT"
        await trio.testing.wait_all_tasks_blocked()
        assert transport.client_receive_nowait() is None
        assert list(outbox.subscriptions) == ["MSFT"]
        assert delivery.hub.subscriber_count("AAPL") == 0
        nursery.cancel_scope.cancel()


async def test_bad_frames_get_errors_and_the_connection_stays_usable(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=8)
    transport = MemoryTransport(client_window=100)
    async with trio.open_nursery() as nursery:
        await open_session(nursery, delivery, transport)
        await transport.client_send("{oops")
        assert (await transport.client_receive())["code"] == "invalid_json"
        await transport.client_send({"action": "subscribe", "symbols": ["AAPL", "NOPE"], "id": 1})
        error = await transport.client_receive()
        assert (error["code"], error["symbol"], error["id"]) == ("unknown_symbol", "NOPE", 1)
        assert delivery.hub.subscriber_count("AAPL") == 0  # the command was rejected whole
        await transport.client_send({"action": "unsubscribe", "symbol": "ZZZ"})
        assert (await transport.client_receive())["code"] == "unknown_symbol"
        await transport.client_send({"action": "list", "id": "l"})
        assert await transport.client_receive() == {"type": "symbols", "symbols": list(SYMBOLS), "id": "l"}
        await transport.client_send({"action": "ping"})
        pong = await transport.client_receive()
        assert pong["type"] == "pong"
        assert isinstance(pong["ts"], int)
        nursery.cancel_scope.cancel()


async def test_a_slow_client_gets_conflated_current_prices(autojump_clock: trio.abc.Clock) -> None:
    slow_client_timeout = 5.0
    delivery = Delivery(SYMBOLS, client_buffer=3, slow_client_timeout=slow_client_timeout)
    transport = MemoryTransport(client_window=0)  # the client reads nothing until we say so
    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        outbox = await open_session(nursery, delivery, transport)
        await transport.client_send({"action": "subscribe", "symbols": ["AAPL", "MSFT"]})
        await trio.testing.wait_all_tasks_blocked()  # the writer now waits to hand over the ack
        for price in range(1, 41):
            delivery.hub.publish(update("AAPL", price))
            delivery.hub.publish(update("MSFT", 1000 + price))
        # No stale backlog: when the channel overflowed, its queued ticks collapsed into the
        # latest per symbol, and so did every tick since. Bounded, whatever was published.
        assert outbox.pending_count() == 2
        assert outbox.behind_since is not None
        await trio.sleep(slow_client_timeout / 2)  # behind, but not yet for long enough
        received = [await transport.client_receive() for _ in range(3)]
        assert received[0]["type"] == "subscribed"
        assert [(m["ticker"], m["seq"], m["price"]) for m in received[1:]] == [("AAPL", 40, 40.0), ("MSFT", 40, 1040.0)]
        await trio.testing.wait_all_tasks_blocked()
        assert outbox.behind_since is None
        stats = delivery.hub.statistics()
        assert stats.conflated == 80 - 2  # all but the latest of each symbol
        assert stats.evicted == 0
        delivery.hub.publish(update("AAPL", 41))  # caught up: the next tick arrives normally
        assert (await transport.client_receive())["seq"] == 41
        nursery.cancel_scope.cancel()


async def test_a_client_behind_for_the_timeout_is_evicted_at_that_exact_time(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=2, slow_client_timeout=5.0)
    healthy = MemoryTransport(client_window=10_000)
    stuck = MemoryTransport(client_window=0)
    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        await open_session(nursery, delivery, healthy)
        await subscribe(healthy, "AAPL")
        stuck_outbox = await open_session(nursery, delivery, stuck)
        await stuck.client_send({"action": "subscribe", "symbol": "AAPL"})
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        behind_since = None
        for _ in range(100):
            delivery.hub.publish(update("AAPL"))
            if behind_since is None and stuck_outbox.behind_since is not None:
                behind_since = stuck_outbox.behind_since
            await trio.sleep(0.1)
        assert behind_since is not None
        assert behind_since == pytest.approx(start + 0.2)  # writer holds the ack, 2 queued, the 3rd overflows
        assert stuck.close_code == CloseCode.SLOW_CONSUMER
        assert stuck.close_reason == "slow consumer"
        assert stuck.closed_at == pytest.approx(behind_since + 5.0)
        # The healthy client never noticed.
        seqs = []
        while (message := healthy.client_receive_nowait()) is not None:
            seqs.append(message["seq"])
        assert seqs == list(range(1, 101))
        stats = delivery.hub.statistics()
        assert (stats.clients, stats.subscriptions, stats.evicted) == (1, 1, 1)
        evictions = [record.getMessage() for record in caplog.records if "event=client_evicted" in record.getMessage()]
        assert evictions == [
            f"event=client_evicted client={stuck_outbox.client_id} peer=test reason=slow_consumer pending=1"
        ]  # AAPL, conflated
        nursery.cancel_scope.cancel()


async def test_a_client_that_catches_up_in_time_is_kept(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=2, slow_client_timeout=5.0)
    transport = MemoryTransport(client_window=0)
    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        outbox = await open_session(nursery, delivery, transport)
        await transport.client_send({"action": "subscribe", "symbol": "AAPL"})
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(3):  # three bursts, each behind for 4.9 s < 5 s
            for _ in range(10):
                delivery.hub.publish(update("AAPL"))
            assert outbox.behind_since is not None
            await trio.sleep(4.9)
            while outbox.pending_count() or outbox.behind_since is not None:
                await transport.client_receive()
                await trio.testing.wait_all_tasks_blocked()
        assert transport.close_code is None
        assert delivery.hub.statistics().evicted == 0
        nursery.cancel_scope.cancel()


async def test_close_all_sends_going_away_to_every_client(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=4)
    transports = [MemoryTransport(client_window=100) for _ in range(5)]
    async with trio.open_nursery() as nursery:
        for transport in transports:
            await open_session(nursery, delivery, transport)
        delivery.hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
        with trio.fail_after(1):
            await delivery.hub.wait_no_clients()
    assert [(t.close_code, t.close_reason) for t in transports] == [(1001, "server shutting down")] * 5


async def test_batch_clients_get_everything_pending_in_one_array(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=50)
    transport = MemoryTransport(client_window=0)
    async with trio.open_nursery() as nursery:
        await open_session(nursery, delivery, transport, batch=True)
        await transport.client_send({"action": "subscribe", "symbol": "AAPL"})
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(10):
            delivery.hub.publish(update("AAPL"))
        first = orjson.loads(await transport.client_receive_raw())
        assert first == [{"type": "subscribed", "symbols": ["AAPL"]}]  # sent while idle: no added latency
        second = orjson.loads(await transport.client_receive_raw())
        assert [message["seq"] for message in second] == list(range(1, 11))
        nursery.cancel_scope.cancel()


async def test_disconnects_leave_no_trace(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=4)
    baseline = count_tasks()
    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        with_hub = count_tasks()
        transports = [MemoryTransport(client_window=0) for _ in range(30)]
        for index, transport in enumerate(transports):
            await open_session(nursery, delivery, transport)
            await transport.client_send({"action": "subscribe", "symbols": list(SYMBOLS[: 1 + index % 3])})
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(20):
            delivery.hub.publish(update("AAPL"))  # leave some clients behind with pending frames
        assert delivery.hub.statistics().clients == 30
        assert delivery.reaper.watched() > 0  # clients left behind, waiting for their deadline
        assert count_tasks() == with_hub + 30 * 2  # per client: the session (its reader) and its writer
        for transport in transports:
            await transport.client_disconnect()
        with trio.fail_after(1):
            await delivery.hub.wait_no_clients()
        assert delivery.reaper.watched() == 0
        nursery.cancel_scope.cancel()
    stats = delivery.hub.statistics()
    assert (stats.clients, stats.subscriptions) == (0, 0)
    assert all(delivery.hub.subscriber_count(symbol) == 0 for symbol in SYMBOLS)
    assert count_tasks() == baseline
    assert all(transport.close_code is None for transport in transports)  # they left; nothing to close


async def test_cancelling_one_client_cancels_only_its_tasks(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=4)
    keeper = MemoryTransport(client_window=100)
    async with trio.open_nursery() as nursery:
        await open_session(nursery, delivery, keeper)
        await subscribe(keeper, "AAPL")
        with trio.CancelScope() as doomed_scope:
            async with trio.open_nursery() as doomed_nursery:
                doomed = MemoryTransport(client_window=100)
                await open_session(doomed_nursery, delivery, doomed)
                await subscribe(doomed, "AAPL")
                assert delivery.hub.subscriber_count("AAPL") == 2
                doomed_scope.cancel()
        assert delivery.hub.subscriber_count("AAPL") == 1
        delivery.hub.publish(update("AAPL"))
        assert (await keeper.client_receive())["seq"] == 1
        nursery.cancel_scope.cancel()


async def test_overflow_keeps_replies_in_order_and_drops_unsubscribed_ticks(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=4)
    transport = MemoryTransport(client_window=0)
    async with trio.open_nursery() as nursery:
        outbox = await open_session(nursery, delivery, transport)
        await transport.client_send({"action": "subscribe", "symbols": ["AAPL", "MSFT"]})
        await trio.testing.wait_all_tasks_blocked()  # the writer holds the ack
        delivery.hub.publish(update("AAPL", 1))
        await transport.client_send({"action": "unsubscribe", "symbol": "AAPL"})
        await transport.client_send({"action": "ping", "id": "p"})
        await trio.testing.wait_all_tasks_blocked()
        # Queued: AAPL#1, unsubscribed, pong. Now MSFT overflows the channel (capacity 4).
        for price in (10, 11):
            delivery.hub.publish(update("MSFT", price))
        assert outbox.behind_since is not None
        received = [await transport.client_receive() for _ in range(4)]
        assert [m["type"] for m in received] == ["subscribed", "unsubscribed", "pong", "tick"]
        assert (received[3]["ticker"], received[3]["seq"]) == ("MSFT", 2)  # AAPL#1 dropped: its ack promised so
        await trio.testing.wait_all_tasks_blocked()
        assert transport.client_receive_nowait() is None
        nursery.cancel_scope.cancel()


async def test_a_lagging_single_frame_client_skips_superseded_ticks_and_no_reply(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16)
    transport = MemoryTransport(client_window=0)
    async with trio.open_nursery() as nursery:
        outbox = await open_session(nursery, delivery, transport)
        await transport.client_send({"action": "subscribe", "symbols": ["AAPL", "MSFT"]})
        await trio.testing.wait_all_tasks_blocked()  # the writer holds the ack
        delivery.hub.publish(update("AAPL", 1))
        delivery.hub.publish(update("MSFT", 10))
        await transport.client_send({"action": "ping", "id": "p"})
        await trio.testing.wait_all_tasks_blocked()
        delivery.hub.publish(update("AAPL", 2))
        delivery.hub.publish(update("AAPL", 3))
        assert outbox.behind_since is None  # the channel has room: the hub conflated nothing
        await trio.sleep(1)  # the client lags: its writer gets around only a second later
        received = [await transport.client_receive() for _ in range(4)]
        # Queued: AAPL#1, MSFT#1, pong, AAPL#2, AAPL#3. AAPL#1 and #2 are superseded by the time the
        # writer takes them, so it sends the rest in order and the newest AAPL where it was queued.
        assert [(m["type"], m.get("ticker"), m.get("seq")) for m in received] == [
            ("subscribed", None, None),
            ("tick", "MSFT", 1),
            ("pong", None, None),
            ("tick", "AAPL", 3),
        ]
        await trio.testing.wait_all_tasks_blocked()
        assert transport.client_receive_nowait() is None
        assert delivery.hub.statistics().conflated == 2  # AAPL#1 and #2, counted like the hub's own conflation
        delivery.hub.publish(update("AAPL", 4))  # keeping up again: the next tick arrives on its own
        assert (await transport.client_receive())["seq"] == 4
        nursery.cancel_scope.cancel()


async def test_a_single_frame_client_that_keeps_up_gets_every_tick_of_a_burst(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(SYMBOLS, client_buffer=16, batch_flush_interval=0.05)
    transport = MemoryTransport(client_window=0)
    async with trio.open_nursery() as nursery:
        await open_session(nursery, delivery, transport)
        await transport.client_send({"action": "subscribe", "symbols": ["AAPL"]})
        await trio.testing.wait_all_tasks_blocked()  # the writer holds the ack
        for price in (1, 2, 3):
            delivery.hub.publish(update("AAPL", price))  # a burst while the writer is busy
        await trio.sleep(0.09)  # it gets around within two flush intervals: not lagging
        received = [await transport.client_receive() for _ in range(4)]
        assert [m.get("seq") for m in received] == [None, 1, 2, 3]
        nursery.cancel_scope.cancel()
