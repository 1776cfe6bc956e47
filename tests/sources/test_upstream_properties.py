"""Property tests of the upstream decoders: any frame is a message or that source's typed error, and any
price they let through is usable and reaches clients (WebSocket tick, REST snapshot) as strict JSON."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from quart_trio import QuartTrio

from tests.support.strategies import frames, json_values, objects_with
from trio_ticker.app import StrictJSONProvider
from trio_ticker.model import PriceUpdate, is_usable_price, is_usable_volume, tick_from_update
from trio_ticker.protocol.frames import encode_tick, snapshot_fields
from trio_ticker.sources import binance, finnhub

decimal_texts = (
    st.decimals(min_value="0.00000001", max_value="100000", places=8).map(str)
    | st.decimals(allow_nan=True, allow_infinity=True).map(str)
    | st.text(max_size=20)
)
binance_payload_keys = {
    "e": st.sampled_from(["trade", "aggTrade", "24hrMiniTicker", "24hrTicker", "serverShutdown", "other"]),
    "s": st.text(max_size=12),
    "p": decimal_texts,
    "c": decimal_texts,
    "o": decimal_texts,
    "T": st.integers(min_value=0, max_value=2**63),
    "E": st.integers(min_value=0, max_value=2**63),
}
objects_with_payload = st.fixed_dictionaries({}, optional=binance_payload_keys)
binance_frames = (
    st.fixed_dictionaries(binance_payload_keys).map(orjson.dumps)  # every field, each plausible
    | objects_with(binance_payload_keys)
    | objects_with({"data": json_values | objects_with_payload}, required={"stream": st.just("btcusdt@trade")})
    | objects_with({"result": json_values, "id": json_values, "error": json_values})
)
finnhub_trades = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "s": st.text(max_size=12) | json_values,
            "p": st.floats() | json_values,
            "t": st.integers(min_value=-(2**63), max_value=2**63 - 1) | json_values,
            "v": st.floats() | json_values,
        },
    )
    | json_values,
    max_size=5,
)
finnhub_frames = objects_with(
    {"data": finnhub_trades, "msg": json_values},
    required={"type": st.sampled_from(["trade", "ping", "error", "news"]) | json_values},
)
plausible_trades = st.lists(
    st.fixed_dictionaries({"s": st.text(max_size=12), "p": st.floats(), "t": st.integers(-(2**63), 2**63 - 1)}),
    max_size=5,
)
finnhub_frames |= st.fixed_dictionaries({"type": st.just("trade"), "data": plausible_trades}).map(orjson.dumps)
finnhub_quotes = st.fixed_dictionaries(
    {name: st.floats() | st.integers(min_value=-(2**63), max_value=2**63 - 1) for name in ("c", "pc", "t")}
).map(orjson.dumps) | objects_with(
    {name: st.floats() | st.integers(min_value=-(2**63), max_value=2**63 - 1) for name in ("c", "d", "dp", "pc", "t")}
    | {"error": json_values}
)


def decodes_or_raises(decode: Callable[[bytes | str], Any], error: type[Exception], frame: bytes | str) -> None:
    with contextlib.suppress(error):  # the one typed error the feed catches; anything else fails the test
        decode(frame)


@given(frames | binance_frames)
def test_binance_frames_decode_or_raise_binance_decode_error(frame: bytes | str) -> None:
    decodes_or_raises(binance.decode_message, binance.BinanceDecodeError, frame)


@pytest.mark.parametrize("decode", [finnhub.decode_message, finnhub.decode_quote])
@given(frame=frames | finnhub_frames | finnhub_quotes)
def test_finnhub_frames_decode_or_raise_finnhub_decode_error(
    decode: Callable[[bytes | str], Any], frame: bytes | str
) -> None:
    decodes_or_raises(decode, finnhub.FinnhubDecodeError, frame)


rest_json = StrictJSONProvider(QuartTrio(__name__))
price_texts = (
    st.from_regex(r"[0-9]{1,22}(\.[0-9]{1,22})?", fullmatch=True)  # Binance's spelling, any magnitude
    | st.decimals(allow_nan=True, allow_infinity=True).map(str)  # exponents, signs, NaN, Infinity
    | st.floats().map(repr)
    | st.sampled_from(["1e400", "1e-400", "1e308", "\uff11\uff12\uff13", "5_0", " 7 ", "0.00000001", "1" * 12])
    | st.text(max_size=24)
)
json_numbers = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.sampled_from([1e308, 1e-308, 5e-324, 0.0, -0.0, 1e-8, 1e12, 999_999_999_999.99])
)


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def assert_reaches_clients_as_a_usable_price(update: PriceUpdate) -> None:
    assert is_usable_price(update.price) and is_usable_price(update.reference)
    tick = tick_from_update(update, seq=1)
    for emitted in (
        strict_json(encode_tick(tick)),
        strict_json(rest_json.dumps(snapshot_fields(tick))),
    ):
        assert emitted["price"] > 0
        assert all(math.isfinite(emitted[key]) for key in ("price", "change", "change_percent"))
        assert all(emitted[key] is None or is_usable_price(emitted[key]) for key in ("open", "high", "low"))
        assert emitted["volume"] is None or is_usable_volume(emitted["volume"])


@given(last=price_texts, open_=price_texts, trade=price_texts, day=st.lists(price_texts, min_size=3, max_size=3))
def test_any_binance_price_text_reaches_clients_only_as_a_usable_price(
    last: str, open_: str, trade: str, day: list[str]
) -> None:
    book = binance.BinanceBook()
    ticker = {
        "e": "24hrMiniTicker",
        "E": 1,
        "s": "BTCUSDT",
        "c": last,
        "o": open_,
        **dict(zip("hlv", day, strict=True)),
    }
    trades = {"e": "trade", "E": 2, "s": "BTCUSDT", "t": 1, "p": trade, "q": "1", "T": 2}
    for payload in (ticker, trades):
        try:
            event = binance.decode_message(orjson.dumps({"stream": "btcusdt@x", "data": payload}))
        except binance.BinanceDecodeError:
            continue
        assert isinstance(event, binance.Trade | binance.Ticker)
        update = book.apply(event)
        if update is not None:
            assert_reaches_clients_as_a_usable_price(update)


@given(
    current=json_numbers,
    previous_close=json_numbers,
    ts=json_numbers,
    trade=json_numbers,
    day=st.lists(json_numbers, min_size=3, max_size=3),
)
def test_any_finnhub_number_reaches_clients_only_as_a_usable_price(
    current: float, previous_close: float, ts: float, trade: float, day: list[float]
) -> None:
    book = finnhub.FinnhubBook()
    with contextlib.suppress(finnhub.FinnhubDecodeError):
        fields = {"c": current, "pc": previous_close, "t": ts, **dict(zip("ohl", day, strict=True))}
        quote = finnhub.decode_quote(orjson.dumps(fields))
        if quote is not None and (update := book.on_quote("AAPL", quote)) is not None:
            assert_reaches_clients_as_a_usable_price(update)
    batch = finnhub.decode_message(orjson.dumps({"type": "trade", "data": [{"p": trade, "s": "AAPL", "t": 2**62}]}))
    assert isinstance(batch, finnhub.TradeBatch)
    for last_trade in batch.trades:
        if (update := book.on_trade(last_trade)) is not None:
            assert_reaches_clients_as_a_usable_price(update)
