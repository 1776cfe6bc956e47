"""Recovery over in-memory transports on the autojump clock: the replay of missed ticks, its count and
time bounds, the epoch check, atomicity with going live, and a replay longer than the client's buffer."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
import trio.testing

from tests.support.delivery import Delivery
from tests.support.memory_transport import MemoryTransport
from trio_ticker.delivery.recovery import RecoveryLimits
from trio_ticker.model import Mode, PastTick, PriceUpdate, Tick

SYMBOLS = ("AAPL", "MSFT")
EPOCH = "e1"
_prices = itertools.count(100)


def update(symbol: str) -> PriceUpdate:
    return PriceUpdate(symbol, float(next(_prices)), 100.0, 1_700_000_000_000, Mode.DEMO)


def publish(deliver: Delivery, symbol: str, count: int) -> None:
    for _ in range(count):
        deliver.hub.publish(update(symbol))


async def open_client(nursery: trio.Nursery, deliver: Delivery, window: int = 1000) -> MemoryTransport:
    transport = MemoryTransport(client_window=window)
    await nursery.start(deliver.session(transport).run)
    return transport


def delivery(*, max_ticks: int = 50, window: float = 30.0, client_buffer: int = 8) -> Delivery:
    return Delivery(SYMBOLS, client_buffer=client_buffer, epoch=EPOCH, recovery=RecoveryLimits(max_ticks, window))


async def subscribe(transport: MemoryTransport, since: dict[str, int], epoch: str = EPOCH) -> dict[str, Any]:
    await transport.client_send({"action": "subscribe", "symbols": list(since), "since": since, "epoch": epoch})
    ack: dict[str, Any] = await transport.client_receive()
    assert ack["type"] == "subscribed"
    return ack


def drain(transport: MemoryTransport) -> list[dict[str, Any]]:
    frames = []
    while (message := transport.client_receive_nowait()) is not None:
        frames.append(message)
    return frames


async def test_a_client_within_the_bounds_gets_every_missed_tick_then_live(
    autojump_clock: trio.abc.Clock,
) -> None:
    deliver = delivery()
    publish(deliver, "AAPL", 30)
    async with trio.open_nursery() as nursery:
        await deliver.start(nursery)
        transport = await open_client(nursery, deliver, 1000)
        ack = await subscribe(transport, {"AAPL": 12})
        assert ack["recovered"] == {"AAPL": True} and ack["epoch"] == EPOCH
        publish(deliver, "AAPL", 5)
        await trio.sleep(1)
        frames = drain(transport)
        assert [frame["seq"] for frame in frames] == list(range(13, 36))
        assert all(frame["type"] == "tick" and "recovered" not in frame for frame in frames)
        nursery.cancel_scope.cancel()


async def test_nothing_missed_is_recovered_with_no_tick(autojump_clock: trio.abc.Clock) -> None:
    deliver = delivery()
    publish(deliver, "AAPL", 3)
    async with trio.open_nursery() as nursery:
        await deliver.start(nursery)
        transport = await open_client(nursery, deliver, 100)
        assert (await subscribe(transport, {"AAPL": 3}))["recovered"] == {"AAPL": True}
        deliver.hub.publish(update("AAPL"))
        await trio.sleep(1)
        assert [frame["seq"] for frame in drain(transport)] == [4]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("since", "recovered"),
    [
        (40, True),  # the 50th tick back: the oldest one kept
        (39, False),  # one more than TICKER_RECOVERY_TICKS missed
        (91, False),  # in the future
    ],
)
async def test_the_count_bound_is_exact(autojump_clock: trio.abc.Clock, since: int, recovered: bool) -> None:
    deliver = delivery(max_ticks=50)
    publish(deliver, "AAPL", 90)
    async with trio.open_nursery() as nursery:
        await deliver.start(nursery)
        transport = await open_client(nursery, deliver, 1000)
        assert (await subscribe(transport, {"AAPL": since}))["recovered"] == {"AAPL": recovered}
        await trio.sleep(1)
        frames = drain(transport)
        if recovered:
            assert [frame["seq"] for frame in frames] == list(range(since + 1, 91))
        else:  # the snapshot, marked
            assert [(f["seq"], f["recovered"], f["epoch"]) for f in frames] == [(90, False, EPOCH)]
        nursery.cancel_scope.cancel()


async def test_the_time_window_is_exact(autojump_clock: trio.abc.Clock) -> None:
    deliver = delivery(window=30.0)
    start = trio.current_time()
    deliver.hub.publish(update("AAPL"))  # seq 1 at start
    await trio.sleep(10)
    deliver.hub.publish(update("AAPL"))  # seq 2 at start + 10
    async with trio.open_nursery() as nursery:
        await deliver.start(nursery)

        async def recovered_at(at: float, since: dict[str, int]) -> tuple[bool, list[int]]:
            await trio.sleep_until(start + at)
            transport = MemoryTransport(client_window=100)
            await nursery.start(deliver.session(transport).run)
            ack = await subscribe(transport, since)
            await trio.sleep(0.5)
            return ack["recovered"] == dict.fromkeys(since, True), [frame["seq"] for frame in drain(transport)]

        assert await recovered_at(30.0, {"AAPL": 0}) == (True, [1, 2])  # seq 1 is exactly 30 s old: still kept
        assert await recovered_at(31.0, {"AAPL": 0}) == (False, [2])  # seq 1 is past the window: the snapshot
        assert await recovered_at(32.0, {"AAPL": 1}) == (True, [2])  # seq 2 is not
        assert await recovered_at(40.5, {"AAPL": 1}) == (False, [2])  # and now it is
        assert await recovered_at(41.0, {"MSFT": 0}) == (False, [])  # no tick at all
        nursery.cancel_scope.cancel()


async def test_another_epoch_gets_the_snapshot(autojump_clock: trio.abc.Clock) -> None:
    deliver = delivery()
    publish(deliver, "AAPL", 5)
    async with trio.open_nursery() as nursery:
        await deliver.start(nursery)
        transport = await open_client(nursery, deliver, 100)
        ack = await subscribe(transport, {"AAPL": 2}, epoch="an-old-run")
        assert ack["recovered"] == {"AAPL": False} and ack["epoch"] == EPOCH
        await trio.sleep(1)
        assert [(f["seq"], f["recovered"]) for f in drain(transport)] == [(5, False)]
        nursery.cancel_scope.cancel()


async def test_a_replay_longer_than_the_buffer_arrives_whole_and_in_order_with_live_ticks(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The client's buffer holds 4 frames; the replay is 40 and live ticks keep coming while it drains: none is
    # conflated, none duplicated, each symbol in order.
    deliver = delivery(client_buffer=4)
    for _ in range(50):
        deliver.hub.publish(update("AAPL"))
        deliver.hub.publish(update("MSFT"))
    transport = MemoryTransport(client_window=0)  # the client reads one frame at a time
    seen: dict[str, list[int]] = {"AAPL": [], "MSFT": []}
    async with trio.open_nursery() as nursery:
        await deliver.start(nursery)
        await nursery.start(deliver.session(transport).run)
        await transport.client_send(
            {"action": "subscribe", "symbols": ["AAPL", "MSFT"], "since": {"AAPL": 10}, "epoch": EPOCH}
        )
        ack = await transport.client_receive()
        assert ack["recovered"] == {"AAPL": True}

        async def publish_live() -> None:
            for _ in range(20):
                deliver.hub.publish(update("AAPL"))
                deliver.hub.publish(update("MSFT"))
                await trio.sleep(0.001)

        nursery.start_soon(publish_live)
        while len(seen["AAPL"]) < 60 or len(seen["MSFT"]) < 21:
            frame = await transport.client_receive()
            seen[frame["ticker"]].append(frame["seq"])
        nursery.cancel_scope.cancel()
    assert seen["AAPL"] == list(range(11, 71))
    assert seen["MSFT"][0] == 50 and seen["MSFT"] == sorted(set(seen["MSFT"]))  # a snapshot, then live
    assert deliver.hub.statistics().conflated == 0


async def test_recovery_off_keeps_nothing(autojump_clock: trio.abc.Clock) -> None:
    deliver = delivery(max_ticks=0)
    publish(deliver, "AAPL", 5)
    async with trio.open_nursery() as nursery:
        await deliver.start(nursery)
        transport = await open_client(nursery, deliver, 100)
        assert (await subscribe(transport, {"AAPL": 4}))["recovered"] == {"AAPL": False}
        nursery.cancel_scope.cancel()


def past_tick(seq: int) -> Tick:
    return Tick("AAPL", 100.0 + seq, 0.0, 0.0, 1_700_000_000_000 + seq, seq, Mode.DEMO)


async def test_past_ticks_are_replayed_by_their_age_and_never_sent_live(autojump_clock: trio.abc.Clock) -> None:
    """A worker that just started remembers the ticks it read from a store: seqs 1-3 published 25 s ago, 4-5 5 s ago,
    then the snapshot of 5 (the same tick again: remembered once). Within the window all recover; the ones past it
    do not, by their age, not by when this hub read them."""
    deliver = delivery(window=30.0)
    async with trio.open_nursery() as nursery:
        await deliver.start(nursery)
        watcher = await open_client(nursery, deliver, 100)
        await subscribe(watcher, {"AAPL": 0})  # subscribed before the past ticks arrive: it gets none of them
        drain(watcher)
        for seq in (1, 2, 3):
            deliver.hub.ingest(PastTick(past_tick(seq), age=25.0))
        for seq in (4, 5):
            deliver.hub.ingest(PastTick(past_tick(seq), age=5.0))
        deliver.hub.ingest(past_tick(5))  # the snapshot: the latest tick, stored and recorded now
        await trio.sleep(1)
        assert [frame["seq"] for frame in drain(watcher)] == [5]  # the live snapshot tick only

        async def recovers(since: int) -> tuple[bool, list[int]]:
            transport = await open_client(nursery, deliver, 100)
            ack = await subscribe(transport, {"AAPL": since})
            await trio.sleep(0.5)
            return ack["recovered"] == {"AAPL": True}, [frame["seq"] for frame in drain(transport)]

        assert await recovers(0) == (True, [1, 2, 3, 4, 5])  # 26.5 s old at most: inside the window
        await trio.sleep(4)  # seqs 1-3 are now 31 s old
        assert await recovers(0) == (False, [5])
        assert await recovers(3) == (True, [4, 5])
        nursery.cancel_scope.cancel()
