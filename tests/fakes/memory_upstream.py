"""An in-memory upstream: each `open_socket` call runs the next scripted server against a memory socket.

Only for autojump-clock tests: nothing here touches the network.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio


class MemoryConnectionClosed(Exception):
    """The scripted server closed (or dropped) the connection."""


class MemoryServerSide:
    """What a script sees: frames the client sent, and a way to push frames or drop the link."""

    def __init__(self) -> None:
        self._to_client, self.client_receive = trio.open_memory_channel[str | bytes](64)
        self.client_send, self._from_client = trio.open_memory_channel[str | bytes](64)
        self.received: list[tuple[float, str | bytes]] = []

    async def send(self, frame: str | bytes) -> None:
        await self._to_client.send(frame)

    def send_all_nowait(self, frames: list[str | bytes]) -> None:
        """Queue a burst for the client with no checkpoint in between, as one network read would."""
        for frame in frames:
            self._to_client.send_nowait(frame)

    async def receive(self) -> str | bytes:
        frame = await self._from_client.receive()
        self.received.append((trio.current_time(), frame))
        return frame

    def drop(self) -> None:
        self._to_client.close()


class MemorySocket:
    def __init__(self, server: MemoryServerSide) -> None:
        self._server = server

    async def get_message(self) -> str | bytes:
        try:
            return await self._server.client_receive.receive()
        except trio.EndOfChannel:
            raise MemoryConnectionClosed("closed by server") from None

    def get_message_nowait(self) -> str | bytes:
        try:
            return self._server.client_receive.receive_nowait()
        except trio.EndOfChannel:
            raise MemoryConnectionClosed("closed by server") from None

    async def send_message(self, message: str | bytes) -> None:
        await self._server.client_send.send(message)


Script = Callable[[MemoryServerSide], Awaitable[None]]


class MemoryUpstream:
    """Runs `scripts[i]` for the i-th connection (the last one repeats); records when each opened."""

    def __init__(self, *scripts: Script, refuse: Callable[[int], Exception | None] | None = None) -> None:
        self._scripts = list(scripts)
        self._refuse = refuse
        self.opened_at: list[float] = []
        self.urls: list[str] = []
        self.servers: list[MemoryServerSide] = []

    @asynccontextmanager
    async def open_socket(self, url: str) -> AsyncIterator[MemorySocket]:
        index = len(self.opened_at)
        self.opened_at.append(trio.current_time())
        self.urls.append(url)
        if self._refuse is not None and (error := self._refuse(index)) is not None:
            raise error
        server = MemoryServerSide()
        self.servers.append(server)
        script = self._scripts[min(index, len(self._scripts) - 1)]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(script, server)
            try:
                yield MemorySocket(server)
            finally:
                nursery.cancel_scope.cancel()
