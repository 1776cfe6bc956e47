"""Who may connect: the allowed browser Origins and the optional bearer tokens.

Tokens are compared in constant time and never logged. Browsers, which cannot set headers on a
WebSocket, send theirs as a `bearer.<token>` subprotocol or a `token` query parameter.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pydantic import SecretStr
from werkzeug.datastructures import Authorization

TOKEN_SUBPROTOCOL_PREFIX = "bearer."
TOKEN_QUERY_PARAMETER = "token"
REDACTED = "REDACTED"


class AccessPolicy:
    def __init__(self, allowed_origins: Iterable[str], tokens: Iterable[SecretStr]) -> None:
        self._origins = frozenset(origin.lower() for origin in allowed_origins)
        self._tokens = tuple(token.get_secret_value().encode() for token in tokens)

    @property
    def requires_token(self) -> bool:
        return bool(self._tokens)

    def origin_allowed(self, origin: str | None) -> bool:
        """Any Origin when no list is set; otherwise a listed one or none (non-browser clients send none)."""
        return not self._origins or origin is None or origin.lower() in self._origins

    def token_valid(self, candidate: str | None) -> bool:
        """True when tokens are off, or `candidate` equals one of them; every token is compared."""
        if not self._tokens:
            return True
        given = (candidate or "").encode()
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(given, token)
        return matched and candidate is not None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, if that is what it is."""
    parsed = Authorization.from_header(authorization)
    return (parsed.token or None) if parsed is not None and parsed.type == "bearer" else None


class WebSocketHandshake:
    """What `/ws` access control reads from an ASGI websocket scope."""

    def __init__(self, scope: Any) -> None:
        headers: dict[bytes, bytes] = {name.lower(): value for name, value in scope.get("headers", ())}
        origin = headers.get(b"origin")
        self.origin = origin.decode("latin-1") if origin is not None else None
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

    @property
    def token_in_query(self) -> bool:
        return any(name == TOKEN_QUERY_PARAMETER for name, _ in self.query)

    def redacted_query_string(self) -> bytes:
        """The query string with the token replaced, for anything that logs the request line."""
        redacted = [(name, REDACTED if name == TOKEN_QUERY_PARAMETER else value) for name, value in self.query]
        return urlencode(redacted).encode("latin-1", "replace")
