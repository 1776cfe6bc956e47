"""The client WebSocket protocol, sans I/O: frames in, commands out; values in, frames out.

`decode_command` turns any text or bytes frame into a `Command` or raises `ProtocolError`
(never anything else). The `encode_*` functions build the JSON text frames the server sends.
docs/protocol.md describes every message, field and error code defined here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson

from ..history.candles import Interval, InvalidInterval, parse_interval
from ..model import DayStats, Listing, SourceStatus, Tick
from ..settings import SYMBOL_PATTERN

MAX_REQUEST_ID_LENGTH = 64
MAX_EPOCH_LENGTH = 64
MAX_SEQ = 2**53 - 1
"""Seqs are JSON integers a browser reads exactly."""


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


@dataclass(frozen=True, slots=True)
class Subscribe:
    symbols: tuple[str, ...]
    request_id: RequestId = None
    candles: Interval | None = None  # also the symbols' candles of this interval
    since: dict[str, int] | None = None  # recovery: the last seq seen per symbol (a subset of `symbols`)
    epoch: str | None = None  # recovery: the epoch those seqs belong to


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    symbols: tuple[str, ...]
    request_id: RequestId = None
    candles: Interval | None = None  # only the symbols' candles of this interval


@dataclass(frozen=True, slots=True)
class ListSymbols:
    request_id: RequestId = None


@dataclass(frozen=True, slots=True)
class Ping:
    request_id: RequestId = None


@dataclass(frozen=True, slots=True)
class Search:
    query: str  # upper-case, as `normalize_query` returns it
    limit: int | None = None  # None: the server's default; the session checks it against the maximum
    request_id: RequestId = None


Command = Subscribe | Unsubscribe | ListSymbols | Ping | Search


def decode_command(frame: str | bytes, *, max_symbols: int | None = None) -> Command:
    """Parse one client frame. Raises `ProtocolError` for anything that is not a valid command.

    `max_symbols` bounds a subscribe/unsubscribe's symbol list, checked before any symbol is read.
    """
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise ProtocolError(ErrorCode.INVALID_JSON, "frame is not valid UTF-8 JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError(ErrorCode.NOT_AN_OBJECT, f"expected a JSON object, got {_json_type(message)}")
    request_id = _request_id(message)
    action = message.get("action")
    if action is None:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "missing field 'action'", request_id=request_id, field="action")
    if not isinstance(action, str):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'action' must be a string", request_id=request_id, field="action")
    if action == "subscribe":
        symbols = _symbols(message, request_id, max_symbols)
        since, epoch = _since(message, symbols, request_id)
        return Subscribe(symbols, request_id, _candles(message, request_id), since, epoch)
    if action == "unsubscribe":
        return Unsubscribe(_symbols(message, request_id, max_symbols), request_id, _candles(message, request_id))
    if action == "list":
        return ListSymbols(request_id)
    if action == "ping":
        return Ping(request_id)
    if action == "search":
        return _search(message, request_id)
    raise ProtocolError(
        ErrorCode.UNKNOWN_ACTION,
        f"unknown action {action[:40]!r}; expected subscribe, unsubscribe, list, search or ping",
        request_id=request_id,
        action=action[:40],
    )


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _request_id(message: dict[str, Any]) -> RequestId:
    request_id = message.get("id")
    if request_id is None:
        return None
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'id' must be a string or an integer", field="id")
    if isinstance(request_id, str) and len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, f"'id' is longer than {MAX_REQUEST_ID_LENGTH} characters", field="id"
        )
    if isinstance(request_id, int) and not -(2**53) < request_id < 2**53:
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'id' is out of range", field="id")
    return request_id


def _symbols(message: dict[str, Any], request_id: RequestId, max_symbols: int | None) -> tuple[str, ...]:
    has_one, has_many = "symbol" in message, "symbols" in message
    if has_one and has_many:
        raise ProtocolError(
            ErrorCode.INVALID_FIELD,
            "give either 'symbol' or 'symbols', not both",
            request_id=request_id,
            field="symbols",
        )
    if has_one:
        raw: Any = [message["symbol"]]
        field = "symbol"
    elif has_many:
        raw = message["symbols"]
        field = "symbols"
        if not isinstance(raw, list) or not raw:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                "'symbols' must be a non-empty array of strings",
                request_id=request_id,
                field=field,
            )
    else:
        raise ProtocolError(
            ErrorCode.MISSING_FIELD,
            "missing field 'symbol' (or 'symbols')",
            request_id=request_id,
            field="symbol",
        )
    if max_symbols is not None and len(raw) > max_symbols:
        raise ProtocolError(
            ErrorCode.TOO_MANY_SYMBOLS,
            f"at most {max_symbols} symbols per message",
            request_id=request_id,
            limit=max_symbols,
        )
    symbols: dict[str, None] = {}
    for item in raw:
        if not isinstance(item, str):
            raise ProtocolError(
                ErrorCode.INVALID_FIELD, f"'{field}' must hold strings", request_id=request_id, field=field
            )
        symbols[normalize_symbol(item, request_id)] = None
    return tuple(symbols)


def _since(
    message: dict[str, Any], symbols: tuple[str, ...], request_id: RequestId
) -> tuple[dict[str, int] | None, str | None]:
    """`since` (symbol -> last seq seen) and `epoch`, both or neither; each symbol must be one subscribed.

    Only the shape is checked here: whether a position can be recovered is the hub's answer (`recovered`)."""
    raw, epoch = message.get("since"), message.get("epoch")
    if raw is None and epoch is None:
        return None, None
    if raw is None or epoch is None:
        missing = "since" if raw is None else "epoch"
        raise ProtocolError(
            ErrorCode.INVALID_SINCE, "give 'since' and 'epoch' together", request_id=request_id, field=missing
        )
    if not isinstance(epoch, str) or not 0 < len(epoch) <= MAX_EPOCH_LENGTH:
        raise ProtocolError(
            ErrorCode.INVALID_SINCE,
            f"'epoch' must be a string of 1-{MAX_EPOCH_LENGTH} characters",
            request_id=request_id,
            field="epoch",
        )
    if not isinstance(raw, dict) or not raw:
        raise ProtocolError(
            ErrorCode.INVALID_SINCE,
            "'since' must be an object of symbol -> last seq seen",
            request_id=request_id,
            field="since",
        )
    if len(raw) > len(symbols):
        raise ProtocolError(
            ErrorCode.INVALID_SINCE,
            "'since' names more symbols than the subscribe does",
            request_id=request_id,
            field="since",
        )
    since: dict[str, int] = {}
    for name, seq in raw.items():
        symbol = normalize_symbol(name, request_id)
        if symbol not in symbols:
            raise ProtocolError(
                ErrorCode.INVALID_SINCE,
                f"'since' names {symbol}, which this subscribe does not",
                request_id=request_id,
                field="since",
                symbol=symbol,
            )
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
            raise ProtocolError(
                ErrorCode.INVALID_SINCE,
                f"'since' must map each symbol to a seq, an integer from 0 to {MAX_SEQ}",
                request_id=request_id,
                field="since",
                symbol=symbol,
            )
        since[symbol] = seq
    return since, epoch


def _candles(message: dict[str, Any], request_id: RequestId) -> Interval | None:
    value = message.get("candles")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(
            ErrorCode.INVALID_INTERVAL, "'candles' must be an interval name", request_id=request_id, field="candles"
        )
    try:
        return parse_interval(value)
    except InvalidInterval as error:
        raise ProtocolError(
            ErrorCode.INVALID_INTERVAL, str(error), request_id=request_id, field="candles", interval=value[:20]
        ) from None


def _search(message: dict[str, Any], request_id: RequestId) -> Search:
    query = message.get("q")
    if query is None:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "missing field 'q'", request_id=request_id, field="q")
    if not isinstance(query, str):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'q' must be a string", request_id=request_id, field="q")
    limit = message.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, "'limit' must be a whole number >= 1", request_id=request_id, field="limit"
        )
    return Search(normalize_query(query, request_id), limit, request_id)


def normalize_query(text: str, request_id: RequestId = None) -> str:
    """A search query, checked as a symbol is (see `normalize_symbol`): 1-32 symbol characters."""
    return _spelled_as_symbol(text, ErrorCode.INVALID_QUERY, "a search query", "q", request_id)


def normalize_symbol(text: str, request_id: RequestId = None) -> str:
    """Upper-case and validate a symbol's spelling (not whether it is served)."""
    return _spelled_as_symbol(text, ErrorCode.INVALID_SYMBOL, "a symbol", "symbol", request_id)


def _spelled_as_symbol(text: str, code: ErrorCode, what: str, field: str, request_id: RequestId) -> str:
    """ASCII is checked first: Python's `strip` and `upper` map Unicode (U+017F upper-cases to `S`, NBSP strips)."""
    symbol = text.strip().upper() if text.isascii() else text
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise ProtocolError(
            code,
            f"{what} is 1-32 characters of A-Z, 0-9 and . : _ / -",
            request_id=request_id,
            **{field: text[:40]},
        )
    return symbol


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


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _with_id(message: dict[str, Any], request_id: RequestId) -> dict[str, Any]:
    if request_id is not None:
        message["id"] = request_id
    return message


UNKNOWN_DAY = DayStats()
"""A symbol whose source has no 24 h statistics yet: every one of them is null on the wire."""


def tick_fields(tick: Tick) -> dict[str, Any]:
    """The tick message: the prototypes' keys (ticker, price, change, mode) first, then precision and 24 h stats."""
    day = tick.day_stats or UNKNOWN_DAY
    return {
        "type": "tick",
        "ticker": tick.symbol,
        "price": tick.price,
        "change": tick.change,
        "change_percent": tick.change_percent,
        "mode": tick.mode.value,
        "ts": tick.ts,
        "seq": tick.seq,
        "stale": tick.stale,
        "precision": tick.precision,
        "open": day.open,
        "high": day.high,
        "low": day.low,
        "volume": day.volume,
    }


def encode_tick(tick: Tick) -> str:
    return _dumps(tick_fields(tick))


def snapshot_fields(tick: Tick) -> dict[str, Any]:
    """The REST snapshot: the tick plus the crypto broadcaster's keys."""
    fields = tick_fields(tick)
    del fields["type"]
    return {
        "symbol": tick.symbol,
        "last_price": tick.price,
        "timestamp_ms": tick.ts,
        "source": tick.source,
        **fields,
    }


def encode_subscribed(
    symbols: tuple[str, ...],
    request_id: RequestId = None,
    candles: Interval | None = None,
    *,
    epoch: str | None = None,
    recovered: dict[str, bool] | None = None,
) -> str:
    """`epoch` and `recovered` (per symbol named in `since`) answer a subscribe that asked to recover."""
    message = _with_candles({"type": "subscribed", "symbols": list(symbols)}, candles)
    if recovered is not None:
        message["epoch"] = epoch
        message["recovered"] = recovered
    return _dumps(_with_id(message, request_id))


def encode_welcome(epoch: str, version: str, limits: dict[str, int | float]) -> str:
    """The full protocol's first frame: the stream's epoch (seqs are comparable only within one), the server's
    version and the limits a client should stay within."""
    return _dumps({"type": "welcome", "epoch": epoch, "version": version, "limits": limits})


def snapshot_frame(tick_frame: str, epoch: str, *, recovered: bool | None = None) -> str:
    """The snapshot sent after `subscribed`: the tick's frame (`encode_tick`) with its epoch, and
    `recovered: false` when recovery was asked for and is not possible. Spliced, not re-encoded."""
    extra: dict[str, Any] = {"epoch": epoch}
    if recovered is not None:
        extra["recovered"] = recovered
    return tick_frame[:-1] + "," + _dumps(extra)[1:]


def encode_unsubscribed(symbols: tuple[str, ...], request_id: RequestId = None, candles: Interval | None = None) -> str:
    return _dumps(_with_id(_with_candles({"type": "unsubscribed", "symbols": list(symbols)}, candles), request_id))


def _with_candles(message: dict[str, Any], candles: Interval | None) -> dict[str, Any]:
    if candles is not None:
        message["candles"] = candles.value
    return message


def encode_symbols(symbols: tuple[str, ...], request_id: RequestId = None) -> str:
    return _dumps(_with_id({"type": "symbols", "symbols": list(symbols)}, request_id))


def listing_fields(listing: Listing) -> dict[str, Any]:
    """A catalogue entry as `GET /symbols` and the `search` reply show it (precision null when unknown)."""
    return {
        "symbol": listing.symbol,
        "name": listing.name,
        "source": listing.source,
        "precision": listing.precision,
        "base": listing.base,
        "quote": listing.quote,
    }


def encode_listings(listings: list[Listing], request_id: RequestId = None) -> str:
    return _dumps(_with_id({"type": "symbols", "symbols": [listing_fields(item) for item in listings]}, request_id))


def encode_pong(ts: int, request_id: RequestId = None) -> str:
    return _dumps(_with_id({"type": "pong", "ts": ts}, request_id))


def encode_error(code: ErrorCode, message: str, *, request_id: RequestId = None, **details: Any) -> str:
    return _dumps(_with_id({"type": "error", "code": code.value, "message": message, **details}, request_id))


def encode_source_status(status: SourceStatus) -> str:
    message: dict[str, Any] = {
        "type": "status",
        "source": status.source,
        "state": status.state.value,
        "ts": status.ts,
        "reconnects": status.reconnects,
    }
    if status.detail:
        message["detail"] = status.detail
    if status.last_message_ts is not None:
        message["last_message_ts"] = status.last_message_ts
    return _dumps(message)


def encode_symbol_status(symbol: str, *, stale: bool, ts: int) -> str:
    return _dumps({"type": "status", "ticker": symbol, "stale": stale, "ts": ts})
