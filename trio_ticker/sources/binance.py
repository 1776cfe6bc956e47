"""Binance spot market streams, sans I/O: combined-stream frames in, typed events out.

`decode_message` parses one frame (trade, aggTrade, ticker, miniTicker, control replies, nested
errors, serverShutdown) or raises `BinanceDecodeError`; a price is a plain ASCII decimal string
within the model's price range, and so is a volume within the model's volume range. `BinanceBook`
turns events into exact `PriceUpdate`s carrying the latest 24 h statistics;
`plan_subscriptions` batches live SUBSCRIBE/UNSUBSCRIBE requests.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from ..model import MAX_PRICE, MAX_VOLUME, MIN_PRICE, DayStats, Mode, PriceUpdate, is_usable_price, is_usable_volume
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
    """A 24 h (mini)ticker: `last` is the latest price, `open` the price 24 h ago, `high`, `low` and
    `volume` (base asset, `v`) those of the rolling 24 h window (None when the event lacks one)."""

    symbol: str
    last: Decimal
    open: Decimal
    ts: int  # event time, epoch ms
    high: Decimal | None = None
    low: Decimal | None = None
    volume: Decimal | None = None

    def day_stats(self) -> DayStats:
        """The window's statistics as numbers; exact decimals convert to the float that prints the same."""
        return DayStats(float(self.open), _number(self.high), _number(self.low), _number(self.volume))


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


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
        return Ticker(
            _symbol(payload),
            _price(payload, "c"),
            _price(payload, "o"),
            _int(payload, "E"),
            high=_optional(_price, payload, "h"),
            low=_optional(_price, payload, "l"),
            volume=_optional(_volume, payload, "v"),
        )
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


def _decimal(payload: dict[str, Any], key: str, what: str, kind: RejectKind = RejectKind.MALFORMED) -> Decimal:
    """A number as Binance writes it, a plain decimal string (range checks are the caller's)."""
    text = payload.get(key)
    if not isinstance(text, str) or not DECIMAL_TEXT.fullmatch(text):
        raise BinanceDecodeError(f"{what} {key!r} is not a plain decimal string", kind)
    return Decimal(text)


def _price(payload: dict[str, Any], key: str) -> Decimal:
    value = _decimal(payload, key, "price", RejectKind.INVALID_PRICE)
    if not is_usable_price(float(value)):
        raise BinanceDecodeError(
            f"price {key!r} is outside [{MIN_PRICE:g}, {MAX_PRICE:g})", RejectKind.PRICE_OUT_OF_RANGE
        )
    return value


def _quantity(payload: dict[str, Any]) -> Decimal:
    """The trade's quantity `q` (candle volume), written like a price; zero is allowed."""
    return _decimal(payload, "q", "quantity")


def _optional(read: Callable[[dict[str, Any], str], Decimal], payload: dict[str, Any], key: str) -> Decimal | None:
    """An optional field: absent or null is unknown; present, it must be what `read` accepts."""
    return None if payload.get(key) is None else read(payload, key)


def _volume(payload: dict[str, Any], key: str) -> Decimal:
    """A 24 h volume, written like a price; zero is allowed (a pair nobody traded), absurd sizes are not."""
    value = _decimal(payload, key, "volume", RejectKind.INVALID_PRICE)
    if not is_usable_volume(float(value)):
        raise BinanceDecodeError(f"volume {key!r} is not below {MAX_VOLUME:g}", RejectKind.PRICE_OUT_OF_RANGE)
    return value


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
    """Latest 24 h open and statistics per symbol; turns trades and tickers into exact `PriceUpdate`s.

    A trade is published once the symbol's open is known, with the latest ticker's statistics (its
    price inside their high and low: the next ticker will say so). A ticker is published only as the
    first price after a (re)connect, so the snapshot is refreshed without doubling the trades.
    A symbol's precision is the most decimals any of its prices has shown (Binance pads to 8 and a
    price may end in 0), so it settles on the tick size and does not flicker from tick to tick.
    """

    opens: dict[str, Decimal] = field(default_factory=dict)
    day_stats: dict[str, DayStats] = field(default_factory=dict)
    refreshed: set[str] = field(default_factory=set)
    decimals: dict[str, int] = field(default_factory=dict)

    def start_connection(self) -> None:
        self.refreshed.clear()

    def apply(self, event: Trade | Ticker) -> PriceUpdate | None:
        if isinstance(event, Ticker):
            symbol = event.symbol
            self.opens[symbol] = event.open
            day = self.day_stats[symbol] = event.day_stats()
            places = self._precision(symbol, event.last, event.open, event.high, event.low)
            if symbol in self.refreshed:
                return None
            self.refreshed.add(symbol)
            return _update(symbol, event.last, event.open, event.ts, places, day_stats=day)
        reference = self.opens.get(event.symbol)
        if reference is None:
            return None
        self.refreshed.add(event.symbol)
        price = float(event.price)
        day = self.day_stats[event.symbol] = self.day_stats[event.symbol].widened(price)
        places = self._precision(event.symbol, event.price)
        return PriceUpdate(
            event.symbol, price, float(reference), event.ts, Mode.LIVE, places, SOURCE_NAME, event.quantity, day
        )

    def _precision(self, symbol: str, *prices: Decimal | None) -> int:
        places = max(self.decimals.get(symbol, 0), decimals_of(*(price for price in prices if price is not None)))
        self.decimals[symbol] = places
        return places


def _update(
    symbol: str, price: Decimal, reference: Decimal, ts: int, decimals: int, day_stats: DayStats | None = None
) -> PriceUpdate:
    return PriceUpdate(
        symbol=symbol,
        price=float(price),
        reference=float(reference),
        ts=ts,
        mode=Mode.LIVE,
        decimals=decimals,
        source=SOURCE_NAME,
        day_stats=day_stats,
    )
