"""`/ws` served at the ASGI level, in front of the Quart app.

Quart's websocket layer costs about 30 % per frame on the hot path, so the client endpoint speaks
ASGI directly; every other scope goes on to Quart unchanged.
The handshake checks (Origin, dialect, token, connection limit) run here, before a session exists. The
lifespan scope passes through here too: it carries the connection registry to the guard (`hypercorn_guard.py`).
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope, WebsocketScope

from ..delivery.hub import Hub
from ..delivery.pacing import FlushPacer
from ..model import Listing
from ..protocol.dialects import Dialect, Negotiated, negotiate
from ..protocol.errors import CloseCode
from ..protocol.frames import encode_welcome
from ..settings import Settings
from .access import AccessPolicy, WebSocketHandshake
from .connections import ConnectionRegistry
from .hypercorn_guard import CONNECTIONS_STATE_KEY
from .limits import InboundGuard, LimitCounters, SessionLimits, welcome_limits
from .session import ClientSession
from .transport import AsgiWebSocket

WS_PATH = "/ws"
SERVER_VERSION = importlib.metadata.version("trio_ticker")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})

log = logging.getLogger(__name__)


class WebSocketEndpoint:
    def __init__(
        self,
        app: Any,
        hub: Hub,
        pacer: FlushPacer,
        settings: Settings,
        access: AccessPolicy,
        counters: LimitCounters,
        connections: ConnectionRegistry,
        search: Callable[[str, int], Sequence[Listing]] | None = None,
    ) -> None:
        """`search`: the catalogue's, for the full protocol's `search` command."""
        self._app = app
        self._search = search
        self._hub, self._pacer = hub, pacer  # delivery: what every session is built with
        self._settings = settings
        self._access = access
        self._connections = connections
        self._limits = SessionLimits.from_settings(settings)
        self._welcome_limits = welcome_limits(self._limits, settings)
        self.counters = counters
        self._open_connections = 0

    @property
    def open_connections(self) -> int:
        """WebSocket connections still open, including evicted ones whose socket is not yet closed."""
        return self._open_connections

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "lifespan" and "state" in scope:
            # ASGI lifespan state: Hypercorn copies it into every connection, where the guard counts sockets.
            scope["state"][CONNECTIONS_STATE_KEY] = self._connections
        if scope["type"] != "websocket" or scope["path"] != WS_PATH or self._access.on_admin_bind(scope):
            await self._app(scope, receive, send)  # the admin bind serves no WebSocket: Quart answers 404
            return
        handshake = WebSocketHandshake(scope)
        if not self._access.origin_allowed(handshake.origins):
            await self._refuse_handshake(scope, send, 403, "origin_not_allowed", origin=", ".join(handshake.origins))
            return
        negotiated = negotiate(handshake.subprotocols, batch=handshake.query_value("batch", "0").lower() in TRUE_WORDS)
        if negotiated is None:  # no silent fallback to a dialect the client did not ask for
            await self._accept_and_close(
                scope, send, None, CloseCode.PROTOCOL_ERROR, "unsupported subprotocol", "unsupported_subprotocol"
            )
            return
        settings = self._settings
        if not self._access.token_valid(handshake.token):
            await self._accept_and_close(
                scope, send, negotiated.subprotocol, CloseCode.UNAUTHORIZED, "unauthorized", "unauthorized"
            )
            return
        # The registry counts every socket (this one too); sessions are counted as well, for a server without it.
        if self._connections.full or self._open_connections >= settings.max_connections:
            await self._accept_and_close(
                scope, send, negotiated.subprotocol, CloseCode.TRY_AGAIN_LATER, "try again later", "connection_limit"
            )
            return
        self._open_connections += 1  # before the first await, so racing handshakes see it
        try:
            await self._serve(scope, receive, send, negotiated)
        finally:
            self._open_connections -= 1

    async def _serve(
        self,
        scope: WebsocketScope,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        negotiated: Negotiated,
    ) -> None:
        # `websocket.connect` is read (and skipped) by the transport: Quart's test client never sends it.
        await send({"type": "websocket.accept", "subprotocol": negotiated.subprotocol, "headers": []})
        settings = self._settings
        prototype = negotiated.dialect is Dialect.PROTOTYPE
        session = ClientSession(
            AsgiWebSocket(receive, send),
            self._hub,
            self._pacer,
            close_timeout=settings.close_timeout,
            dialect=negotiated.dialect,
            batch=negotiated.batch,
            # The crypto broadcaster's clients never subscribe: they get the default symbol until they do.
            default_symbols=(settings.default_symbol,) if prototype else (),
            default_symbols_delay=settings.prototype_default_delay,
            buffer=settings.batch_client_buffer if negotiated.batch else settings.client_buffer,
            peer=_peer(scope),
            guard=InboundGuard(self._limits, self.counters, trio.current_time()),
            search=self._search,
            search_limits=(settings.search_default_limit, settings.search_max_limit),
            # The prototypes' clients expect price objects only: nothing new reaches them.
            welcome=None if prototype else encode_welcome(self._hub.epoch, SERVER_VERSION, self._welcome_limits),
        )
        await session.run()

    async def _refuse_handshake(
        self, scope: WebsocketScope, send: ASGISendCallable, status: int, reason: str, **fields: str | None
    ) -> None:
        """An HTTP error instead of the upgrade (a close before accept is Hypercorn's plain 403)."""
        self.counters.count_refusal(reason)
        log.warning(
            "event=handshake_refused peer=%s reason=%s status=%d%s",
            _peer(scope),
            reason,
            status,
            "".join(f" {name}={value!r}" for name, value in fields.items()),
        )
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008, "reason": reason})
            return
        body = orjson.dumps({"type": "error", "code": reason, "message": reason.replace("_", " ")})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})

    async def _accept_and_close(
        self,
        scope: WebsocketScope,
        send: ASGISendCallable,
        subprotocol: str | None,
        code: CloseCode,
        reason: str,
        label: str,
    ) -> None:
        """Upgrade, then close at once: unlike an HTTP status, a close code reaches browser code (when the
        handshake selected a subprotocol the browser offered, or it offered none)."""
        self.counters.count_refusal(label)
        log.warning("event=handshake_refused peer=%s reason=%s code=%d", _peer(scope), label, code)
        await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": []})
        await send({"type": "websocket.close", "code": int(code), "reason": reason})


def _peer(scope: Scope) -> str:
    client: Any = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"
