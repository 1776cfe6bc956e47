"""The writer on its own: an outbox, the flush pacer and a recording `send`, on the autojump clock.

Single frames in order while the client keeps up, the newest per symbol once it lags (counted),
one batch per flush interval, a send error ends the writer, and a closed outbox ends it cleanly.
"""

from __future__ import annotations

import orjson
import pytest
import trio
import trio.testing

from trio_ticker.delivery.outbox import ClientOutbox
from trio_ticker.delivery.pacing import FlushPacer
from trio_ticker.delivery.writer import write_batches, write_single_frames


class Socket:
    """A recording `send`: each frame with its virtual time; each send takes `send_time` seconds."""

    def __init__(self, send_time: float = 0.0) -> None:
        self.frames: list[tuple[float, str]] = []
        self.send_time = send_time

    async def send(self, frame: str) -> None:
        if self.send_time:
            await trio.sleep(self.send_time)
        self.frames.append((round(trio.current_time(), 6), frame))

    def texts(self) -> list[str]:
        return [frame for _, frame in self.frames]


class Conflated:
    def __init__(self) -> None:
        self.total = 0

    def __call__(self, skipped: int) -> None:
        self.total += skipped


def make_outbox(capacity: int = 64) -> ClientOutbox:
    outbox = ClientOutbox(1, capacity)
    outbox.add_subscription("AAPL")
    outbox.add_subscription("MSFT")
    return outbox


async def test_single_frames_go_out_one_by_one_in_order(autojump_clock: trio.abc.Clock) -> None:
    outbox, socket, conflated = make_outbox(), Socket(), Conflated()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(write_single_frames, outbox, socket.send, FlushPacer(0.05), conflated)
        for index in range(5):
            outbox.offer("AAPL", f"a{index}")
        await outbox.send_control("pong")
        await trio.testing.wait_all_tasks_blocked()
        assert socket.texts() == ["a0", "a1", "a2", "a3", "a4", "pong"]
        outbox.request_close(1000, "bye")  # the writer returns once its outbox is closed
    assert conflated.total == 0


async def test_a_lagging_single_frame_client_skips_superseded_ticks_never_replies(
    autojump_clock: trio.abc.Clock,
) -> None:
    pacer = FlushPacer(0.05)
    outbox, socket, conflated = make_outbox(), Socket(send_time=0.2), Conflated()  # each send outlasts 2 intervals
    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        nursery.start_soon(write_single_frames, outbox, socket.send, pacer, conflated)
        outbox.offer("AAPL", "a0")
        await trio.sleep(0.1)  # a0 is being sent
        outbox.offer("AAPL", "a1")
        await outbox.send_control("ack")
        outbox.offer("AAPL", "a2")
        outbox.offer("MSFT", "m1")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert socket.texts() == ["a0", "ack", "a2", "m1"]  # a1 was superseded by a2 while the backlog aged
    assert conflated.total == 1


async def test_a_single_frame_client_that_keeps_up_gets_every_tick_even_in_a_burst(
    autojump_clock: trio.abc.Clock,
) -> None:
    pacer = FlushPacer(0.05)
    outbox, socket, conflated = make_outbox(), Socket(send_time=0.001), Conflated()
    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        nursery.start_soon(write_single_frames, outbox, socket.send, pacer, conflated)
        for index in range(20):  # sent within 20 ms: the backlog never gets two intervals old
            outbox.offer("AAPL", f"a{index}")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert socket.texts() == [f"a{index}" for index in range(20)]
    assert conflated.total == 0


async def test_batches_are_one_frame_per_flush_interval(autojump_clock: trio.abc.Clock) -> None:
    pacer = FlushPacer(0.1)
    outbox, socket = make_outbox(), Socket()
    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        nursery.start_soon(write_batches, outbox, socket.send, pacer)
        await trio.sleep(1)  # idle
        start = trio.current_time()
        for index in range(6):
            outbox.offer("AAPL", f'"a{index}"')
            await trio.sleep(0.03)
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    frames = [(round(at - start, 6), orjson.loads(frame)) for at, frame in socket.frames]
    # The first tick goes out at once (the writer was idle), the rest at most one frame per interval.
    assert frames == [(0.0, ["a0"]), (0.1, ["a1", "a2", "a3"]), (0.2, ["a4", "a5"])]


async def test_a_closed_outbox_ends_an_idle_batching_writer(autojump_clock: trio.abc.Clock) -> None:
    outbox, socket = make_outbox(), Socket()
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write_batches, outbox, socket.send, FlushPacer(0.05))
            await trio.testing.wait_all_tasks_blocked()
            outbox.request_close(1001, "server shutting down")
    assert socket.frames == []


async def test_a_send_error_ends_the_writer() -> None:
    class Gone(Exception):
        pass

    async def broken_send(frame: str) -> None:
        raise Gone(frame)

    outbox = make_outbox()
    outbox.offer("AAPL", "a0")
    with pytest.raises(Gone, match="a0"):
        await write_single_frames(outbox, broken_send, FlushPacer(0), Conflated())


class WriterSteps(trio.abc.Instrument):
    """How many times the writer's task ran."""

    def __init__(self) -> None:
        self.task: trio.lowlevel.Task | None = None
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1


async def test_a_batching_client_with_sparse_updates_wakes_three_times_per_frame(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Ticks a second apart with a 50 ms interval (the reconnect storm's 2 ticks/s, a quiet symbol): the update's
    # arrival, its turn, the send's own checkpoint. No wake-up at the end of an interval that brought nothing.
    pacer = FlushPacer(0.05)
    outbox, socket, counter = make_outbox(), Socket(), WriterSteps()

    async def write() -> None:
        counter.task = trio.lowlevel.current_task()

        async def send(frame: str) -> None:
            await trio.lowlevel.checkpoint()  # as a socket's send does
            await socket.send(frame)

        await write_batches(outbox, send, pacer)

    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        nursery.start_soon(write)
        outbox.offer("AAPL", '"a0"')  # the first frame, from a new client's idle start
        await trio.sleep(1)
        trio.lowlevel.add_instrument(counter)
        try:
            for index in range(1, 11):
                outbox.offer("AAPL", f'"a{index}"')
                await trio.sleep(1)
        finally:
            trio.lowlevel.remove_instrument(counter)
        nursery.cancel_scope.cancel()
    assert [orjson.loads(frame) for frame in socket.texts()] == [[f"a{index}"] for index in range(11)]
    assert counter.steps == 3 * 10
