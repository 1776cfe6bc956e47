"""The prototypes' dialect, sans I/O: price objects and error objects out, subscribe and unsubscribe in.

Every frame a prototype-dialect client receives is one JSON object: a price object with both prototypes' keys,
or an error object with none of them, so a prototype client never draws an error as a price.
docs/protocol.md ("The prototypes' dialect") is the contract.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..model import Tick
from . import commands
from .commands import ListSymbols, Search, Subscribe, Unsubscribe
from .dialects import FULL_PROTOCOL_V1
from .errors import ErrorCode, ProtocolError, RequestId
from .frames import UNKNOWN_DAY

CHANGE_DECIMALS = 2
"""The stock streamer rounded its `change` to cents; so does this dialect, whatever the symbol's precision."""


def price_change(price: float, previous_price: float) -> float:
    """The stock streamer's `change`: the move since the symbol's previous tick, to the nearest cent."""
    # `+ 0.0` turns a rounded -0.0 into 0.0: a client's sign test must not see a move that is not there.
    return round(price - previous_price, CHANGE_DECIMALS) + 0.0


def encode_price(tick: Tick, previous_price: float) -> str:
    """One price object: the stock streamer's keys, the crypto broadcaster's, then the full protocol's extras.

    `previous_price` is the price of the symbol's tick before `tick` (the tick's own price for its first).
    """
    day = tick.day_stats or UNKNOWN_DAY
    return orjson.dumps(
        {
            "ticker": tick.symbol,
            "price": tick.price,
            "change": price_change(tick.price, previous_price),
            "mode": tick.mode.value,
            "symbol": tick.symbol,
            "last_price": tick.price,
            "change_percent": tick.change_percent,
            "timestamp_ms": tick.ts,
            "ts": tick.ts,
            "seq": tick.seq,
            "stale": tick.stale,
            "open": day.open,
            "high": day.high,
            "low": day.low,
            "volume": day.volume,
        }
    ).decode()


def encode_error(error: ProtocolError) -> str:
    """The prototypes' error shape, `{"error": message, "code": code}`, with the command's `id` if it had one."""
    message: dict[str, Any] = {"error": error.message, "code": error.code.value}
    if error.request_id is not None:
        message["id"] = error.request_id
    return orjson.dumps(message).decode()


def decode_command(frame: str | bytes, *, max_symbols: int | None = None) -> Subscribe | Unsubscribe:
    """Parse one client frame: the full protocol's subscribe and unsubscribe; anything else raises `ProtocolError`.

    `list` and `ping` have replies that are not price objects, so this dialect has neither.
    """
    try:
        command = commands.decode_command(frame, max_symbols=max_symbols)
    except ProtocolError as error:
        if error.code is ErrorCode.UNKNOWN_ACTION:
            raise _unknown_action(str(error.details["action"]), error.request_id) from None
        raise
    if isinstance(command, Subscribe | Unsubscribe) and command.candles is not None:
        raise ProtocolError(
            ErrorCode.INVALID_FIELD,
            f"candles come in the full protocol only (subprotocol {FULL_PROTOCOL_V1})",
            request_id=command.request_id,
            field="candles",
        )
    if isinstance(command, Subscribe | Unsubscribe):
        return command
    action = "list" if isinstance(command, ListSymbols) else "search" if isinstance(command, Search) else "ping"
    raise _unknown_action(action, command.request_id)


def _unknown_action(action: str, request_id: RequestId) -> ProtocolError:
    return ProtocolError(
        ErrorCode.UNKNOWN_ACTION,
        f"unknown action {action!r}; this dialect has subscribe and unsubscribe "
        f"(the full protocol, subprotocol {FULL_PROTOCOL_V1}, has list, search and ping too)",
        request_id=request_id,
        action=action,
    )
