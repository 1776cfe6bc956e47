"""Property tests of the upstream decoders: any frame is a message or that source's typed error."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.strategies import frames, json_values, objects_with
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
