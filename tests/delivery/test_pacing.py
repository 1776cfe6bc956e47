"""The flush pacer: each batching client gets at most one frame per interval; writers whose turn
has come are released in queue order, a few per scheduler pass; an idle pacer does not wake up.
Exact virtual times on the autojump clock, over in-memory transports.
"""

from __future__ import annotations

import collections
import itertools

import orjson
import trio
import trio.testing

from tests.support.delivery import Delivery
from tests.support.memory_transport import MemoryTransport
from trio_ticker.delivery.pacing import FLUSH_GROUP, FlushPacer
from trio_ticker.model import Mode, PriceUpdate

_prices = itertools.count(100)


def update(symbol: str) -> PriceUpdate:
    return PriceUpdate(symbol, float(next(_prices)), 100.0, 1_700_000_000_000, Mode.DEMO)


class SchedulerPasses(trio.abc.Instrument):
    """Counts the run loop's passes (it waits for I/O once per pass)."""

    def __init__(self) -> None:
        self.count = 0

    def after_io_wait(self, timeout: float) -> None:
        self.count += 1


async def test_a_writer_flushes_at_most_once_per_interval(autojump_clock: trio.abc.Clock) -> None:
    pacer = FlushPacer(0.05)
    turns: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        await pacer.wait_turn(None)  # never flushed: its turn is now
        turns.append(trio.current_time())
        for delay in (0.0, 0.01, 0.2):
            await trio.sleep(delay)  # then flushes; the next turn comes an interval after the flush
            flushed_at = trio.current_time()
            await pacer.wait_turn(flushed_at)
            turns.append(trio.current_time())
        await pacer.wait_turn(trio.current_time() - 1)  # a turn already due (a slow send) comes at once
        turns.append(trio.current_time())
        nursery.cancel_scope.cancel()
    assert [round(at, 6) for at in turns] == [0.0, 0.05, 0.11, 0.36, 0.36]


async def test_due_writers_go_in_queue_order_a_group_per_scheduler_pass(autojump_clock: trio.abc.Clock) -> None:
    pacer = FlushPacer(0.05, group=4)
    passes = SchedulerPasses()
    released: list[tuple[int, int]] = []  # (writer, pass it ran in)

    async def writer(index: int) -> None:
        await pacer.wait_turn(0.0)
        released.append((index, passes.count))

    trio.lowlevel.add_instrument(passes)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(pacer.run)
            async with trio.open_nursery() as writers:
                for index in range(10):
                    writers.start_soon(writer, index)
                    await trio.testing.wait_all_tasks_blocked()  # queued in this order
            nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(passes)
    groups: dict[int, set[int]] = collections.defaultdict(set)
    for index, run_pass in released:
        groups[run_pass].add(index)
    # In queue order, never more than `group` in one pass (trio orders the tasks within a pass).
    assert [groups[run_pass] for run_pass in sorted(groups)] == [{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}]


async def test_a_writer_due_now_does_not_wait_behind_one_whose_interval_runs(autojump_clock: trio.abc.Clock) -> None:
    pacer = FlushPacer(0.05)
    turns: list[tuple[str, float]] = []

    async def writer(name: str, last_flush: float | None) -> None:
        await pacer.wait_turn(last_flush)
        turns.append((name, round(trio.current_time(), 6)))

    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        async with trio.open_nursery() as writers:
            writers.start_soon(writer, "flushed at 0", 0.0)  # queued first, due at 0.05
            await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(0.01)
            writers.start_soon(writer, "never flushed", None)  # a single-frame writer, an idle batching one
            await trio.sleep(0.01)
            writers.start_soon(writer, "overdue", 0.0 - 1)  # its send took longer than the interval
        nursery.cancel_scope.cancel()
    assert turns == [("never flushed", 0.01), ("overdue", 0.02), ("flushed at 0", 0.05)]


async def test_due_writers_keep_their_queue_order_whatever_made_them_due(autojump_clock: trio.abc.Clock) -> None:
    # A saturated loop: single-frame writers (due at once) take their turns behind the batching writers
    # whose interval has passed and that queued before them, so neither kind can starve the other.
    pacer = FlushPacer(0.05, group=1)
    released: list[str] = []

    async def batching_writer(name: str) -> None:
        await pacer.wait_turn(0.0)  # due at 0.05
        released.append(name)

    async def single_frame_writer() -> None:
        await pacer.wait_turn(0.0)
        released.append("single")
        await pacer.wait_turn(None)  # its next frame: due at once, but behind the three still queued
        released.append("single again")

    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        async with trio.open_nursery() as writers:
            writers.start_soon(single_frame_writer)
            await trio.testing.wait_all_tasks_blocked()  # queued in this order
            for index in range(3):
                writers.start_soon(batching_writer, f"batching {index}")
                await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert released == ["single", "batching 0", "batching 1", "batching 2", "single again"]


async def test_a_writer_cancelled_while_queued_is_skipped(autojump_clock: trio.abc.Clock) -> None:
    pacer = FlushPacer(0.05, group=1)
    turns: list[tuple[str, float]] = []

    async def writer(name: str) -> None:
        await pacer.wait_turn(0.0)
        turns.append((name, trio.current_time()))

    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        with trio.move_on_after(0.01):
            await pacer.wait_turn(0.0)  # gives up before its turn (a client that went away)
        turns.append(("gave up", trio.current_time()))
        async with trio.open_nursery() as writers:
            writers.start_soon(writer, "next")
        await writer("after")
        nursery.cancel_scope.cancel()
    assert [(name, round(at, 6)) for name, at in turns] == [("gave up", 0.01), ("next", 0.05), ("after", 0.05)]


async def test_an_idle_pacer_sleeps(autojump_clock: trio.abc.Clock) -> None:
    pacer = FlushPacer(0.05)
    passes = SchedulerPasses()
    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        await pacer.wait_turn(trio.current_time())  # one turn, then nobody waits
        trio.lowlevel.add_instrument(passes)
        try:
            await trio.sleep(10)
        finally:
            trio.lowlevel.remove_instrument(passes)
        nursery.cancel_scope.cancel()
    assert passes.count <= 2  # the sleep itself: the pacer did not wake in 200 intervals


async def test_a_stopped_or_disabled_pacer_never_holds_a_writer(autojump_clock: trio.abc.Clock) -> None:
    disabled = FlushPacer(0)
    async with trio.open_nursery() as nursery:
        await nursery.start(disabled.run)
    with trio.fail_after(0.001):
        await disabled.wait_turn(trio.current_time())  # interval 0: no pacing at all

    pacer = FlushPacer(1.0)
    waiter_done = trio.Event()

    async def waiter() -> None:
        await pacer.wait_turn(trio.current_time())
        waiter_done.set()

    async with trio.open_nursery() as waiters, trio.open_nursery() as pacer_nursery:
        await pacer_nursery.start(pacer.run)
        waiters.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        pacer_nursery.cancel_scope.cancel()  # the pacer stops before the writer's turn comes
    assert waiter_done.is_set()
    assert trio.current_time() < 1.0
    with trio.fail_after(0.001):
        await pacer.wait_turn(trio.current_time())  # and a writer arriving later is not held either


async def test_batching_clients_get_one_full_frame_per_interval(
    autojump_clock: trio.abc.Clock,
) -> None:
    interval, ticks = 0.1, 100
    delivery = Delivery(("AAPL",), client_buffer=256, batch_flush_interval=interval)
    hub = delivery.hub
    transports = [MemoryTransport(client_window=0) for _ in range(3)]
    frames: list[list[tuple[float, list[int]]]] = [[] for _ in transports]

    async def read(index: int, transport: MemoryTransport) -> None:
        while True:
            batch = orjson.loads(await transport.client_receive_raw())
            seqs = [message["seq"] for message in batch if "seq" in message]
            if seqs:
                frames[index].append((round(trio.current_time(), 6), seqs))

    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        await trio.testing.wait_all_tasks_blocked()
        for index, transport in enumerate(transports):
            session = delivery.session(transport, batch=True)
            await nursery.start(session.run)
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

    for received in frames:
        assert [seq for _, seqs in received for seq in seqs] == list(range(1, ticks + 1))  # every tick, in order
        times = [at for at, _ in received]
        # The first tick goes out on arrival (the client was idle); after that one frame per interval.
        assert times[0] == round(start, 6)
        assert {round(later - earlier, 6) for earlier, later in itertools.pairwise(times)} == {interval}
        assert {len(seqs) for _, seqs in received[1:]} <= {9, 10}  # full frames: the ticks of one interval


async def test_a_batching_clients_interval_holds_up_no_other_client(autojump_clock: trio.abc.Clock) -> None:
    delivery = Delivery(("AAPL", "MSFT"), client_buffer=16, batch_flush_interval=0.05)
    hub = delivery.hub
    received: list[tuple[str, float]] = []  # (symbol, time) of every tick either client received

    async def read(transport: MemoryTransport) -> None:
        while True:
            frame = orjson.loads(await transport.client_receive_raw())
            for message in frame if isinstance(frame, list) else [frame]:
                received.append((message["ticker"], round(trio.current_time() - start, 6)))

    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        for batch, symbol in ((True, "AAPL"), (False, "MSFT")):
            transport = MemoryTransport(client_window=0)
            await nursery.start(delivery.session(transport, batch=batch).run)
            await transport.client_send({"action": "subscribe", "symbol": symbol})
            await transport.client_receive_raw()  # the ack
            nursery.start_soon(read, transport)
        await trio.sleep(1)  # both idle
        start = trio.current_time()
        hub.publish(update("AAPL"))  # the batching client was idle: out at once, its next frame 50 ms later
        await trio.sleep(0.01)
        hub.publish(update("AAPL"))
        hub.publish(update("MSFT"))  # the single-frame client does not wait for the other's interval
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert received == [("AAPL", 0.0), ("MSFT", 0.01), ("AAPL", 0.05)]


async def test_a_tick_to_many_idle_clients_goes_out_a_group_per_scheduler_pass(autojump_clock: trio.abc.Clock) -> None:
    passes = SchedulerPasses()
    sent_in_pass: dict[bool, list[int]] = {False: [], True: []}  # batch mode -> pass of each tick frame sent

    class RecordingTransport(MemoryTransport):
        def __init__(self, batch: bool) -> None:
            super().__init__(client_window=10)
            self._batch = batch

        async def send(self, frame: str) -> None:
            if '"tick"' in frame:
                sent_in_pass[self._batch].append(passes.count)
            await super().send(frame)

    delivery = Delivery(("AAPL",), client_buffer=16, batch_flush_interval=0.05)

    hub = delivery.hub
    async with trio.open_nursery() as nursery:
        await delivery.start(nursery)
        await trio.testing.wait_all_tasks_blocked()
        for index in range(80):
            batch = index % 2 == 1
            transport = RecordingTransport(batch)
            session = delivery.session(transport, batch=batch)
            await nursery.start(session.run)
            await transport.client_send({"action": "subscribe", "symbol": "AAPL"})
            await transport.client_receive_raw()  # the ack
        await trio.sleep(1)  # every writer idle, waiting for an update
        trio.lowlevel.add_instrument(passes)
        try:
            hub.publish(update("AAPL"))
            await trio.sleep(1)
        finally:
            trio.lowlevel.remove_instrument(passes)
        nursery.cancel_scope.cancel()
    for batch, passes_sent in sent_in_pass.items():
        assert len(passes_sent) == 40, batch  # every client got the tick...
    per_pass = collections.Counter(sent_in_pass[False] + sent_in_pass[True])
    assert max(per_pass.values()) <= FLUSH_GROUP  # ...a group per pass, not all 80 in the pass the tick woke them


class SaturatingWriters:
    """Writers that are due again as soon as they have flushed, each flush taking `work` seconds of the
    (virtual) loop: more than a group is due in every scheduler pass, and the clock moves on with them."""

    def __init__(self, pacer: FlushPacer, clock: trio.testing.MockClock, *, count: int, work: float) -> None:
        self._pacer, self._clock, self._count, self._work = pacer, clock, count, work

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self._count):
                nursery.start_soon(self._write)
            task_status.started()

    async def _write(self) -> None:
        while True:
            await self._pacer.wait_turn(None)
            await trio.lowlevel.checkpoint_if_cancelled()  # a stopped pacer returns at once
            self._clock.jump(self._work)  # the send


async def test_with_no_writer_due_new_connections_start_a_group_per_scheduler_pass(
    autojump_clock: trio.abc.Clock,
) -> None:
    pacer = FlushPacer(0.05, group=8)
    passes = SchedulerPasses()
    started_in_pass: list[int] = []

    async def connection() -> None:
        await pacer.wait_admission()
        started_in_pass.append(passes.count)

    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        await trio.testing.wait_all_tasks_blocked()  # the pacer sleeps: nothing queued
        trio.lowlevel.add_instrument(passes)
        try:
            async with trio.open_nursery() as connections:
                for _ in range(20):
                    connections.start_soon(connection)
        finally:
            trio.lowlevel.remove_instrument(passes)
        nursery.cancel_scope.cancel()
    assert trio.current_time() == 0  # nothing waited for the clock
    per_pass = collections.Counter(started_in_pass)
    assert sorted(per_pass.values(), reverse=True) == [8, 8, 4]  # a whole group per pass
    assert max(per_pass) - min(per_pass) == 2  # in three consecutive passes


async def test_while_writers_fill_every_group_one_connection_starts_per_admission_floor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    floor = 0.01
    pacer = FlushPacer(0.05, group=8, admission_floor=floor)
    started: list[float] = []

    async def connection() -> None:
        await pacer.wait_admission()
        started.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        # 24 writers, 0.1 ms a flush: 8 flushes (0.8 ms) a pass, 16 more due behind them, pass after pass.
        await nursery.start(SaturatingWriters(pacer, autojump_clock, count=24, work=0.0001).run)
        for _ in range(300):  # a reconnect burst: more than a second's worth at one per floor
            nursery.start_soon(connection)
        await trio.sleep(1.0)  # the writers move the clock
        nursery.cancel_scope.cancel()
    in_the_first_second = [at for at in started if at < 1.0]
    # Never starved, never more: one per floor (a connection runs anywhere among a pass's 0.8 ms of flushes).
    assert 0.9 / floor <= len(in_the_first_second) <= 1 / floor
    gaps = [later - earlier for earlier, later in itertools.pairwise(in_the_first_second)]
    assert min(gaps) >= floor - 0.0008 * 2


async def test_a_connection_that_gives_up_waiting_costs_no_admission(autojump_clock: trio.testing.MockClock) -> None:
    pacer = FlushPacer(0.05, group=8, admission_floor=1.0)
    started: list[tuple[str, float]] = []

    async def connection(name: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()  # it queues before the starter runs again
        await pacer.wait_admission()
        started.append((name, round(trio.current_time(), 1)))  # to within a pass (8 flushes: 8 ms)

    with trio.fail_after(5):  # virtual seconds: the writers move the clock
        async with trio.open_nursery() as nursery:
            await nursery.start(pacer.run)
            await nursery.start(SaturatingWriters(pacer, autojump_clock, count=24, work=0.001).run)
            await connection("first")  # the first while writers fill every group goes in at once
            with trio.move_on_after(0.5):
                await pacer.wait_admission()  # gives up before its turn (a client that went away)
            started.append(("gave up", round(trio.current_time(), 1)))
            async with trio.open_nursery() as connections:
                await connections.start(connection, "next")  # (the writers never leave the loop idle)
                await connections.start(connection, "after")
            nursery.cancel_scope.cancel()
    # "next" takes the turn the one that gave up would have had, a floor after the first.
    assert started == [("first", 0.0), ("gave up", 0.5), ("next", 1.0), ("after", 2.0)]
    assert pacer.statistics().admitted == 3


async def test_a_stopped_or_disabled_pacer_never_holds_a_new_connection(autojump_clock: trio.testing.MockClock) -> None:
    disabled = FlushPacer(0)
    async with trio.open_nursery() as nursery:
        await nursery.start(disabled.run)
    with trio.fail_after(0.001):
        await disabled.wait_admission()  # interval 0: no pacing at all

    pacer = FlushPacer(1.0, admission_floor=1.0)
    with trio.fail_after(0.001):
        await pacer.wait_admission()  # not started yet

    connected = trio.Event()

    async def connection(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()  # it queues before the starter runs again
        await pacer.wait_admission()
        connected.set()

    with trio.fail_after(1):
        async with trio.open_nursery() as connections, trio.open_nursery() as pacer_nursery:
            await pacer_nursery.start(pacer.run)
            # Every group full: the first admission goes in at once, the next a second later.
            await pacer_nursery.start(SaturatingWriters(pacer, autojump_clock, count=3 * pacer.group, work=0.0001).run)
            connections.start_soon(connection)
            await connected.wait()
            connected = trio.Event()
            await connections.start(connection)
            assert not connected.is_set()  # queued: a second forced admission is a second away
            pacer_nursery.cancel_scope.cancel()  # the pacer stops before that connection's turn comes
    assert connected.is_set()
    assert trio.current_time() < 0.1
    with trio.fail_after(0.001):
        await pacer.wait_admission()  # and one arriving later is not held either
