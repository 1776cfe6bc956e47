"""The patched Hypercorn send: one scheduler pass per uncontended frame, the same order, cancellation and close
as Hypercorn's, installed once; and the Hypercorn code it stands in for unchanged (a release that changes it
fails the source check here: re-read it, then adapt or drop `trio_ticker/edge/hypercorn_send.py`)."""

from __future__ import annotations

import inspect
import textwrap
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing
from hypercorn.events import Closed, RawData, Updated
from hypercorn.trio.tcp_server import TCPServer

from trio_ticker.edge import hypercorn_send

HYPERCORN_PROTOCOL_SEND = """\
async def protocol_send(self, event: Event) -> None:
    if isinstance(event, RawData):
        async with self.send_lock:
            try:
                with trio.CancelScope() as cancel_scope:
                    cancel_scope.shield = True
                    await self.stream.send_all(event.data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await self.protocol.handle(Closed())
    elif isinstance(event, Closed):
        await self._close()
        await self.protocol.handle(Closed())
    elif isinstance(event, Updated):
        if event.idle:
            await self.idle_task.restart(self._task_group, self._idle_timeout)
        else:
            await self.idle_task.stop()
"""


@pytest.fixture(autouse=True)
def installed() -> None:
    hypercorn_send.install()  # as create_app does; idempotent


def test_installing_twice_patches_once_over_hypercorns_own_send() -> None:
    patched = TCPServer.protocol_send
    hypercorn_send.install()
    assert TCPServer.protocol_send is patched
    assert textwrap.dedent(inspect.getsource(inspect.unwrap(patched))) == HYPERCORN_PROTOCOL_SEND


class Protocol:
    def __init__(self) -> None:
        self.events: list[object] = []

    async def handle(self, event: object) -> None:
        self.events.append(event)


def tcp_server(stream: Any) -> Any:
    """A TCPServer over `stream`, with just what its send path reads."""
    server = TCPServer.__new__(TCPServer)
    server.send_lock = trio.Lock()
    server.stream = stream
    server.protocol = Protocol()  # type: ignore[assignment]
    return server


class TaskSteps(trio.abc.Instrument):
    def __init__(self) -> None:
        self.steps: dict[trio.lowlevel.Task, int] = {}

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps[task] = self.steps.get(task, 0) + 1


def socket_stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    """A connected pair of real (UNIX) sockets: a socket's send_all checkpoints once, as a TCP socket's does."""
    left, right = trio.socket.socketpair()
    return trio.SocketStream(left), trio.SocketStream(right)


async def test_an_uncontended_frame_takes_one_scheduler_pass_and_is_sent() -> None:
    sending, receiving = socket_stream_pair()
    server = tcp_server(sending)
    counter = TaskSteps()
    tasks: list[trio.lowlevel.Task] = []

    async def send_one() -> None:
        tasks.append(trio.lowlevel.current_task())
        await server.protocol_send(RawData(data=b"frame"))

    trio.lowlevel.add_instrument(counter)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_one)
    finally:
        trio.lowlevel.remove_instrument(counter)
    # Its first step, and one more after send_all's checkpoint (Hypercorn's lock took a pass of its own: 3).
    assert counter.steps[tasks[0]] == 2
    assert await receiving.receive_some() == b"frame"
    assert not server.send_lock.locked()


async def test_sends_that_meet_at_the_lock_go_out_whole_and_in_order() -> None:
    sending, receiving = trio.testing.lockstep_stream_pair()  # each send_all waits for the reader
    server = tcp_server(sending)
    async with trio.open_nursery() as nursery:
        for number in range(5):
            nursery.start_soon(server.protocol_send, RawData(data=b"frame %d;" % number))
            await trio.testing.wait_all_tasks_blocked()
        received = b""
        while received.count(b";") < 5:
            received += await receiving.receive_some()
    assert received == b"frame 0;frame 1;frame 2;frame 3;frame 4;"


async def test_a_cancelled_sender_sends_nothing_and_leaves_the_lock_free() -> None:
    sending, receiving = socket_stream_pair()
    server = tcp_server(sending)
    with trio.CancelScope() as scope:
        scope.cancel()
        await server.protocol_send(RawData(data=b"never"))
    assert scope.cancelled_caught
    assert not server.send_lock.locked()
    with trio.move_on_after(0.05):
        assert await receiving.receive_some() == b""  # nothing arrives
        pytest.fail("a frame was sent")


async def test_a_broken_peer_tells_the_protocol_the_connection_closed() -> None:
    sending, receiving = socket_stream_pair()
    await receiving.aclose()
    server = tcp_server(sending)
    await server.protocol_send(RawData(data=b"late"))  # BrokenResourceError (EPIPE), which Hypercorn handles
    assert [type(event) for event in server.protocol.events] == [Closed]
    assert not server.send_lock.locked()


async def test_closed_and_updated_events_go_to_hypercorns_own_handling() -> None:
    calls: list[str] = []
    server = tcp_server(SimpleNamespace())

    async def close() -> None:
        calls.append("close")

    async def stop() -> None:
        calls.append("idle stop")

    server._close = close
    server.idle_task = SimpleNamespace(stop=stop)
    await server.protocol_send(Closed())
    await server.protocol_send(Updated(idle=False))
    assert calls == ["close", "idle stop"]
    assert [type(event) for event in server.protocol.events] == [Closed]
