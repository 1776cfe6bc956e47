"""The phased flush clock: each batching client gets at most one frame per interval, and the
clients are released in staggered groups so one scheduler pass never carries all of them.
Exact virtual times on the autojump clock, over in-memory transports.
"""

from __future__ import annotations

import itertools

import orjson
import trio
import trio.testing

from tests.memory_transport import MemoryTransport
from trio_ticker.hub import Hub
from trio_ticker.model import Mode, PriceUpdate
from trio_ticker.pacing import FlushClock
from trio_ticker.session import ClientSession

_prices = itertools.count(100)


def update(symbol: str) -> PriceUpdate:
    return PriceUpdate(symbol, float(next(_prices)), 100.0, 1_700_000_000_000, Mode.DEMO)


async def test_the_clock_releases_one_phase_per_step_in_turn(autojump_clock: trio.abc.Clock) -> None:
    clock = FlushClock(0.08, phases=4)  # a step of 20 ms
    released: dict[int, list[float]] = {phase: [] for phase in range(4)}

    async def watch(phase: int) -> None:
        seen = 0
        for _ in range(3):
            await clock.wait_tick_after(phase, seen)
            seen = clock.ticks(phase)
            released[phase].append(round(trio.current_time(), 6))

    async with trio.open_nursery() as nursery:
        await nursery.start(clock.run)
        async with trio.open_nursery() as watchers:
            for phase in range(4):
                watchers.start_soon(watch, phase)
        nursery.cancel_scope.cancel()
    assert released == {
        0: [0.02, 0.1, 0.18],
        1: [0.04, 0.12, 0.2],
        2: [0.06, 0.14, 0.22],
        3: [0.08, 0.16, 0.24],
    }


async def test_a_stopped_or_disabled_clock_never_holds_a_writer(autojump_clock: trio.abc.Clock) -> None:
    disabled = FlushClock(0)
    async with trio.open_nursery() as nursery:
        await nursery.start(disabled.run)
    with trio.fail_after(0.001):
        await disabled.wait_tick_after(0, 0)  # interval 0: no pacing at all

    clock = FlushClock(1.0, phases=2)
    waiter_done = trio.Event()

    async def waiter() -> None:
        await clock.wait_tick_after(1, clock.ticks(1))
        waiter_done.set()

    async with trio.open_nursery() as waiters, trio.open_nursery() as clock_nursery:
        await clock_nursery.start(clock.run)
        waiters.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        clock_nursery.cancel_scope.cancel()  # the clock stops before phase 1 is ever released
    assert waiter_done.is_set()
    assert clock.ticks(1) == 0


async def test_batching_clients_get_one_full_frame_per_interval_in_staggered_phases(
    autojump_clock: trio.abc.Clock,
) -> None:
    interval, ticks = 0.1, 100
    hub = Hub(("AAPL",), client_buffer=256, batch_flush_interval=interval)
    transports = [MemoryTransport(client_window=0) for _ in range(3)]
    frames: list[list[tuple[float, list[int]]]] = [[] for _ in transports]

    async def read(index: int, transport: MemoryTransport) -> None:
        while True:
            batch = orjson.loads(await transport.client_receive_raw())
            seqs = [message["seq"] for message in batch if "seq" in message]
            if seqs:
                frames[index].append((round(trio.current_time(), 6), seqs))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hub.run, trio.open_memory_channel(0)[1])  # runs the flush clock; no sources
        await trio.testing.wait_all_tasks_blocked()
        outboxes = []
        for index, transport in enumerate(transports):
            session = ClientSession(transport, hub, slow_client_timeout=5, close_timeout=1, batch=True)
            outboxes.append(await nursery.start(session.run))
            await transport.client_send({"action": "subscribe", "symbol": "AAPL"})
            assert await transport.client_receive_raw() == '[{"type":"subscribed","symbols":["AAPL"]}]'
            nursery.start_soon(read, index, transport)
        await trio.sleep(interval)  # the acks' flush windows are over: the clients are idle
        start = trio.current_time()
        for _ in range(ticks):
            hub.publish(update("AAPL"))  # 100 ticks/s, ten per interval
            await trio.sleep(0.01)
        await trio.sleep(2 * interval)
        nursery.cancel_scope.cancel()

    step = interval / hub.flush_clock.phases
    for index, received in enumerate(frames):
        assert [seq for _, seqs in received for seq in seqs] == list(range(1, ticks + 1))  # every tick, in order
        times = [at for at, _ in received]
        # The first tick goes out on arrival (the client was idle); after that one frame per interval, at the
        # client's own phase of the clock.
        assert times[0] == round(start, 6)
        assert {round(later - earlier, 6) for earlier, later in itertools.pairwise(times[1:])} == {interval}
        phase = hub.flush_clock.phase_of(outboxes[index].client_id)
        assert round((times[1] - step * (phase + 1)) / interval, 6).is_integer()
        assert 9 <= max(len(seqs) for _, seqs in received) <= 10
    assert len({frames[index][1][0] % interval for index in range(3)}) == 3  # three phases, three send times
