"""The upstream catalogues, sans I/O: Binance's exchangeInfo and Finnhub's stock-symbol list in, `Listing`s out.

Both decoders take the response body (already bounded in bytes by the fetcher), keep at most `max_listings`
entries, and check every entry: one that is not what the upstream documents is left out and counted in the
source's `RejectedMessages` (one log line per kind), never allowed to spoil the rest. A body that is not the
documented shape at all raises `UpstreamDecodeError`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

import orjson

from ..model import Listing
from ..settings import SYMBOL_PATTERN
from ..sources.rejects import RejectedMessages, RejectKind, UpstreamDecodeError

EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
EXCHANGE_INFO_WEIGHT = 20  # Binance's request weight of the unfiltered exchangeInfo
STOCK_SYMBOL_PATH = "/stock/symbol"
ASSET_PATTERN = re.compile(r"[A-Z0-9]{1,20}")
MAX_PRECISION = 8  # Binance's finest tick (MIN_PRICE); a finer tickSize is not a market this server quotes
MAX_NAME_LENGTH = 100
SAMPLE_LENGTH = 120


def precision_of_tick_size(text: object) -> int | None:
    """Decimals of a price from a tickSize string: "0.00001000" -> 5, "1.00000000" -> 0.

    None for "0" (Binance: the price filter is disabled). Raises ValueError for anything but a decimal
    string in [10**-MAX_PRECISION, 10**6]."""
    if not isinstance(text, str) or not text.isascii() or len(text) > 32:
        raise ValueError("tickSize is not a decimal string")
    try:
        tick = Decimal(text)
    except InvalidOperation:
        raise ValueError("tickSize is not a decimal string") from None
    if not tick.is_finite() or tick < 0 or tick > 1_000_000:
        raise ValueError("tickSize is out of range")
    if tick == 0:
        return None
    exponent = tick.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite, checked above
    precision = max(0, -exponent)
    if precision > MAX_PRECISION:
        raise ValueError(f"tickSize has more than {MAX_PRECISION} decimals")
    return precision


def decode_exchange_info(body: bytes, *, max_listings: int, rejected: RejectedMessages) -> list[Listing]:
    """The symbols with status TRADING, with base and quote asset and the PRICE_FILTER's precision."""
    message = _parse(body)
    entries = message.get("symbols") if isinstance(message, dict) else None
    if not isinstance(entries, list):
        raise UpstreamDecodeError("exchangeInfo is not an object with a 'symbols' array")
    listings: dict[str, Listing] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("status") != "TRADING":
            if not isinstance(entry, dict):
                _reject(rejected, RejectKind.MALFORMED, "a symbol entry is not an object", entry)
            continue
        listing = _binance_listing(entry, rejected)
        if listing is not None and listing.symbol not in listings:
            if len(listings) >= max_listings:
                _reject(rejected, RejectKind.TOO_MANY, f"more than {max_listings} trading symbols", entry)
                break
            listings[listing.symbol] = listing
    return list(listings.values())


def _binance_listing(entry: dict[str, Any], rejected: RejectedMessages) -> Listing | None:
    symbol, base, quote = entry.get("symbol"), entry.get("baseAsset"), entry.get("quoteAsset")
    if not _is_symbol(symbol):
        _reject(rejected, RejectKind.INVALID_SYMBOL, "symbol is not spelled as a symbol", entry)
        return None
    if not _is_asset(base) or not _is_asset(quote):
        _reject(rejected, RejectKind.MALFORMED, "baseAsset/quoteAsset missing or not an asset name", entry)
        return None
    filters = entry.get("filters", [])
    if not isinstance(filters, list):
        _reject(rejected, RejectKind.MALFORMED, "filters is not an array", entry)
        return None
    price_filter = next((f for f in filters if isinstance(f, dict) and f.get("filterType") == "PRICE_FILTER"), None)
    precision = None
    if price_filter is not None:
        try:
            precision = precision_of_tick_size(price_filter.get("tickSize"))
        except ValueError as error:
            _reject(rejected, RejectKind.INVALID_PRICE, str(error), entry)
            return None
    return Listing(symbol, "binance", f"{base}/{quote}", precision, base, quote)


def decode_stock_symbols(
    body: bytes, *, kinds: Collection[str], max_listings: int, rejected: RejectedMessages
) -> list[Listing]:
    """Finnhub's `/stock/symbol` array: the entries whose `type` is one of `kinds`, `description` as the name."""
    entries = _parse(body)
    if not isinstance(entries, list):
        raise UpstreamDecodeError("the stock-symbol list is not a JSON array")
    listings: dict[str, Listing] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            _reject(rejected, RejectKind.MALFORMED, "a stock-symbol entry is not an object", entry)
            continue
        kind = entry.get("type")
        if not isinstance(kind, str) or kind not in kinds:
            continue  # warrants, units, preferred shares... are listed, but not what this server offers
        symbol, name = entry.get("symbol"), entry.get("description")
        if not _is_symbol(symbol):
            _reject(rejected, RejectKind.INVALID_SYMBOL, "symbol is not spelled as a symbol", entry)
            continue
        if not isinstance(name, str):
            _reject(rejected, RejectKind.MALFORMED, "description is not a string", entry)
            continue
        if symbol in listings:
            continue
        if len(listings) >= max_listings:
            _reject(rejected, RejectKind.TOO_MANY, f"more than {max_listings} stock symbols", entry)
            break
        listings[symbol] = Listing(symbol, "finnhub", display_name(name) or symbol)
    return list(listings.values())


def display_name(text: str) -> str:
    """A name as shown: printable characters only, spaces collapsed, at most MAX_NAME_LENGTH characters."""
    return " ".join("".join(c if c.isprintable() else " " for c in text[: MAX_NAME_LENGTH * 2]).split())[
        :MAX_NAME_LENGTH
    ]


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamDecodeError("the catalogue body is not JSON") from None


def _is_symbol(value: object) -> TypeGuard[str]:
    # The settings' spelling, matched on ASCII as upstream sends it (Binance and Finnhub use upper case).
    return isinstance(value, str) and value.isascii() and SYMBOL_PATTERN.fullmatch(value) is not None


def _is_asset(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.isascii() and ASSET_PATTERN.fullmatch(value) is not None


def _reject(rejected: RejectedMessages, kind: RejectKind, reason: str, entry: object) -> None:
    try:
        sample = orjson.dumps(entry)[:SAMPLE_LENGTH].decode(errors="replace")
    except orjson.JSONEncodeError:  # what orjson parsed it writes back, but a sample must never fail
        sample = repr(entry)[:SAMPLE_LENGTH]
    rejected.note(kind, reason, sample)
