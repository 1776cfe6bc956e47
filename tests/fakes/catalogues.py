"""Upstream catalogues in their wire formats, for the fake servers and the codec tests.

`samples/` holds an exchangeInfo body and a `/stock/symbol?exchange=US` body written field for field
after the providers' documentation (every field an answer carries, not only those the server reads).
`exchange_info_for` makes a larger exchangeInfo in the same shape, for symbols of a test's choosing.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

SAMPLES = Path(__file__).parent / "samples"


def exchange_info_sample() -> dict[str, Any]:
    return orjson.loads((SAMPLES / "exchange_info.json").read_bytes())


def stock_symbols_sample() -> list[dict[str, Any]]:
    return orjson.loads((SAMPLES / "stock_symbol_us.json").read_bytes())


def binance_entry(
    symbol: str, base: str, quote: str, tick_size: str = "0.01000000", status: str = "TRADING"
) -> dict[str, Any]:
    """One `symbols` entry, shaped as the sample's BTCUSDT."""
    entry = copy.deepcopy(next(e for e in exchange_info_sample()["symbols"] if e["symbol"] == "BTCUSDT"))
    entry.update(symbol=symbol, baseAsset=base, quoteAsset=quote, status=status)
    entry["filters"][0].update(tickSize=tick_size, minPrice=tick_size)
    return entry


def exchange_info_for(pairs: list[tuple[str, str]], tick_size: str = "0.00010000") -> dict[str, Any]:
    """An exchangeInfo listing each (base, quote) pair as TRADING."""
    info = exchange_info_sample()
    info["symbols"] = [binance_entry(base + quote, base, quote, tick_size) for base, quote in pairs]
    return info
