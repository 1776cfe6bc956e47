"""The full protocol's errors, sans I/O: what its command decoder raises and both dialects send back.

Owns the error codes, `ProtocolError` and the error frame it becomes, the refusals the hub and sessions build
by name, the close codes, and the request `id` a reply echoes. docs/protocol.md lists every code.
"""

from __future__ import annotations

import enum
from typing import Any

import orjson


class ErrorCode(enum.StrEnum):
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_ACTION = "unknown_action"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    INVALID_SYMBOL = "invalid_symbol"
    UNKNOWN_SYMBOL = "unknown_symbol"
    TOO_MANY_SYMBOLS = "too_many_symbols"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    RATE_LIMITED = "rate_limited"
    INVALID_INTERVAL = "invalid_interval"
    CANDLES_UNAVAILABLE = "candles_unavailable"
    INVALID_QUERY = "invalid_query"
    INVALID_SINCE = "invalid_since"
    SYMBOL_LIMIT = "symbol_limit"
    UPSTREAM_REJECTED = "upstream_rejected"


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002  # the client offered only subprotocols this server does not speak
    POLICY_VIOLATION = 1008  # sustained rate-limit abuse
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013  # connection limit reached
    UNAUTHORIZED = 4001
    SLOW_CONSUMER = 4008


RequestId = str | int | None


class ProtocolError(Exception):
    """A client frame the server cannot act on; `to_frame()` is the error message to send back."""

    def __init__(self, code: ErrorCode, message: str, *, request_id: RequestId = None, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details = details

    def to_frame(self) -> str:
        return encode_error(self.code, self.message, request_id=self.request_id, **self.details)


def unknown_symbols_error(symbols: list[str], request_id: RequestId) -> ProtocolError:
    listed = ", ".join(symbols)
    return ProtocolError(
        ErrorCode.UNKNOWN_SYMBOL,
        f"unknown symbol {listed}" if len(symbols) == 1 else f"unknown symbols {listed}",
        request_id=request_id,
        symbol=symbols[0],
        symbols=symbols,
    )


def candles_unavailable_error(request_id: RequestId) -> ProtocolError:
    return ProtocolError(
        ErrorCode.CANDLES_UNAVAILABLE, "this server keeps no candles (TICKER_HISTORY=off)", request_id=request_id
    )


def symbol_limit_error(symbols: list[str], limit: int, request_id: RequestId) -> ProtocolError:
    return ProtocolError(
        ErrorCode.SYMBOL_LIMIT,
        f"the server streams at most {limit} symbols; {', '.join(symbols)} would exceed that",
        request_id=request_id,
        limit=limit,
        symbols=symbols,
    )


def upstream_rejected_error(symbol: str, reason: str) -> ProtocolError:
    return ProtocolError(ErrorCode.UPSTREAM_REJECTED, f"the upstream refused {symbol}: {reason}"[:300], symbol=symbol)


def encode_error(code: ErrorCode, message: str, *, request_id: RequestId = None, **details: Any) -> str:
    fields = {"type": "error", "code": code.value, "message": message, **details}
    return orjson.dumps(with_request_id(fields, request_id)).decode()


def with_request_id(message: dict[str, Any], request_id: RequestId) -> dict[str, Any]:
    """A reply carries the `id` of the command it answers, when that command had one."""
    if request_id is not None:
        message["id"] = request_id
    return message
