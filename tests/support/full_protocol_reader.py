"""A full-protocol WebSocket read one message at a time, whether the client batches (arrays) or not."""

from __future__ import annotations

from collections import deque
from typing import Any

import orjson
import trio
from trio_websocket import WebSocketConnection

WAIT = 10.0


class MessageReader:
    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self._queued: deque[dict[str, Any]] = deque()

    async def next(self) -> dict[str, Any]:
        with trio.fail_after(WAIT):
            while not self._queued:
                frame = orjson.loads(await self.ws.get_message())
                self._queued.extend(frame if isinstance(frame, list) else [frame])
        return self._queued.popleft()

    async def welcome(self) -> dict[str, Any]:
        message = await self.next()
        assert message["type"] == "welcome", message
        return message

    async def tick(self) -> dict[str, Any]:
        while (message := await self.next())["type"] != "tick":
            pass
        return message

    async def reply(self) -> dict[str, Any]:
        """The next message that is neither a tick nor a status."""
        while (message := await self.next())["type"] in ("tick", "status"):
            pass
        return message

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_message(orjson.dumps(message).decode())
