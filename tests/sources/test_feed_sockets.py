"""The live sources' WebSocket client against a real localhost server: a burst that arrives in one
network read reaches the source in one wake-up, and a close after it loses none of it.

Real sockets, so no autojump clock; every wait is bounded.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket
import wsproto
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from trio_ticker.sources.sockets import FeedSocket, WebSocketFeedSocket, get_messages, websocket_opener

BURST = [f'{{"n":{n}}}' for n in range(50)]


async def serve_burst(stream: trio.SocketStream, *, close_after: bool) -> None:
    """Accept one WebSocket, wait for the client's "go", then write the whole burst with ONE send_all."""
    ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    async with stream:
        while True:
            data = await stream.receive_some()
            if not data:
                return
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Request):
                    await stream.send_all(ws.send(AcceptConnection()))
                elif isinstance(event, TextMessage) and event.data == "go":
                    burst = b"".join(ws.send(TextMessage(data=frame)) for frame in BURST)
                    if close_after:
                        burst += ws.send(CloseConnection(code=1000, reason="bye"))
                    await stream.send_all(burst)
                elif isinstance(event, CloseConnection):
                    if ws.state is wsproto.connection.ConnectionState.REMOTE_CLOSING:
                        await stream.send_all(ws.send(event.response()))
                    return


async def open_burst_server(nursery: trio.Nursery, *, close_after: bool) -> str:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, lambda stream: serve_burst(stream, close_after=close_after), listeners)
    port = listeners[0].socket.getsockname()[1]
    return f"ws://127.0.0.1:{port}/"


async def receive_burst(socket: FeedSocket) -> list[str | bytes]:
    """Park the source in `get_messages` first, so the burst has to wake it (as under load)."""
    calls: list[list[str | bytes]] = []

    async def source() -> None:
        calls.append(await get_messages(socket))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(source)
        await trio.testing.wait_all_tasks_blocked()
        await socket.send_message("go")
    return calls[0]


async def test_a_burst_read_at_once_reaches_the_source_in_one_wake_up() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            url = await open_burst_server(nursery, close_after=False)
            async with websocket_opener(connect_timeout=5)(url) as socket:
                with pytest.raises(trio.WouldBlock):
                    socket.get_message_nowait()
                first_wake_up = await receive_burst(socket)
                with pytest.raises(trio.WouldBlock):
                    socket.get_message_nowait()
            nursery.cancel_scope.cancel()
    # trio-websocket alone hands over one message per scheduler pass: 1 or 2 here.
    assert first_wake_up == BURST


async def test_messages_before_a_close_are_all_delivered_then_connection_closed() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            url = await open_burst_server(nursery, close_after=True)
            async with websocket_opener(connect_timeout=5)(url) as socket:
                received = await receive_burst(socket)
                await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    socket.get_message_nowait()
                with pytest.raises(trio_websocket.ConnectionClosed):
                    await socket.get_message()
            nursery.cancel_scope.cancel()
    assert received == BURST
    assert (closed.value.reason.code, closed.value.reason.reason) == (1000, "bye")


class UnknownConnection:
    """A connection without the internals the fast path uses (as a future trio-websocket might be)."""

    def __init__(self, messages: list[str]) -> None:
        self._messages = messages

    async def get_message(self) -> str:
        await trio.lowlevel.checkpoint()
        return self._messages.pop(0)


async def test_without_the_known_internals_it_warns_and_reads_one_message_per_wake_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connection: Any = UnknownConnection(["a", "b"])
    with caplog.at_level(logging.WARNING, logger="trio_ticker.sources.sockets"):
        socket = WebSocketFeedSocket(connection)
    assert "event=websocket_internals_changed" in caplog.text
    with pytest.raises(trio.WouldBlock):
        socket.get_message_nowait()
    assert await get_messages(socket) == ["a"]
    assert await get_messages(socket) == ["b"]
