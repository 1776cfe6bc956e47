"""An in-memory `ClientTransport` so sessions run under the autojump clock with no sockets."""

from __future__ import annotations

import orjson
import trio

from trio_ticker.edge.transport import ClientDisconnected


class MemoryTransport:
    """Server side of a fake WebSocket; the test plays the client through the `client_*` methods.

    `send` waits until the test reads (capacity `client_window` frames), which is how a test
    makes a client slow: it simply stops reading.
    """

    def __init__(self, client_window: int = 0) -> None:
        self._to_server_send, self._to_server = trio.open_memory_channel[str | bytes | None](16)
        self._to_client_send, self._to_client = trio.open_memory_channel[str](client_window)
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_at: float | None = None

    async def receive(self) -> str | bytes:
        frame = await self._to_server.receive()
        if frame is None:
            raise ClientDisconnected(1000)
        return frame

    async def send(self, frame: str) -> None:
        await self._to_client_send.send(frame)

    async def close(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        self.closed_at = trio.current_time()

    # -- the test's side ---------------------------------------------------------------------------

    async def client_send(self, message: dict[str, object] | str | bytes) -> None:
        frame = message if isinstance(message, str | bytes) else orjson.dumps(message).decode()
        await self._to_server_send.send(frame)

    async def client_disconnect(self) -> None:
        await self._to_server_send.send(None)

    async def client_receive(self) -> dict:  # type: ignore[type-arg]
        return orjson.loads(await self._to_client.receive())  # type: ignore[no-any-return]

    async def client_receive_raw(self) -> str:
        return await self._to_client.receive()

    def client_receive_nowait(self) -> dict | None:  # type: ignore[type-arg]
        try:
            return orjson.loads(self._to_client.receive_nowait())  # type: ignore[no-any-return]
        except trio.WouldBlock:
            return None
