"""Lookup and search over a `ListingIndex`: prefix matches on the symbol first, then substrings."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trio_ticker.catalogue.index import ListingIndex
from trio_ticker.model import Listing

LISTINGS = [
    Listing("BTCUSDT", "binance", "BTC/USDT", 2, "BTC", "USDT"),
    Listing("BTC", "finnhub", "GRAYSCALE BITCOIN MINI TRUST"),
    Listing("WBTCBTC", "binance", "WBTC/BTC", 4, "WBTC", "BTC"),
    Listing("ETHBTC", "binance", "ETH/BTC", 5, "ETH", "BTC"),
    Listing("BTCUSDC", "binance", "BTC/USDC", 2, "BTC", "USDC"),
    Listing("AAPL", "finnhub", "APPLE INC"),
    Listing("APLE", "finnhub", "APPLE HOSPITALITY REIT INC"),
    Listing("SNAP", "finnhub", "SNAP INC"),
]


def symbols(found: list[Listing]) -> list[str]:
    return [listing.symbol for listing in found]


def test_symbol_prefixes_come_first_shortest_first_then_substrings_in_order() -> None:
    index = ListingIndex(LISTINGS)
    assert symbols(index.search("BTC", 10)) == ["BTC", "BTCUSDC", "BTCUSDT", "ETHBTC", "WBTCBTC"]
    assert symbols(index.search("BTC", 2)) == ["BTC", "BTCUSDC"]
    assert symbols(index.search("APPLE", 10)) == ["AAPL", "APLE"]  # by name
    assert symbols(index.search("AP", 10)) == ["APLE", "AAPL", "SNAP"]  # a prefix, then symbol and name substrings
    assert symbols(index.search("WBTC", 10)) == ["WBTCBTC"]  # by base asset, once
    assert index.search("ZZZ", 10) == [] and index.search("INC\tAPPLE", 10) == []


def test_the_first_listing_of_a_symbol_wins_and_lookup_is_exact() -> None:
    index = ListingIndex([Listing("BTCUSDT", "binance", "BTC/USDT", 2), Listing("BTCUSDT", "binance", "BTCUSDT")])
    assert index.lookup("BTCUSDT") == Listing("BTCUSDT", "binance", "BTC/USDT", 2)
    assert index.lookup("btcusdt") is None and index.lookup("BTC") is None and len(index) == 1


alphabet = st.text("ABCDEU0.", min_size=1, max_size=6)


@given(st.lists(st.tuples(alphabet, alphabet), max_size=40), alphabet, st.integers(1, 30))
def test_search_finds_exactly_what_a_plain_scan_finds_in_the_promised_order(
    entries: list[tuple[str, str]], query: str, limit: int
) -> None:
    listings = [Listing(symbol, "binance", name, base=name[:2]) for symbol, name in entries]
    index = ListingIndex(listings)
    unique = {listing.symbol: listing for listing in reversed(listings)}  # the first of a symbol wins
    prefixed = sorted((s for s in unique if s.startswith(query)), key=lambda s: (len(s), s))
    contained = sorted(
        s for s, listing in unique.items() if s not in prefixed and query in f"{s}\t{listing.name}\t{listing.base}"
    )
    assert symbols(index.search(query, limit)) == (prefixed + contained)[:limit]
