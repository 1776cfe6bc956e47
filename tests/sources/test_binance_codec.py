"""Binance codec: recorded-shape payloads in, typed events and exact price updates out."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from tests.fakes.binance_server import NOT_DECIMAL_TEXT, OUT_OF_RANGE
from trio_ticker.model import DayStats, Mode, tick_from_update
from trio_ticker.protocol.frames import encode_tick
from trio_ticker.sources.binance import (
    BinanceBook,
    BinanceDecodeError,
    ControlReply,
    ErrorReply,
    OtherEvent,
    ServerShutdown,
    StreamRequest,
    Ticker,
    Trade,
    decimals_of,
    decode_message,
    plan_subscriptions,
    stream_names,
)
from trio_ticker.sources.rejects import RejectKind

TRADE = {
    "e": "trade", "E": 1672515782136, "s": "BNBBTC", "t": 12345, "p": "0.001", "q": "100",
    "T": 1672515782130, "m": True, "M": True,
}  # fmt: skip
AGG_TRADE = {
    "e": "aggTrade", "E": 1672515782136, "s": "BTCUSDT", "a": 12345, "p": "96512.34000000", "q": "0.1",
    "f": 100, "l": 105, "T": 1672515782131, "m": True, "M": True,
}  # fmt: skip
MINI_TICKER = {
    "e": "24hrMiniTicker", "E": 1672515782200, "s": "BTCUSDT", "c": "96512.34000000", "o": "96000.10000000",
    "h": "97000.00000000", "l": "95000.00000000", "v": "1000", "q": "96000000",
}  # fmt: skip
TICKER = {
    "e": "24hrTicker", "E": 1672515782300, "s": "BNBBTC", "p": "0.0015", "P": "250.00", "w": "0.0018",
    "x": "0.0009", "c": "0.0025", "Q": "10", "b": "0.0024", "B": "10", "a": "0.0026", "A": "100",
    "o": "0.0010", "h": "0.0025", "l": "0.0010", "v": "10000", "q": "18", "O": 0, "C": 86400000,
    "F": 0, "L": 18150, "n": 18151,
}  # fmt: skip


def combined(stream: str, data: dict[str, object]) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


def test_trade_inside_the_combined_wrapper() -> None:
    event = decode_message(combined("bnbbtc@trade", TRADE))
    assert event == Trade("BNBBTC", Decimal("0.001"), 1672515782130, Decimal("100"))


def test_agg_trade_and_raw_unwrapped_payload() -> None:
    assert decode_message(orjson.dumps(AGG_TRADE)) == Trade(
        "BTCUSDT", Decimal("96512.34"), 1672515782131, Decimal("0.1")
    )


def test_mini_ticker_and_full_ticker() -> None:
    assert decode_message(combined("btcusdt@miniTicker", MINI_TICKER)) == Ticker(
        "BTCUSDT",
        Decimal("96512.34"),
        Decimal("96000.1"),
        1672515782200,
        Decimal("97000"),
        Decimal("95000"),
        Decimal(1000),
    )
    assert decode_message(combined("bnbbtc@ticker", TICKER)) == Ticker(
        "BNBBTC",
        Decimal("0.0025"),
        Decimal("0.0010"),
        1672515782300,
        Decimal("0.0025"),
        Decimal("0.0010"),
        Decimal(10000),
    )


def test_a_ticker_without_high_low_or_volume_leaves_them_unknown() -> None:
    bare = {key: value for key, value in MINI_TICKER.items() if key not in ("h", "l", "v")}
    ticker = decode_message(combined("btcusdt@miniTicker", {**bare, "h": None}))
    assert isinstance(ticker, Ticker)
    assert ticker.day_stats() == DayStats(open=96000.1, high=None, low=None, volume=None)


@pytest.mark.parametrize(
    ("key", "text", "kind"),
    [(key, text, RejectKind.INVALID_PRICE) for key in ("h", "l", "v") for text in NOT_DECIMAL_TEXT]
    + [(key, text, RejectKind.PRICE_OUT_OF_RANGE) for key in ("h", "l") for text in OUT_OF_RANGE]
    + [("v", "99999999999999999999.5", RejectKind.PRICE_OUT_OF_RANGE), ("v", 12.5, RejectKind.INVALID_PRICE)],
)
def test_absurd_24h_statistics_refuse_the_ticker(key: str, text: object, kind: RejectKind) -> None:
    with pytest.raises(BinanceDecodeError) as raised:
        decode_message(combined("btcusdt@miniTicker", {**MINI_TICKER, key: text}))
    assert raised.value.kind is kind


def test_a_volume_may_be_zero() -> None:
    ticker = decode_message(combined("btcusdt@miniTicker", {**MINI_TICKER, "v": "0.00000000"}))
    assert isinstance(ticker, Ticker) and ticker.day_stats().volume == 0.0


def test_control_replies_errors_and_server_shutdown() -> None:
    assert decode_message('{"result":null,"id":1}') == ControlReply(1, None)
    assert decode_message('{"result":["btcusdt@trade"],"id":"list"}') == ControlReply("list", ["btcusdt@trade"])
    assert decode_message('{"error":{"code":2,"msg":"Invalid request: unknown variant"},"id":19}') == ErrorReply(
        19, 2, "Invalid request: unknown variant"
    )
    assert decode_message('{"error":{"code":3,"msg":"Invalid JSON"},"id":null}') == ErrorReply(None, 3, "Invalid JSON")
    shutdown = {"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1700000000000}}
    assert decode_message(orjson.dumps(shutdown)) == ServerShutdown(1700000000000)
    assert decode_message('{"e":"kline","E":1,"s":"BTCUSDT"}') == OtherEvent("kline")


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\xff garbage",
        "not json",
        "[1, 2]",
        '{"stream":"btcusdt@trade","data":"x"}',
        '{"hello":1}',
        orjson.dumps({**TRADE, "p": 0.001}),  # a float, not a string
        orjson.dumps({**TRADE, "p": "abc"}),
        orjson.dumps({**TRADE, "p": "-1"}),
        orjson.dumps({**TRADE, "p": "NaN"}),
        orjson.dumps({k: v for k, v in TRADE.items() if k != "s"}),
        orjson.dumps({**TRADE, "T": "1"}),
        '{"result":null,"id":[1]}',
    ],
)
def test_garbage_raises_one_typed_error(frame: str | bytes) -> None:
    with pytest.raises(BinanceDecodeError):
        decode_message(frame)


@pytest.mark.parametrize(
    ("text", "kind"),
    [(text, RejectKind.INVALID_PRICE) for text in NOT_DECIMAL_TEXT]
    + [(text, RejectKind.PRICE_OUT_OF_RANGE) for text in OUT_OF_RANGE],
)
@pytest.mark.parametrize(("payload", "key"), [(TRADE, "p"), (MINI_TICKER, "c"), (MINI_TICKER, "o")])
def test_a_price_is_a_plain_ascii_decimal_within_range(
    payload: dict[str, object], key: str, text: str, kind: RejectKind
) -> None:
    with pytest.raises(BinanceDecodeError) as raised:
        decode_message(combined("btcusdt@x", {**payload, key: text}))
    assert raised.value.kind is kind


def test_the_price_range_edges_are_accepted() -> None:
    smallest = decode_message(combined("bnbbtc@trade", {**TRADE, "p": "0.00000001"}))
    largest = decode_message(combined("bnbbtc@trade", {**TRADE, "p": "999999999999.99"}))
    assert isinstance(smallest, Trade) and smallest.price == Decimal("0.00000001")
    assert isinstance(largest, Trade) and largest.price == Decimal("999999999999.99")


def test_a_symbol_is_ascii_before_it_is_upper_cased() -> None:
    with pytest.raises(BinanceDecodeError) as raised:
        decode_message(combined("btcusdt@trade", {**TRADE, "s": "btcu\u017fdt"}))  # upper-cases to BTCUSDT
    assert raised.value.kind is RejectKind.MALFORMED


def test_decimals_ignore_padding_zeros() -> None:
    assert decimals_of(Decimal("96512.34000000"), Decimal("96000.10000000")) == 2
    assert decimals_of(Decimal("0.00000123")) == 8
    assert decimals_of(Decimal("100"), Decimal("1E+2")) == 0


def test_book_publishes_exact_prices_once_the_open_is_known() -> None:
    book = BinanceBook()
    assert book.apply(Trade("BTCUSDT", Decimal("96512.34"), 1)) is None  # no 24 h open yet
    first = book.apply(Ticker("BTCUSDT", Decimal("96512.34"), Decimal("96000.10"), 2))
    assert first is not None and (first.price, first.reference, first.ts) == (96512.34, 96000.1, 2)
    assert first.mode is Mode.LIVE and first.source == "binance"
    assert book.apply(Ticker("BTCUSDT", Decimal("96512.35"), Decimal("96000.10"), 3)) is None  # trades carry it
    update = book.apply(Trade("BTCUSDT", Decimal("0.3"), 4))
    assert update is not None
    tick = tick_from_update(update, seq=2)
    # 0.3 - 96000.1 in floats drifts; the symbol's precision gives the exact difference.
    assert (tick.price, tick.change, update.decimals) == (0.3, -95999.8, 2)  # 96512.34 showed 2 places


def test_a_symbols_precision_is_the_most_decimals_its_prices_showed() -> None:
    book = BinanceBook()
    first = book.apply(Ticker("BTCUSDT", Decimal("96500.00000000"), Decimal("96000.00000000"), 1))
    assert first is not None and first.decimals == 0
    assert book.apply(Ticker("BTCUSDT", Decimal("96500"), Decimal("96000"), 2, low=Decimal("95000.5"))) is None
    precisions = [
        update.decimals
        for price in ("96512.34", "96512.30000000", "96513.00000000")
        if (update := book.apply(Trade("BTCUSDT", Decimal(price), 3))) is not None
    ]
    assert precisions == [2, 2, 2]  # 96512.3 and 96513 do not flicker it down


def test_every_update_carries_the_latest_tickers_24h_statistics() -> None:
    book = BinanceBook()
    ticker = decode_message(combined("btcusdt@miniTicker", MINI_TICKER))
    assert isinstance(ticker, Ticker)
    first = book.apply(ticker)
    stats = DayStats(open=96000.1, high=97000.0, low=95000.0, volume=1000.0)
    assert first is not None and first.day_stats == stats
    inside = book.apply(Trade("BTCUSDT", Decimal("96600.5"), 5, Decimal("0.5")))
    assert inside is not None and inside.day_stats is first.day_stats  # shared, not rebuilt per trade
    frame = orjson.loads(encode_tick(tick_from_update(inside, seq=2)))
    assert {key: frame[key] for key in ("open", "high", "low", "volume", "precision")} == {
        "open": 96000.1,
        "high": 97000.0,
        "low": 95000.0,
        "volume": 1000.0,
        "precision": 2,
    }
    later = decode_message(combined("btcusdt@miniTicker", {**MINI_TICKER, "h": "97100.00", "v": "1000.5"}))
    assert isinstance(later, Ticker) and book.apply(later) is None  # trades carry the price; the stats update
    update = book.apply(Trade("BTCUSDT", Decimal("96601"), 6))
    assert update is not None and update.day_stats == DayStats(96000.1, 97100.0, 95000.0, 1000.5)


def test_a_trade_outside_the_last_tickers_range_widens_it() -> None:
    book = BinanceBook()
    book.apply(Ticker("ETHUSDT", Decimal("3420"), Decimal("3400"), 1, Decimal("3450"), Decimal("3390"), Decimal(7)))
    above = book.apply(Trade("ETHUSDT", Decimal("3460.5"), 2))
    below = book.apply(Trade("ETHUSDT", Decimal("3380"), 3))
    assert above is not None and above.day_stats == DayStats(3400.0, 3460.5, 3390.0, 7.0)
    assert below is not None and below.day_stats == DayStats(3400.0, 3460.5, 3380.0, 7.0)


def test_book_refreshes_from_the_first_ticker_after_a_reconnect() -> None:
    book = BinanceBook()
    book.apply(Ticker("ETHUSDT", Decimal("3420.5"), Decimal("3400"), 1))
    book.start_connection()
    refreshed = book.apply(Ticker("ETHUSDT", Decimal("3500.25"), Decimal("3410"), 9))
    assert refreshed is not None and (refreshed.price, refreshed.reference, refreshed.decimals) == (3500.25, 3410, 2)


def test_stream_names_are_lower_case() -> None:
    assert stream_names("BTCUSDT") == ("btcusdt@trade", "btcusdt@miniTicker")


def test_plan_subscriptions_batches_and_numbers_requests() -> None:
    wanted = frozenset(f"s{i:03}@trade" for i in range(5))
    current = frozenset({"old@trade", "s000@trade"})
    requests = plan_subscriptions(current, wanted, 7, batch=2)
    assert requests == [
        StreamRequest("UNSUBSCRIBE", ("old@trade",), 7),
        StreamRequest("SUBSCRIBE", ("s001@trade", "s002@trade"), 8),
        StreamRequest("SUBSCRIBE", ("s003@trade", "s004@trade"), 9),
    ]
    assert orjson.loads(requests[1].encode()) == {
        "method": "SUBSCRIBE",
        "params": ["s001@trade", "s002@trade"],
        "id": 8,
    }
    assert plan_subscriptions(wanted, wanted, 1) == []
