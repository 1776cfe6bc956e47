"""`/ws` served at the ASGI level, in front of the Quart app.

Quart's websocket layer costs about 30 % per frame on the hot path (see docs/benchmarks.md),
so the client endpoint speaks ASGI directly; every other scope goes on to Quart unchanged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from .service import TickerService
from .session import ClientSession
from .transport import AsgiWebSocket

WS_PATH = "/ws"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


class WebSocketEndpoint:
    def __init__(self, app: Any, service: TickerService) -> None:
        self._app = app
        self._service = service

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "websocket" or scope["path"] != WS_PATH:
            await self._app(scope, receive, send)
            return
        # `websocket.connect` is read (and skipped) by the transport: Quart's test client never sends it.
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        settings = self._service.settings
        session = ClientSession(
            AsgiWebSocket(receive, send),
            self._service.hub,
            slow_client_timeout=settings.slow_client_timeout,
            close_timeout=settings.close_timeout,
            batch=query.get("batch", ["0"])[-1].lower() in TRUE_WORDS,
            peer=_peer(scope),
        )
        self._service.open_connections += 1
        try:
            await session.run()
        finally:
            self._service.open_connections -= 1


def _peer(scope: Scope) -> str:
    client: Any = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"
