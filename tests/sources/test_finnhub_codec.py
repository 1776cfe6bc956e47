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
        '{"type":"trade","data":[{"p":"1.0","s":"AAPL","t":1,"v":1}]}',
        '{"type":"trade","data":[{"p":1.0,"t":1,"v":1}]}',
        '{"type":"trade","data":[{"p":0,"s":"AAPL","t":1,"v":1}]}',
        '{"type":"trade","data":[{"p":1.0,"s":"AAPL","t":1.5,"v":1}]}',
    ],
)
def test_malformed_frames_raise_one_typed_error(frame: str) -> None:
    with pytest.raises(FinnhubDecodeError):
        decode_message(frame)


def test_quote_and_the_all_zero_no_data_answer() -> None:
    body = b'{"c":311.51,"d":-0.15,"dp":-0.0573,"h":313.31,"l":310.68,"o":311.07,"pc":311.89,"t":1582641000}'
    assert decode_quote(body) == Quote(311.51, 311.89, 1582641000)
    assert decode_quote(b'{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}') is None
    with pytest.raises(FinnhubDecodeError):
        decode_quote(b'{"error":"Invalid API key."}')
    with pytest.raises(FinnhubDecodeError):
        decode_quote(b'{"c":"311","pc":1,"t":1}')


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
    assert decimals_of(1e-9) == 6


def test_subscribe_is_one_symbol() -> None:
    assert orjson.loads(encode_subscribe("AAPL")) == {"type": "subscribe", "symbol": "AAPL"}
