"""Finnhub codec: trade batches, ping, errors and quotes (including the all-zero answer)."""

from __future__ import annotations

import orjson
import pytest

from trio_ticker.model import tick_from_update
from trio_ticker.sources.finnhub import (
    ErrorMessage,
    FinnhubBook,
    FinnhubDecodeError,
    LastTrade,
    OtherMessage,
    Ping,
    Quote,
    TradeBatch,
    decimals_of,
    decode_message,
    decode_quote,
    encode_subscribe,
)
from trio_ticker.sources.rejects import RejectKind


def test_batch_keeps_the_last_trade_per_symbol_and_sums_volume() -> None:
    frame = orjson.dumps(
        {
            "type": "trade",
            "data": [
                {"p": 189.5, "s": "AAPL", "t": 1000, "v": 10, "c": ["1", "12"]},
                {"p": 7296.89, "s": "BINANCE:BTCUSDT", "t": 1001, "v": 0.011467},
                {"p": 189.55, "s": "AAPL", "t": 1002, "v": 5},
                {"p": 189.4, "s": "AAPL", "t": 999, "v": 1},  # late, out of order
                {"p": 418.3, "s": "MSFT", "t": 1003, "v": 0},  # price update without volume
            ],
        }
    )
    assert decode_message(frame) == TradeBatch(
        (
            LastTrade("AAPL", 189.55, 1002, 16.0),
            LastTrade("BINANCE:BTCUSDT", 7296.89, 1001, 0.011467),
            LastTrade("MSFT", 418.3, 1003, 0.0),
        )
    )


def test_ping_error_and_other_messages() -> None:
    assert decode_message('{"type":"ping"}') == Ping()
    assert decode_message('{"type":"error","msg":"Subscribing to too many symbols"}') == ErrorMessage(
        "Subscribing to too many symbols"
    )
    assert decode_message('{"type":"news","data":[]}') == OtherMessage("news")


@pytest.mark.parametrize(
    "frame",
    [
        "garbage",
        "[]",
        '{"data":[]}',
        '{"type":"trade","data":{}}',
    ],
)
def test_malformed_frames_raise_one_typed_error(frame: str) -> None:
    with pytest.raises(FinnhubDecodeError) as raised:
        decode_message(frame)
    assert raised.value.kind is RejectKind.MALFORMED


@pytest.mark.parametrize(
    ("trade", "kind"),
    [
        ({"p": "1.0", "s": "MSFT", "t": 1}, RejectKind.INVALID_PRICE),  # a string, not a JSON number
        ({"p": True, "s": "MSFT", "t": 1}, RejectKind.INVALID_PRICE),
        ({"p": None, "s": "MSFT", "t": 1}, RejectKind.INVALID_PRICE),
        ({"p": 0, "s": "MSFT", "t": 1}, RejectKind.PRICE_OUT_OF_RANGE),
        ({"p": -5.5, "s": "MSFT", "t": 1}, RejectKind.PRICE_OUT_OF_RANGE),
        ({"p": 1e308, "s": "MSFT", "t": 1}, RejectKind.PRICE_OUT_OF_RANGE),
        ({"p": 1e12, "s": "MSFT", "t": 1}, RejectKind.PRICE_OUT_OF_RANGE),
        ({"p": 1e-9, "s": "MSFT", "t": 1}, RejectKind.PRICE_OUT_OF_RANGE),
        ({"p": 1.0, "t": 1}, RejectKind.MALFORMED),
        ({"p": 1.0, "s": "MSFT", "t": 1.5}, RejectKind.MALFORMED),
        ({"p": 1.0, "s": "MSFT", "t": 1, "v": "x"}, RejectKind.MALFORMED),
        ("not a trade", RejectKind.MALFORMED),
    ],
)
def test_an_unusable_trade_is_set_aside_and_the_rest_of_its_batch_kept(trade: object, kind: RejectKind) -> None:
    good = {"p": 189.5, "s": "AAPL", "t": 1000, "v": 10}
    batch = decode_message(orjson.dumps({"type": "trade", "data": [good, trade]}))
    assert isinstance(batch, TradeBatch)
    assert batch.trades == (LastTrade("AAPL", 189.5, 1000, 10.0),)
    assert [rejection.kind for rejection in batch.rejected] == [kind]


def test_the_price_range_edges() -> None:
    batch = decode_message(orjson.dumps({"type": "trade", "data": [{"p": 1e-8, "s": "A", "t": 1}]}))
    assert isinstance(batch, TradeBatch) and batch.trades[0].price == 1e-8
    batch = decode_message(orjson.dumps({"type": "trade", "data": [{"p": 999_999_999_999.99, "s": "A", "t": 1}]}))
    assert isinstance(batch, TradeBatch) and batch.trades[0].price == 999_999_999_999.99


def test_quote_and_the_all_zero_no_data_answer() -> None:
    body = b'{"c":311.51,"d":-0.15,"dp":-0.0573,"h":313.31,"l":310.68,"o":311.07,"pc":311.89,"t":1582641000}'
    assert decode_quote(body) == Quote(311.51, 311.89, 1582641000, open=311.07, high=313.31, low=310.68)
    assert decode_quote(b'{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}') is None
    with pytest.raises(FinnhubDecodeError):
        decode_quote(b'{"error":"Invalid API key."}')
    with pytest.raises(FinnhubDecodeError):
        decode_quote(b'{"c":"311","pc":1,"t":1}')


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"c": "311.5", "pc": 311.0, "t": 1}, RejectKind.INVALID_PRICE),
        ({"c": True, "pc": 311.0, "t": 1}, RejectKind.INVALID_PRICE),
        ({"c": 311.5, "t": 1}, RejectKind.INVALID_PRICE),  # no previous close
        ({"c": 311.5, "pc": 0, "t": 1}, RejectKind.PRICE_OUT_OF_RANGE),
        ({"c": 1e308, "pc": 311.0, "t": 1}, RejectKind.PRICE_OUT_OF_RANGE),
        ({"c": -1, "pc": 311.0, "t": 1}, RejectKind.PRICE_OUT_OF_RANGE),
        ({"c": 311.5, "pc": 311.0, "t": 1e300}, RejectKind.MALFORMED),  # would overflow a tick's ms time
        ({"c": 311.5, "pc": 311.0, "t": -1}, RejectKind.MALFORMED),
        ({"c": 311.5, "pc": 311.0, "t": "1"}, RejectKind.MALFORMED),
        ({"c": 311.5, "pc": 311.0, "t": 1, "h": 1e15}, RejectKind.PRICE_OUT_OF_RANGE),  # the day's range too
        ({"c": 311.5, "pc": 311.0, "t": 1, "l": -2}, RejectKind.PRICE_OUT_OF_RANGE),
        ({"c": 311.5, "pc": 311.0, "t": 1, "o": "311"}, RejectKind.INVALID_PRICE),
        ({"c": 311.5, "pc": 311.0, "t": 1, "o": False}, RejectKind.INVALID_PRICE),
    ],
)
def test_a_quote_with_an_unusable_number_is_refused_by_kind(body: dict[str, object], kind: RejectKind) -> None:
    with pytest.raises(FinnhubDecodeError) as raised:
        decode_quote(orjson.dumps(body))
    assert raised.value.kind is kind


def test_a_quote_without_the_days_range_leaves_it_unknown() -> None:
    assert decode_quote(b'{"c":311.51,"h":0,"l":null,"pc":311.89,"t":1582641000}') == Quote(311.51, 311.89, 1582641000)


def test_book_waits_for_the_previous_close_then_publishes_the_newest() -> None:
    book = FinnhubBook()
    assert book.on_trade(LastTrade("AAPL", 190.0, 1_582_641_005_000, 1)) is None  # no reference yet
    update = book.on_quote("AAPL", Quote(189.0, 188.0, 1_582_641_000))
    assert update is not None and (update.price, update.reference, update.ts) == (190.0, 188.0, 1_582_641_005_000)
    assert book.on_quote("AAPL", Quote(189.0, 188.0, 1_582_641_000)) is None  # older than what we sent
    assert not book.has_newer("AAPL", Quote(189.0, 188.0, 1_582_641_005))
    assert book.has_newer("AAPL", Quote(189.0, 188.0, 1_582_641_006))
    tick = tick_from_update(update, seq=1)
    assert (tick.change, tick.change_percent) == (2.0, 1.0638)


def test_quote_gives_a_price_and_change_before_the_first_trade() -> None:
    update = FinnhubBook().on_quote("MSFT", Quote(311.51, 311.89, 1_582_641_000))
    assert update is not None
    assert tick_from_update(update, seq=1).change == -0.38
    assert update.ts == 1_582_641_000_000


def test_decimals_follow_the_written_price() -> None:
    assert decimals_of(311.5) == 2
    assert decimals_of(0.12345, 1.0) == 5
    assert decimals_of(1.5e-8) == 8  # enough places that no usable price rounds to 0


def test_subscribe_is_one_symbol() -> None:
    assert orjson.loads(encode_subscribe("AAPL")) == {"type": "subscribe", "symbol": "AAPL"}
