"""The guard's fixes, each against the Hypercorn objects it wraps (no server): they fail if Hypercorn changes.

hypercorn_guard.py wraps TCPServer.run and ._close, WSStream.handle, HTTPStream.handle and
TaskGroup.spawn_app of the installed Hypercorn; tests/edge/test_hostile_clients.py has the real-server side.
"""

from __future__ import annotations

import logging
import socket
from types import SimpleNamespace
from typing import Any

import h11
import pytest
import trio
from hypercorn.config import Config
from hypercorn.protocol.events import Data, EndBody, Request, Response, StreamClosed
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext

from trio_ticker.edge import hypercorn_guard
from trio_ticker.edge.connections import ConnectionRegistry
from trio_ticker.process.logs import configure_logging

UPGRADE_HEADERS = [
    (b"host", b"x"),
    (b"upgrade", b"websocket"),
    (b"connection", b"upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
]


@pytest.fixture(autouse=True)
def guard_installed() -> None:
    hypercorn_guard.install()  # as create_app does; idempotent


def test_install_is_idempotent_and_covers_every_method_it_names() -> None:
    wrapped = (TCPServer.run, TCPServer._close, WSStream.handle, TaskGroup.spawn_app)
    hypercorn_guard.install()
    assert hypercorn_guard.installed()
    assert (TCPServer.run, TCPServer._close, WSStream.handle, TaskGroup.spawn_app) == wrapped


class RecordingTaskGroup:
    """What WSStream needs of a task group: the app's queue is recorded, nothing runs."""

    def __init__(self) -> None:
        self.app_events: list[dict[str, Any]] = []

    async def spawn_app(self, app: object, config: Config, scope: object, send: object) -> Any:
        async def app_put(event: dict[str, Any]) -> None:
            self.app_events.append(event)

        return app_put

    def spawn(self, *args: object) -> None:
        raise AssertionError("no ping task before the handshake is accepted")


async def test_data_before_the_101_gets_one_400_and_the_app_accept_racing_it_is_dropped() -> None:
    sent: list[object] = []

    async def send(event: object) -> None:
        sent.append(event)

    task_group = RecordingTaskGroup()
    stream = WSStream(
        object(), Config(), WorkerContext(None), task_group, False, ("127.0.0.1", 5), ("127.0.0.1", 80), send, 1
    )
    await stream.handle(
        Request(stream_id=1, headers=UPGRADE_HEADERS, http_version="1.1", method="GET", raw_path=b"/ws", state={})
    )
    await stream.handle(Data(stream_id=1, data=b"\x81\x85 a frame pipelined behind the request"))
    await stream.app_send({"type": "websocket.accept", "subprotocol": None, "headers": []})  # the app, just late

    assert sent == [
        Response(stream_id=1, status_code=400, headers=[(b"content-length", b"0"), (b"connection", b"close")]),
        EndBody(stream_id=1),
        StreamClosed(stream_id=1),
    ]
    assert task_group.app_events == [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1006},
    ]


async def test_the_close_waits_for_the_send_lock_so_a_send_racing_it_sees_a_closed_stream() -> None:
    ours, peer = trio.socket.socketpair()
    stream = trio.SocketStream(ours)
    registry = ConnectionRegistry(10)
    server = TCPServer(
        object(), Config(), WorkerContext(None), {hypercorn_guard.CONNECTIONS_STATE_KEY: registry}, stream
    )
    assert registry.admit(stream, lambda: None)
    outcome: list[str] = []

    async def send_a_ping() -> None:  # what TCPServer.protocol_send does with RawData
        async with server.send_lock:
            try:
                await stream.send_all(b"\x89\x00")
            except trio.ClosedResourceError:
                outcome.append("closed")  # protocol_send handles this one
            except trio.BusyResourceError:
                outcome.append("busy")  # and not this one: it ended the worker process

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server._close)  # sends EOF: holds the stream's send side across a checkpoint
        nursery.start_soon(send_a_ping)
    peer.close()
    assert outcome == ["closed"]
    assert registry.statistics().open == 0  # the socket is closed: it no longer counts


async def test_a_send_in_flight_does_not_keep_the_close_from_closing() -> None:
    ours, peer = trio.socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    stream = trio.SocketStream(ours)
    server = TCPServer(object(), Config(), WorkerContext(None), {}, stream)
    unblocked: list[type[BaseException]] = []

    async def pinned_send(task_status: trio.TaskStatus[None]) -> None:
        async with server.send_lock:
            task_status.started()
            try:
                with trio.CancelScope(shield=True):
                    await stream.send_all(b"x" * 10_000_000)  # the peer never reads
            except trio.ClosedResourceError as error:
                unblocked.append(type(error))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(pinned_send)
            await server._close()
    peer.close()
    assert unblocked == [trio.ClosedResourceError]


async def test_a_finished_apps_queue_refuses_more_input_instead_of_holding_the_reader() -> None:
    async with trio.open_nursery() as nursery:
        task_group = TaskGroup()
        task_group._nursery = nursery
        done = trio.Event()

        async def app(scope: object, receive: object, send: object, *_: object) -> None:
            pass  # returns at once, reading nothing

        async def send(message: object) -> None:
            if message is None:
                done.set()

        app_put = await task_group.spawn_app(app, Config(), {"type": "websocket"}, send)
        await done.wait()
        with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
            for _ in range(Config().max_app_queue_size + 1):  # one more than the queue holds
                await app_put({"type": "websocket.receive", "text": "x"})


async def test_an_exception_out_of_a_connection_is_logged_once_without_traceback_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ours, peer = trio.socket.socketpair()
    registry = ConnectionRegistry(10)
    server = SimpleNamespace(state={hypercorn_guard.CONNECTIONS_STATE_KEY: registry}, stream=trio.SocketStream(ours))

    async def run(_: object) -> None:
        raise ExceptionGroup("connection", [h11.LocalProtocolError("Can't send data when our state is ERROR")])

    configure_logging("INFO")  # as the app sets it up: trio_ticker's loggers do not propagate
    logging.getLogger("trio_ticker").addHandler(caplog.handler)
    try:
        await hypercorn_guard._guard_connection_task(run)(server)
    finally:
        logging.getLogger("trio_ticker").removeHandler(caplog.handler)
        peer.close()
    assert [(record.levelno, record.getMessage(), record.exc_info) for record in caplog.records] == [
        (
            logging.WARNING,
            'event=connection_failed peer=unknown error="LocalProtocolError: Can\'t send data when our state is ERROR"',
            None,
        )
    ]
    assert registry.statistics().failed == 1
    assert registry.statistics().open == 0


async def test_a_connection_waits_for_its_admission_before_hypercorn_reads_it_and_a_cancelled_wait_closes_it() -> None:
    turn = trio.Event()

    async def wait_admission() -> None:  # the pacer's, in the app
        await turn.wait()

    registry = ConnectionRegistry(10, wait_admission=wait_admission)
    ran: list[str] = []

    async def run(server: Any) -> None:
        ran.append("run")

    admitted_ours, admitted_peer = trio.socket.socketpair()
    aborted_ours, aborted_peer = trio.socket.socketpair()
    cancelled_ours, cancelled_peer = trio.socket.socketpair()
    state = {hypercorn_guard.CONNECTIONS_STATE_KEY: registry}
    admitted = SimpleNamespace(state=state, stream=trio.SocketStream(admitted_ours))
    aborted = SimpleNamespace(state=state, stream=trio.SocketStream(aborted_ours))
    cancelled = SimpleNamespace(state=state, stream=trio.SocketStream(cancelled_ours))
    guarded = hypercorn_guard._guard_connection_task(run)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(guarded, aborted)
            await trio.testing.wait_all_tasks_blocked()
            assert registry.abort_all() == 1  # a shutdown's abort while it waits
            await trio.testing.wait_all_tasks_blocked()
            assert ran == []  # Hypercorn never saw it...
            assert aborted_ours.fileno() == -1  # ...and the guard closed its socket
            assert await aborted_peer.recv(1) == b""

            with trio.CancelScope() as worker_scope:  # Hypercorn's worker cancelling its connection tasks
                worker_scope.cancel()
                await guarded(cancelled)
            assert cancelled_ours.fileno() == -1  # Hypercorn never held it: the guard closed it
            assert await cancelled_peer.recv(1) == b""
            assert registry.statistics().open == 0

            nursery.start_soon(guarded, admitted)
            await trio.testing.wait_all_tasks_blocked()
            assert ran == []  # not before its turn
            assert registry.statistics().open == 1
            turn.set()
    assert ran == ["run"]
    assert registry.statistics().open == 0
    admitted_ours.close()
    for sock in (admitted_peer, aborted_peer, cancelled_peer):
        sock.close()
