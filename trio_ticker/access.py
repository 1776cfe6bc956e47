"""Who may connect: the allowed browser Origins, the optional bearer tokens and the optional admin bind.

Tokens are compared in constant time and never logged. Browsers, which cannot set headers on a
WebSocket, send theirs as a `bearer.<token>` subprotocol or a `token` query parameter.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from pydantic import SecretStr
from werkzeug.datastructures import Authorization

TOKEN_SUBPROTOCOL_PREFIX = "bearer."
TOKEN_QUERY_PARAMETER = "token"


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})


class AccessPolicy:
    def __init__(
        self,
        allowed_origins: Iterable[str],
        tokens: Iterable[SecretStr],
        admin_address: tuple[str, int] | None = None,
    ) -> None:
        self._origins = frozenset(origin.lower() for origin in allowed_origins)
        self._tokens = tuple(token.get_secret_value().encode() for token in tokens)
        self._admin_address = admin_address

    @property
    def has_admin_bind(self) -> bool:
        return self._admin_address is not None

    def on_admin_bind(self, scope: Any) -> bool:
        """Whether the request came in on TICKER_ADMIN_BIND: its local address (`scope["server"]`) is that one.

        A wildcard admin host (0.0.0.0, ::) matches by port: the local address is then the interface's own.
        """
        server = scope.get("server")
        if self._admin_address is None or not server or server[1] is None:  # (path, None): a UNIX socket
            return False
        host, port = self._admin_address
        return bool(server[1] == port and (host in WILDCARD_HOSTS or server[0] == host))

    @property
    def requires_token(self) -> bool:
        return bool(self._tokens)

    def origin_allowed(self, origins: Sequence[str]) -> bool:
        """`origins`: the request's Origin headers. Any one when no list is set; otherwise a listed one or none
        (non-browser clients send none). Never more than one (`several_origins`)."""
        if several_origins(origins):
            return False
        return not self._origins or not origins or origins[0].lower() in self._origins

    def token_valid(self, candidate: str | None) -> bool:
        """True when tokens are off, or `candidate` equals one of them; every token is compared."""
        if not self._tokens:
            return True
        given = (candidate or "").encode()
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(given, token)
        return matched and candidate is not None


def several_origins(origins: Sequence[str]) -> bool:
    """More than one Origin header, which is refused whatever TICKER_ALLOWED_ORIGINS says: a browser sends at
    most one (RFC 6454, section 7.3), and a proxy in front may have checked another one than the app would read."""
    return len(origins) > 1


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, if that is what it is."""
    parsed = Authorization.from_header(authorization)
    return (parsed.token or None) if parsed is not None and parsed.type == "bearer" else None


class WebSocketHandshake:
    """What `/ws` access control reads from an ASGI websocket scope."""

    def __init__(self, scope: Any) -> None:
        headers: dict[bytes, bytes] = {name.lower(): value for name, value in scope.get("headers", ())}
        self.origins = tuple(
            value.decode("latin-1") for name, value in scope.get("headers", ()) if name.lower() == b"origin"
        )
        self.query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        offered: list[str] = list(scope.get("subprotocols") or ())
        authorization = headers.get(b"authorization")
        self.token = bearer_token(authorization.decode("latin-1")) if authorization is not None else None
        for protocol in offered:
            if self.token is None and protocol.startswith(TOKEN_SUBPROTOCOL_PREFIX):
                self.token = protocol.removeprefix(TOKEN_SUBPROTOCOL_PREFIX)
        for name, value in self.query:
            if self.token is None and name == TOKEN_QUERY_PARAMETER:
                self.token = value
        self.subprotocols = tuple(offered)  # the dialect is negotiated from them (dialects.py)

    def query_value(self, name: str, default: str) -> str:
        values = [value for key, value in self.query if key == name]
        return values[-1] if values else default
