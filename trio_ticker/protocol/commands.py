"""The full protocol's commands, client to server, sans I/O: one text or bytes frame in, one `Command` out.

`decode_command` validates every field and raises `ProtocolError` for anything else (never another exception);
`normalize_symbol` and `normalize_query` are the spelling checks REST shares. docs/protocol.md is the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ..history.candles import Interval, InvalidInterval, parse_interval
from ..settings import SYMBOL_PATTERN
from .errors import ErrorCode, ProtocolError, RequestId

MAX_REQUEST_ID_LENGTH = 64
MAX_EPOCH_LENGTH = 64
MAX_SEQ = 2**53 - 1
"""Seqs are JSON integers a browser reads exactly."""


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
