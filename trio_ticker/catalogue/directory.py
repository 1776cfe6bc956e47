"""The one question every wing asks of the catalogue: is this symbol listed, and by which source.

`SymbolDirectory` is the contract; `ConfiguredDirectory` answers from Settings alone (the configured
symbols), which is what a server knows before, or without, any upstream catalogue.
"""

from __future__ import annotations

from typing import Protocol

from ..model import Listing
from ..settings import Settings


class SymbolDirectory(Protocol):
    def lookup(self, symbol: str) -> Listing | None:
        """The listing of `symbol` (already normalised upper-case ASCII), or None when no source lists it."""


class ConfiguredDirectory:
    """The configured symbols only: stocks from Finnhub, crypto from Binance, or both from the demo feed."""

    def __init__(self, settings: Settings) -> None:
        def source(kind: str) -> str:
            return "demo" if settings.demo_mode else kind

        self._listings = {symbol: Listing(symbol, source("finnhub"), symbol) for symbol in settings.stock_symbols}
        self._listings |= {symbol: Listing(symbol, source("binance"), symbol) for symbol in settings.crypto_symbols}

    def lookup(self, symbol: str) -> Listing | None:
        return self._listings.get(symbol)
