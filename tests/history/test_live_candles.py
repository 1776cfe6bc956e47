"""Live candles through the hub and a real client session, on the autojump clock.

Rollover at the interval boundary (also with no tick), the open candle on subscribe, at most one
update per symbol per flush interval, `closed: true` exactly once, and unsubscribing candles only.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import trio
import trio.testing

from tests.support.delivery import Delivery
from tests.support.memory_transport import MemoryTransport
from trio_ticker.history.book import CandleBook
from trio_ticker.history.candles import Candle, Interval
from trio_ticker.history.live import LiveCandles
from trio_ticker.model import Mode, PriceUpdate, Tick
from trio_ticker.protocol.dialects import Dialect

BASE_S = 1_763_640_000  # 2025-11-20 12:00:00 UTC: a minute (and hour) boundary
FLUSH = 0.05


def virtual_wall_clock() -> Callable[[], float]:
    """Wall time that moves with trio's (mock) clock, starting at BASE_S."""
    start = trio.current_time()
    return lambda: BASE_S + trio.current_time() - start


class Board:
    """A hub with live candles of one clock; `update` makes a demo price stamped with that clock."""

    def __init__(self) -> None:
        self.clock = virtual_wall_clock()
        self.live = LiveCandles(
            CandleBook(["BTCUSDT", "ETHUSDT"], intervals=(Interval.S1, Interval.M1)),
            flush_interval=FLUSH,
            wall_clock=self.clock,
        )
        self.delivery = Delivery(
            ("BTCUSDT", "ETHUSDT"), client_buffer=64, batch_flush_interval=FLUSH, candles=self.live
        )
        self.hub = self.delivery.hub

    def publish(self, symbol: str, price: str, volume: str | None = "0.5") -> None:
        ts = int(self.clock() * 1000)
        volume_value = None if volume is None else Decimal(volume)
        self.hub.publish(PriceUpdate(symbol, float(price), 100.0, ts, Mode.DEMO, volume=volume_value))

    async def start(self, nursery: trio.Nursery) -> None:
        await self.delivery.start(nursery)
        await nursery.start(self.live.run)


async def connect(nursery: trio.Nursery, delivery: Delivery) -> MemoryTransport:
    transport = MemoryTransport(client_window=10_000)
    await nursery.start(delivery.session(transport, peer="test").run)
    return transport


async def messages_until(transport: MemoryTransport, seconds: float) -> list[tuple[float, dict[str, Any]]]:
    """Every message the client receives in the next `seconds`, with the virtual time it arrived."""
    received: list[tuple[float, dict[str, Any]]] = []
    with trio.move_on_after(seconds):
        await collect(transport, received)
    return received


async def collect(transport: MemoryTransport, received: list[tuple[float, dict[str, Any]]]) -> None:
    while True:
        message = await transport.client_receive()
        received.append((trio.current_time(), message))


def candles_of(received: list[tuple[float, dict[str, Any]]], interval: str) -> list[tuple[float, dict[str, Any]]]:
    return [(at, m) for at, m in received if m["type"] == "candle" and m["interval"] == interval]


async def test_subscribe_gets_the_open_candle_then_updates_and_closed_once_at_rollover(
    autojump_clock: trio.abc.Clock,
) -> None:
    board = Board()
    async with trio.open_nursery() as nursery:
        await board.start(nursery)
        await trio.sleep(10)  # 12:00:10
        board.publish("BTCUSDT", "96500.5")
        transport = await connect(nursery, board.delivery)
        await transport.client_send({"action": "subscribe", "symbols": ["BTCUSDT"], "candles": "1m", "id": 1})
        ack = await transport.client_receive()
        assert ack == {"type": "subscribed", "symbols": ["BTCUSDT"], "candles": "1m", "id": 1}
        snapshot, current = await transport.client_receive(), await transport.client_receive()
        assert snapshot["type"] == "tick"
        assert current == {
            "type": "candle", "ticker": "BTCUSDT", "interval": "1m",
            "open_time": BASE_S * 1000, "close_time": BASE_S * 1000 + 59_999,
            "open": "96500.5", "high": "96500.5", "low": "96500.5", "close": "96500.5",
            "volume": "0.5", "trades": 1, "closed": False,
        }  # fmt: skip
        subscribed_at = trio.current_time()
        received: list[tuple[float, dict[str, Any]]] = []
        nursery.start_soon(collect, transport, received)
        # A tick every 10 ms for the rest of the minute and 1 s into the next: 5x the flush rate.
        for step in range(5_100):
            board.publish("BTCUSDT", f"{96500 + step % 7}.25")
            board.publish("ETHUSDT", "3420")  # no candle subscription: no ETHUSDT candle frames
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    minute = candles_of(received, "1m")
    assert {m["ticker"] for _, m in minute} == {"BTCUSDT"}
    assert candles_of(received, "1s") == []  # only the interval asked for
    updates = [(at, m) for at, m in minute if not m["closed"]]
    times = [at for at, _ in updates]
    assert all(later - earlier >= FLUSH - 1e-9 for earlier, later in itertools.pairwise(times))
    assert len(updates) >= 0.9 * 51 / FLUSH  # and they keep coming at that pace
    closed = [(at, m) for at, m in minute if m["closed"]]
    assert [m["open_time"] for _, m in closed] == [BASE_S * 1000]  # once, for the minute that ended
    closed_at, last = closed[0]
    # The next minute's first tick (at 12:01:00) rolls it over; it goes out within a flush interval.
    assert 50 - 1e-6 <= closed_at - subscribed_at <= 50 + FLUSH  # (float steps of 10 ms blur the edge)
    assert 4_900 <= last["trades"] <= 5_002  # every tick of the minute (10 ms apart; float steps blur the edge)
    assert Decimal(last["volume"]) == Decimal("0.5") * last["trades"]
    assert (last["high"], last["low"]) == ("96506.25", "96500.25")
    next_minute = [m for _, m in updates if m["open_time"] == BASE_S * 1000 + 60_000]
    assert next_minute and not next_minute[-1]["closed"]  # the new minute's candle goes on updating


async def test_a_quiet_symbols_candle_closes_at_its_boundary_plus_the_delay(autojump_clock: trio.abc.Clock) -> None:
    board = Board()
    async with trio.open_nursery() as nursery:
        await board.start(nursery)
        started = trio.current_time()
        await trio.sleep(30.25)
        board.publish("ETHUSDT", "3420.10", volume=None)  # one price, then silence
        transport = await connect(nursery, board.delivery)
        await transport.client_send({"action": "subscribe", "symbol": "ETHUSDT", "candles": "1m"})
        received = await messages_until(transport, 40)
        nursery.cancel_scope.cancel()
    closed = [(at, m) for at, m in candles_of(received, "1m") if m["closed"]]
    assert len(closed) == 1
    at, message = closed[0]
    assert at - started == 60.5  # 12:01:00 plus the 0.5 s close delay, exactly
    assert (message["open"], message["close"], message["trades"], message["volume"]) == ("3420.1", "3420.1", 0, "0")


async def test_unsubscribing_candles_keeps_the_ticks(autojump_clock: trio.abc.Clock) -> None:
    board = Board()
    async with trio.open_nursery() as nursery:
        await board.start(nursery)
        transport = await connect(nursery, board.delivery)
        await transport.client_send({"action": "subscribe", "symbols": ["BTCUSDT"], "candles": "1s"})
        await transport.client_receive()
        board.publish("BTCUSDT", "1")
        assert [m["type"] for _, m in await messages_until(transport, 0.2)] == ["tick", "candle"]
        await transport.client_send({"action": "unsubscribe", "symbols": ["BTCUSDT"], "candles": "1s", "id": 2})
        assert (await transport.client_receive())["type"] == "unsubscribed"
        board.publish("BTCUSDT", "2")
        assert [m["type"] for _, m in await messages_until(transport, 3)] == ["tick"]  # no update, no closed
        nursery.cancel_scope.cancel()


async def test_bad_candle_requests_get_a_documented_error(autojump_clock: trio.abc.Clock) -> None:
    board = Board()
    without_history = Delivery(("BTCUSDT",), client_buffer=8)
    async with trio.open_nursery() as nursery:
        transport = await connect(nursery, board.delivery)
        for candles in ("2m", 5, "1M"):
            await transport.client_send({"action": "subscribe", "symbol": "BTCUSDT", "candles": candles, "id": 9})
            error = await transport.client_receive()
            assert (error["type"], error["code"], error["field"], error["id"]) == (
                "error",
                "invalid_interval",
                "candles",
                9,
            )
        plain = await connect(nursery, without_history)
        await plain.client_send({"action": "subscribe", "symbol": "BTCUSDT", "candles": "1m"})
        assert (await plain.client_receive())["code"] == "candles_unavailable"
        # The prototypes' dialect gets price objects only: candles are refused, with its error shape.
        prototype = MemoryTransport(client_window=100)
        await nursery.start(board.delivery.session(prototype, peer="test", dialect=Dialect.PROTOTYPE).run)
        await prototype.client_send({"action": "subscribe", "symbol": "BTCUSDT", "candles": "1m"})
        refused = await prototype.client_receive()
        assert refused["code"] == "invalid_field" and "full protocol" in refused["error"]
        nursery.cancel_scope.cancel()


async def test_a_price_no_candle_can_hold_is_left_out_and_the_hub_goes_on(autojump_clock: trio.abc.Clock) -> None:
    # A follower takes ticks from Redis as they are: one written by another version may hold anything.
    board = Board()
    ts = int(board.clock() * 1000)
    board.hub.publish_tick(Tick("BTCUSDT", float("inf"), 0.0, 0.0, ts, 1, Mode.LIVE))
    board.hub.publish_tick(Tick("BTCUSDT", 96_500.5, 0.0, 0.0, ts, 2, Mode.LIVE, volume=Decimal("0.5")))
    current = board.live.book.current("BTCUSDT", Interval.M1)
    assert current is not None and (current.open, current.trades) == (Decimal("96500.5"), 1)
    assert board.live.unusable_ticks == 1


async def test_a_candle_repaired_from_klines_goes_out_again_closed_and_older_history_does_not(
    autojump_clock: trio.abc.Clock,
) -> None:
    board = Board()
    async with trio.open_nursery() as nursery:
        await board.start(nursery)
        await trio.sleep(10)  # 12:00:10
        board.publish("BTCUSDT", "96500.5")
        transport = await connect(nursery, board.delivery)
        await transport.client_send({"action": "subscribe", "symbols": ["BTCUSDT"], "candles": "1m"})
        received: list[tuple[float, dict[str, Any]]] = []
        nursery.start_soon(collect, transport, received)
        await trio.sleep(55)  # 12:01:05: the minute closed on time
        streamed = [m for _, m in candles_of(received, "1m") if m["closed"]]
        assert [m["open_time"] for m in streamed] == [BASE_S * 1000]
        minute_ms = 60_000
        kline = Candle(
            "BTCUSDT", Interval.M1, BASE_S * 1000, Decimal("96400"), Decimal("96600"), Decimal("96390"),
            Decimal("96500.5"), Decimal("12.5"), 40, BASE_S * 1000 + minute_ms - 1, closed=True,
        )  # fmt: skip
        before_start = dataclasses.replace(kline, open_time=BASE_S * 1000 - 2 * minute_ms)
        board.live.repaired([before_start, kline])
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    closed = [m for _, m in candles_of(received, "1m") if m["closed"]]
    assert [m["open_time"] for m in closed] == [BASE_S * 1000, BASE_S * 1000]  # the older one is /candles' business
    assert (closed[-1]["open"], closed[-1]["volume"], closed[-1]["trades"]) == ("96400", "12.5", 40)
