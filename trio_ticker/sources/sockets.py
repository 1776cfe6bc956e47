"""The one thing a live source needs from a WebSocket client, so tests can swap in memory sockets.

`websocket_opener` gives the real trio-websocket client (it answers server pings itself); tests
pass any `OpenSocket` whose sockets have `get_message` / `get_message_nowait` / `send_message`.
`get_messages` takes everything already received in one wake-up, which keeps a source's rate up under load.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import trio
import trio_websocket

log = logging.getLogger(__name__)


class FeedSocket(Protocol):
    async def get_message(self) -> str | bytes: ...

    def get_message_nowait(self) -> str | bytes:
        """A message already received, without a checkpoint; `trio.WouldBlock` when there is none."""
        ...

    async def send_message(self, message: str | bytes) -> None: ...


OpenSocket = Callable[[str], AbstractAsyncContextManager[FeedSocket]]

# Room for what arrives during one slow scheduler pass (trio-websocket's default queue holds 1 message).
MESSAGE_QUEUE_SIZE = 256
RECEIVE_BUFFER_SIZE = 64 * 1024  # bytes per read: a busy connection's backlog in one or a few reads


async def get_messages(socket: FeedSocket) -> list[str | bytes]:
    """Wait for one message, then take every message already received: one scheduler pass for all.

    Under load a pass takes as long as every runnable client writer, so one awaited message per pass
    caps a source far below its upstream's rate.
    """
    messages = [await socket.get_message()]
    while True:
        try:
            messages.append(socket.get_message_nowait())
        except trio.WouldBlock:
            return messages


class _HandOffWithoutCheckpoint:
    """Stands in for trio-websocket's `_send_channel`: a checkpoint only when the queue is full."""

    def __init__(self, channel: trio.MemorySendChannel[str | bytes]) -> None:
        self._channel = channel

    async def send(self, message: str | bytes) -> None:
        try:
            self._channel.send_nowait(message)
        except trio.WouldBlock:
            await self._channel.send(message)

    async def aclose(self) -> None:
        await self._channel.aclose()


class WebSocketFeedSocket:
    """A trio-websocket client connection as a `FeedSocket` that keeps up under load.

    trio-websocket (0.12) has no public non-blocking receive, and its reader task hands each
    message to `get_message` with an awaited `send` on a private memory channel: a checkpoint per
    message at both ends, so under load one message per scheduler pass. This class is the one place
    that touches those internals (`tests/sources/test_feed_sockets.py` pins it against a real connection):
    the reader's hand-off skips the checkpoint while the queue has room, and `get_message_nowait`
    takes from the queue with `receive_nowait`. Should a later trio-websocket lack them, it logs a
    warning and works one message per wake-up, as plain `get_message` does.
    """

    def __init__(self, connection: trio_websocket.WebSocketConnection) -> None:
        self.connection = connection
        self._queue: trio.MemoryReceiveChannel[str | bytes] | None = None
        hand_off = getattr(connection, "_send_channel", None)
        queue = getattr(connection, "_recv_channel", None)
        if isinstance(hand_off, trio.MemorySendChannel) and isinstance(queue, trio.MemoryReceiveChannel):
            connection._send_channel = _HandOffWithoutCheckpoint(hand_off)  # type: ignore[assignment]
            self._queue = queue
        else:
            log.warning("event=websocket_internals_changed effect=one_message_per_wakeup")

    async def get_message(self) -> str | bytes:
        message: str | bytes = await self.connection.get_message()
        return message

    def get_message_nowait(self) -> str | bytes:
        """Raises `trio.WouldBlock` when nothing is queued and, like `get_message`, `ConnectionClosed`
        once the connection is closed and drained."""
        if self._queue is None:
            raise trio.WouldBlock
        try:
            return self._queue.receive_nowait()
        except (trio.ClosedResourceError, trio.EndOfChannel):
            raise trio_websocket.ConnectionClosed(self.connection.closed) from None

    async def send_message(self, message: str | bytes) -> None:
        await self.connection.send_message(message)


def websocket_opener(*, connect_timeout: float, disconnect_timeout: float = 2.0) -> OpenSocket:
    @asynccontextmanager
    async def open_socket(url: str) -> AsyncIterator[FeedSocket]:
        async with trio_websocket.open_websocket_url(
            url,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            message_queue_size=MESSAGE_QUEUE_SIZE,
            receive_buffer_size=RECEIVE_BUFFER_SIZE,
        ) as connection:
            yield WebSocketFeedSocket(connection)

    return open_socket
