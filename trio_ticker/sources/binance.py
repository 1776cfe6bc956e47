"""Binance spot market streams, sans I/O: combined-stream frames in, typed events out.

`decode_message` parses one frame (trade, aggTrade, ticker, miniTicker, control replies, nested
errors, serverShutdown) or raises `BinanceDecodeError`; a price is a plain ASCII decimal string
within the model's price range. `BinanceBook` turns events into exact `PriceUpdate`s;
`plan_subscriptions` batches live SUBSCRIBE/UNSUBSCRIBE requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from ..model import MAX_PRICE, MIN_PRICE, Mode, PriceUpdate, is_usable_price
from .rejects import RejectKind, UpstreamDecodeError

SOURCE_NAME = "binance"
MAX_STREAMS_PER_CONNECTION = 1024
MAX_PARAMS_PER_REQUEST = 200
TRADE_STREAM = "trade"
TICKER_STREAM = "miniTicker"
DECIMAL_TEXT = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")
"""How Binance writes a price ("96512.34000000"): ASCII digits, no sign, exponent, space or underscore,
all of which `Decimal` would accept (and Unicode digits too)."""


class BinanceDecodeError(UpstreamDecodeError):
    """A frame that is not a Binance message we understand (garbage, or a malformed event)."""


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    price: Decimal
    ts: int  # trade time, epoch ms
    quantity: Decimal | None = None  # `q`, the traded quantity (candle volume)


@dataclass(frozen=True, slots=True)
class Ticker:
    """A 24 h (mini)ticker: `last` is the latest price, `open` the price 24 h ago."""

    symbol: str
    last: Decimal
    open: Decimal
    ts: int  # event time, epoch ms


@dataclass(frozen=True, slots=True)
class ControlReply:
    request_id: int | str | None
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorReply:
    request_id: int | str | None
    code: int | None
    message: str


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    ts: int


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """A well-formed event of a kind we did not subscribe to; ignored, not garbage."""

    kind: str


BinanceMessage = Trade | Ticker | ControlReply | ErrorReply | ServerShutdown | OtherEvent


def stream_names(symbol: str) -> tuple[str, str]:
    """The two streams one symbol needs: trades for the price, the mini ticker for the 24 h open."""
    lower = symbol.lower()
    return f"{lower}@{TRADE_STREAM}", f"{lower}@{TICKER_STREAM}"


def decode_message(frame: str | bytes) -> BinanceMessage:
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise BinanceDecodeError("not JSON") from None
    if not isinstance(message, dict):
        raise BinanceDecodeError("not a JSON object")
    if "error" in message:
        return _error_reply(message)
    if "result" in message and "id" in message:
        return ControlReply(_request_id(message), message["result"])
    payload = message.get("data") if "stream" in message else message
    if not isinstance(payload, dict):
        raise BinanceDecodeError("event payload is not an object")
    kind = payload.get("e")
    if kind in ("trade", "aggTrade"):
        return Trade(_symbol(payload), _price(payload, "p"), _int(payload, "T"), _quantity(payload))
    if kind in ("24hrMiniTicker", "24hrTicker"):
        return Ticker(_symbol(payload), _price(payload, "c"), _price(payload, "o"), _int(payload, "E"))
    if kind == "serverShutdown":
        return ServerShutdown(_int(payload, "E"))
    if isinstance(kind, str):
        return OtherEvent(kind)
    raise BinanceDecodeError("no event type")


def _error_reply(message: dict[str, Any]) -> ErrorReply:
    error = message["error"]
    if isinstance(error, dict):
        code = error.get("code")
        return ErrorReply(_request_id(message), code if isinstance(code, int) else None, str(error.get("msg", "")))
    return ErrorReply(_request_id(message), None, str(error))


def _request_id(message: dict[str, Any]) -> int | str | None:
    request_id = message.get("id")
    if request_id is None or isinstance(request_id, int | str):
        return request_id
    raise BinanceDecodeError("reply id is not an integer or string")


def _symbol(payload: dict[str, Any]) -> str:
    symbol = payload.get("s")
    if not isinstance(symbol, str) or not symbol or not symbol.isascii():  # ASCII before case mapping
        raise BinanceDecodeError("missing or non-ASCII symbol 's'")
    return symbol.upper()


def _price(payload: dict[str, Any], key: str) -> Decimal:
    text = payload.get(key)
    if not isinstance(text, str) or not DECIMAL_TEXT.fullmatch(text):
        raise BinanceDecodeError(f"price {key!r} is not a plain decimal string", RejectKind.INVALID_PRICE)
    value = Decimal(text)
    if not is_usable_price(float(value)):
        raise BinanceDecodeError(
            f"price {key!r} is outside [{MIN_PRICE:g}, {MAX_PRICE:g})", RejectKind.PRICE_OUT_OF_RANGE
        )
    return value


def _quantity(payload: dict[str, Any]) -> Decimal:
    """The trade's quantity `q` (candle volume), written like a price; zero is allowed."""
    text = payload.get("q")
    if not isinstance(text, str) or not DECIMAL_TEXT.fullmatch(text):
        raise BinanceDecodeError("quantity 'q' is not a plain decimal string")
    return Decimal(text)


def _int(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BinanceDecodeError(f"field {key!r} is not an integer")
    return value


def decimals_of(*values: Decimal) -> int:
    """Decimal places needed to show every value exactly (trailing zeros do not count)."""
    places = 0
    for value in values:
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int):
            places = max(places, -exponent)
    return places


def encode_request(method: str, params: list[str], request_id: int) -> str:
    return orjson.dumps({"method": method, "params": params, "id": request_id}).decode()


@dataclass(frozen=True, slots=True)
class StreamRequest:
    method: str  # SUBSCRIBE or UNSUBSCRIBE
    params: tuple[str, ...]
    request_id: int

    def encode(self) -> str:
        return encode_request(self.method, list(self.params), self.request_id)


def plan_subscriptions(
    current: frozenset[str], wanted: frozenset[str], first_id: int, *, batch: int = MAX_PARAMS_PER_REQUEST
) -> list[StreamRequest]:
    """The fewest requests that turn `current` into `wanted`, unsubscribing first, ids consecutive."""
    requests: list[StreamRequest] = []
    for method, streams in (("UNSUBSCRIBE", current - wanted), ("SUBSCRIBE", wanted - current)):
        ordered = sorted(streams)
        for start in range(0, len(ordered), batch):
            requests.append(StreamRequest(method, tuple(ordered[start : start + batch]), first_id))
            first_id += 1
    return requests


@dataclass(slots=True)
class BinanceBook:
    """Latest 24 h open per symbol; turns trades and tickers into exact `PriceUpdate`s.

    A trade is published once the symbol's open is known. A ticker is published only as the
    first price after a (re)connect, so the snapshot is refreshed without doubling the trades.
    """

    opens: dict[str, Decimal] = field(default_factory=dict)
    refreshed: set[str] = field(default_factory=set)

    def start_connection(self) -> None:
        self.refreshed.clear()

    def apply(self, event: Trade | Ticker) -> PriceUpdate | None:
        if isinstance(event, Ticker):
            self.opens[event.symbol] = event.open
            if event.symbol in self.refreshed:
                return None
            self.refreshed.add(event.symbol)
            return _update(event.symbol, event.last, event.open, event.ts)
        reference = self.opens.get(event.symbol)
        if reference is None:
            return None
        self.refreshed.add(event.symbol)
        return _update(event.symbol, event.price, reference, event.ts, event.quantity)


def _update(symbol: str, price: Decimal, reference: Decimal, ts: int, volume: Decimal | None = None) -> PriceUpdate:
    return PriceUpdate(
        symbol=symbol,
        price=float(price),
        reference=float(reference),
        ts=ts,
        mode=Mode.LIVE,
        decimals=decimals_of(price, reference),
        source=SOURCE_NAME,
        volume=volume,
    )
