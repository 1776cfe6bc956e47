"""The two things a client session needs from a WebSocket, so sessions run over any transport.

`AsgiWebSocket` adapts an accepted ASGI websocket (what Hypercorn gives the app); tests use
in-memory transports with the same three methods.
"""

from __future__ import annotations

from typing import Any, Protocol

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable


class ClientDisconnected(Exception):
    """The peer went away (or the connection broke); `code` is the close code it sent, if any."""

    def __init__(self, code: int | None = None) -> None:
        super().__init__(f"client disconnected (code {code})")
        self.code = code


class ClientTransport(Protocol):
    async def receive(self) -> str | bytes: ...

    async def send(self, frame: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class AsgiWebSocket:
    """An accepted ASGI websocket connection as a `ClientTransport`."""

    def __init__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        self._receive = receive
        self._send = send

    async def receive(self) -> str | bytes:
        while True:
            event: Any = await self._receive()
            if event["type"] == "websocket.receive":
                text = event.get("text")
                return text if text is not None else bytes(event.get("bytes") or b"")
            if event["type"] != "websocket.connect":
                raise ClientDisconnected(event.get("code"))

    async def send(self, frame: str) -> None:
        await self._send({"type": "websocket.send", "text": frame, "bytes": None})

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})
