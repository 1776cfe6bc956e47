"""Finnhub, sans I/O: WebSocket trade batches and REST quotes in, typed values out.

`decode_message` keeps the last trade per symbol of a batch (volume summed) and sets aside each
trade that is unusable; `decode_quote` reads `/api/v1/quote` and returns None for the all-zero
"no data" answer. Prices are JSON numbers (not bool) within the model's price range. `FinnhubBook`
joins trades with the previous close so `change` is right before and after the first trade, and
with the day's statistics (`FinnhubDays`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from ..model import MAX_PRICE, MIN_PRICE, DayStats, Mode, PriceUpdate, is_usable_price
from .finnhub_day import FinnhubDays
from .rejects import Rejection, RejectKind, UpstreamDecodeError

SOURCE_NAME = "finnhub"
MIN_DECIMALS = 2
MAX_DECIMALS = 8  # enough for MIN_PRICE: no usable price rounds to 0
MAX_QUOTE_TS = 10**11  # epoch seconds (year 5138): a quote time past this is not a time


class FinnhubDecodeError(UpstreamDecodeError):
    """A frame or quote body that is not what Finnhub documents."""


@dataclass(frozen=True, slots=True)
class LastTrade:
    symbol: str
    price: float
    ts: int  # trade time, epoch ms
    volume: float  # summed over the batch; 0 for price-only updates


@dataclass(frozen=True, slots=True)
class TradeBatch:
    trades: tuple[LastTrade, ...]  # one per symbol, in order of first appearance
    rejected: tuple[Rejection, ...] = ()  # the batch's trades that were not usable


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    message: str


@dataclass(frozen=True, slots=True)
class OtherMessage:
    kind: str


FinnhubMessage = TradeBatch | Ping | ErrorMessage | OtherMessage


@dataclass(frozen=True, slots=True)
class Quote:
    current: float
    previous_close: float
    ts: int  # epoch seconds, as Finnhub sends it
    open: float | None = None  # the day's open, high and low; None where Finnhub sent 0 or nothing
    high: float | None = None
    low: float | None = None


def encode_subscribe(symbol: str) -> str:
    return orjson.dumps({"type": "subscribe", "symbol": symbol}).decode()


def encode_unsubscribe(symbol: str) -> str:
    return orjson.dumps({"type": "unsubscribe", "symbol": symbol}).decode()


def decode_message(frame: str | bytes) -> FinnhubMessage:
    message = _object(frame)
    kind = message.get("type")
    if kind == "trade":
        return _trade_batch(message.get("data"))
    if kind == "ping":
        return Ping()
    if kind == "error":
        return ErrorMessage(str(message.get("msg", "")))
    if isinstance(kind, str):
        return OtherMessage(kind)
    raise FinnhubDecodeError("no message type")


def _object(frame: str | bytes) -> dict[str, Any]:
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise FinnhubDecodeError("not JSON") from None
    if not isinstance(message, dict):
        raise FinnhubDecodeError("not a JSON object")
    return message


def _trade_batch(data: Any) -> TradeBatch:
    if not isinstance(data, list):
        raise FinnhubDecodeError("trade 'data' is not a list")
    latest: dict[str, LastTrade] = {}
    rejected: list[Rejection] = []
    for item in data:
        try:
            trade = _trade(item)
        except FinnhubDecodeError as error:  # one bad trade costs only itself, not the batch
            rejected.append(Rejection(error.kind, str(error)))
            continue
        previous = latest.get(trade.symbol)
        newest = trade if previous is None or trade.ts >= previous.ts else previous
        volume = trade.volume + (previous.volume if previous else 0.0)
        latest[trade.symbol] = LastTrade(trade.symbol, newest.price, newest.ts, volume)
    return TradeBatch(tuple(latest.values()), tuple(rejected))


def _trade(item: Any) -> LastTrade:
    if not isinstance(item, dict):
        raise FinnhubDecodeError("a trade is not an object")
    symbol, ts = item.get("s"), item.get("t")
    if not isinstance(symbol, str) or not symbol:
        raise FinnhubDecodeError("a trade has no symbol 's'")
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise FinnhubDecodeError("a trade time 't' is not an integer")
    price = _price(item.get("p"), "trade price 'p'")
    volume = _number(item.get("v"), "volume 'v'") if item.get("v") is not None else 0.0
    return LastTrade(symbol, price, ts, volume)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FinnhubDecodeError(f"{name} is not a number")
    return float(value)


def _price(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FinnhubDecodeError(f"{name} is not a JSON number", RejectKind.INVALID_PRICE)
    price = float(value)
    if not is_usable_price(price):
        raise FinnhubDecodeError(f"{name} is outside [{MIN_PRICE:g}, {MAX_PRICE:g})", RejectKind.PRICE_OUT_OF_RANGE)
    return price


def decode_quote(body: str | bytes) -> Quote | None:
    """A quote, or None when Finnhub has no data for the symbol (its all-zero answer)."""
    message = _object(body)
    if "error" in message:
        raise FinnhubDecodeError(f"quote error: {str(message['error'])[:100]}")
    if not message.get("c"):  # 0, null or absent
        return None
    current = _price(message["c"], "quote price 'c'")
    previous_close = _price(message.get("pc"), "previous close 'pc'")
    ts = _number(message.get("t") or 0, "quote time 't'")
    if not 0 <= ts < MAX_QUOTE_TS:
        raise FinnhubDecodeError("quote time 't' is not an epoch time in seconds")
    day = (_optional_price(message.get(key), f"day's {name} {key!r}") for key, name in DAY_FIELDS)
    return Quote(current, previous_close, int(ts), *day)


DAY_FIELDS = (("o", "open"), ("h", "high"), ("l", "low"))


def _optional_price(value: Any, name: str) -> float | None:
    """A price Finnhub may leave out: 0, null or absent is unknown; anything else must be a usable price."""
    return None if value is None or (value == 0 and not isinstance(value, bool)) else _price(value, name)


def decimals_of(*prices: float) -> int:
    """Decimal places of the prices as Finnhub wrote them (shortest repr), within 2..6."""
    places = MIN_DECIMALS
    for price in prices:
        text = repr(price)
        if "e" in text or "E" in text:
            return MAX_DECIMALS
        places = max(places, len(text.partition(".")[2].rstrip("0")))
    return min(places, MAX_DECIMALS)


@dataclass(slots=True)
class FinnhubBook:
    """Previous close and latest trade per symbol, so no price is published without a reference.

    Trades that arrive before the symbol's first quote wait (latest only) and go out with it;
    a quote is published only when it is newer than the last trade already sent.
    """

    previous_close: dict[str, float] = field(default_factory=dict)
    last_ts: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, LastTrade] = field(default_factory=dict)
    days: FinnhubDays = field(default_factory=FinnhubDays)

    def start_connection(self, now_ms: int) -> None:
        self.days.start_connection(now_ms)

    def on_trade(self, trade: LastTrade) -> PriceUpdate | None:
        """Count the trade into its day, and publish it once the symbol has a previous close."""
        self.days.on_trade(trade.symbol, trade.ts, trade.price, trade.volume)
        return self._publish_trade(trade)

    def _publish_trade(self, trade: LastTrade) -> PriceUpdate | None:
        reference = self.previous_close.get(trade.symbol)
        if reference is None:
            self.waiting[trade.symbol] = trade
            return None
        if trade.ts < self.last_ts.get(trade.symbol, 0):
            return None
        self.last_ts[trade.symbol] = trade.ts
        # `v: 0` is a venue's price update, not a trade: it moves the candle but adds no trade.
        volume = Decimal(repr(trade.volume)) if trade.volume > 0 else None
        return _update(trade.symbol, trade.price, reference, trade.ts, volume, self.days.stats(trade.symbol))

    def on_quote(self, symbol: str, quote: Quote) -> PriceUpdate | None:
        self.previous_close[symbol] = quote.previous_close
        quote_ms = quote.ts * 1000
        day_stats = self.note_day(symbol, quote)
        waiting = self.waiting.pop(symbol, None)
        if waiting is not None and waiting.ts >= quote_ms:
            return self._publish_trade(waiting)
        if quote_ms <= self.last_ts.get(symbol, -1):
            return None
        self.last_ts[symbol] = quote_ms
        return _update(symbol, quote.current, quote.previous_close, quote_ms, day_stats=day_stats)

    def note_day(self, symbol: str, quote: Quote) -> DayStats:
        """The quote's open, high and low become its day's (the next trades carry them)."""
        return self.days.on_quote(symbol, quote.ts * 1000, quote.open, quote.high, quote.low)

    def has_newer(self, symbol: str, quote: Quote) -> bool:
        """Whether the quote knows of a trade after the last one published (seconds resolution)."""
        return quote.ts > self.last_ts.get(symbol, 0) // 1000


def _update(
    symbol: str,
    price: float,
    reference: float,
    ts: int,
    volume: Decimal | None = None,
    day_stats: DayStats | None = None,
) -> PriceUpdate:
    return PriceUpdate(
        symbol=symbol,
        price=price,
        reference=reference,
        ts=ts,
        mode=Mode.LIVE,
        decimals=decimals_of(price, reference),
        source=SOURCE_NAME,
        volume=volume,
        day_stats=day_stats,
    )
