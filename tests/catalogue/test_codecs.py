"""The catalogue codecs on bodies in the providers' wire formats: no sockets, no trio."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.catalogues import binance_entry, exchange_info_for, exchange_info_sample, stock_symbols_sample
from tests.support.helpers import trio_ticker_warnings
from trio_ticker.catalogue.codecs import (
    decode_exchange_info,
    decode_stock_symbols,
    display_name,
    precision_of_tick_size,
)
from trio_ticker.model import Listing
from trio_ticker.sources.rejects import RejectedMessages, UpstreamDecodeError

KINDS = ("Common Stock", "ETP", "ADR", "REIT")


def binance(body: object, max_listings: int = 1000) -> tuple[list[Listing], dict[str, int]]:
    rejected = RejectedMessages("binance_catalogue")
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return decode_exchange_info(raw, max_listings=max_listings, rejected=rejected), rejected.counts()


def finnhub(body: object, max_listings: int = 1000) -> tuple[list[Listing], dict[str, int]]:
    rejected = RejectedMessages("finnhub_catalogue")
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return decode_stock_symbols(raw, kinds=KINDS, max_listings=max_listings, rejected=rejected), rejected.counts()


def test_exchange_info_lists_trading_symbols_with_the_price_filters_precision() -> None:
    listings, rejected = binance(exchange_info_sample())
    by_symbol = {listing.symbol: listing for listing in listings}
    assert "BTCTUSD" not in by_symbol and "LUNAUSDT" not in by_symbol  # BREAK and HALT do not stream
    assert by_symbol["DOGEUSDT"] == Listing("DOGEUSDT", "binance", "DOGE/USDT", 5, "DOGE", "USDT")
    assert {symbol: listing.precision for symbol, listing in by_symbol.items()} == {
        "ETHBTC": 5, "BNBBTC": 6, "BTCUSDT": 2, "ETHUSDT": 2, "DOGEUSDT": 5, "SHIBUSDT": 8, "BCHUSDT": 1,
        "XRPUSDT": 4, "SOLUSDT": 2, "BTTCUSDT": 8,
    }  # fmt: skip
    assert rejected == {}


@pytest.mark.parametrize(
    ("tick_size", "precision"),
    [("0.00001000", 5), ("1.00000000", 0), ("10.00000000", 0), ("0.01", 2), ("0.00000001", 8), ("0.00000000", None)],
)
def test_precision_is_the_tick_sizes_decimals(tick_size: str, precision: int | None) -> None:
    assert precision_of_tick_size(tick_size) == precision


@pytest.mark.parametrize("tick_size", ["0.000000001", "-0.01", "NaN", "Infinity", "1e-3x", "", 0.01, None, "9" * 40])
def test_a_tick_size_that_is_no_tick_is_refused(tick_size: object) -> None:
    with pytest.raises(ValueError, match="tickSize"):
        precision_of_tick_size(tick_size)


@given(st.integers(min_value=0, max_value=8), st.integers(min_value=1, max_value=9), st.integers(0, 8))
def test_any_binance_tick_size_gives_its_decimals(decimals: int, digit: int, padding: int) -> None:
    tick = Decimal(digit).scaleb(-decimals)
    text = f"{tick:.{decimals + padding}f}"  # Binance pads to 8 places: "0.00001000"
    assert precision_of_tick_size(text) == decimals


def test_bad_entries_are_left_out_and_counted_once_per_kind() -> None:
    info = exchange_info_sample()
    bad_tick = binance_entry("BADUSDT", "BAD", "USDT", tick_size="0.0000000001")
    info["symbols"] += [
        "not an object",
        {"status": "TRADING"},  # no symbol
        binance_entry("bad symbol", "BAD", "USDT"),
        binance_entry("ÄUSDT", "Ä", "USDT"),
        binance_entry("NOBASEUSDT", "", "USDT"),
        binance_entry("NOQUOTE", "NOQUOTE", 7),  # type: ignore[arg-type]
        bad_tick,
        binance_entry("BTCUSDT", "BTC", "USDT", tick_size="1.00000000"),  # a second BTCUSDT: the first wins
        {**binance_entry("NOFILTERS", "NO", "FILTERS"), "filters": "none"},
    ]
    with trio_ticker_warnings() as warnings:
        listings, rejected = binance(info)
    assert len(listings) == 10 and {listing.symbol for listing in listings} >= {"BTCUSDT", "DOGEUSDT"}
    assert next(listing for listing in listings if listing.symbol == "BTCUSDT").precision == 2
    assert rejected == {"malformed": 4, "invalid_symbol": 3, "invalid_price": 1}
    assert len([r for r in warnings if "upstream_rejected" in r.getMessage()]) == 3  # one line per kind


def test_an_absurd_count_is_cut_at_the_cap_and_counted() -> None:
    info = exchange_info_for([(f"C{number}", "USDT") for number in range(5000)])
    listings, rejected = binance(info, max_listings=100)
    assert len(listings) == 100 and rejected == {"too_many": 1}


@pytest.mark.parametrize(
    "body", [b"<html>502 Bad Gateway</html>", b"", b"[]", b'{"symbols": {"BTCUSDT": 1}}', b'{"code":-1003}', b"null"]
)
def test_a_body_that_is_no_exchange_info_raises_the_typed_error(body: bytes) -> None:
    with pytest.raises(UpstreamDecodeError):
        binance(body)


def test_the_stock_symbol_list_keeps_the_configured_types_with_their_names() -> None:
    listings, rejected = finnhub(stock_symbols_sample())
    assert [listing.symbol for listing in listings] == [
        "AAPL",
        "MSFT",
        "BRK.B",
        "SPY",
        "TSM",
        "O",
        "GOOGL",
        "AMZN",
        "DOGEUSD",
    ]  # fmt: skip  (the warrant and the preferred share are not kept)
    assert listings[0] == Listing("AAPL", "finnhub", "APPLE INC")
    assert listings[2].name == "BERKSHIRE HATHAWAY INC-CL B" and listings[2].precision is None
    assert rejected == {}


def test_bad_stock_entries_are_counted_and_the_cap_holds() -> None:
    rows = stock_symbols_sample()
    rows += [
        7,
        {"symbol": "WITH SPACE", "description": "X", "type": "Common Stock"},
        {"symbol": "NODESC", "description": None, "type": "Common Stock"},
        {"symbol": "CTRL", "description": "EVIL\x00\x1b[31m NAME\u202e", "type": "Common Stock"},
    ]
    listings, rejected = finnhub(rows)
    assert rejected == {"malformed": 2, "invalid_symbol": 1}
    assert listings[-1] == Listing("CTRL", "finnhub", "EVIL [31m NAME")
    capped, rejected = finnhub(rows, max_listings=3)
    assert len(capped) == 3 and rejected["too_many"] == 1


@pytest.mark.parametrize("body", [b"{}", b'{"error":"Invalid API key."}', b"not json", b'"US"'])
def test_a_body_that_is_no_stock_list_raises_the_typed_error(body: bytes) -> None:
    with pytest.raises(UpstreamDecodeError):
        finnhub(body)


def test_display_names_are_bounded() -> None:
    assert display_name("  APPLE \n INC  ") == "APPLE INC"
    assert len(display_name("A" * 10_000)) == 100
