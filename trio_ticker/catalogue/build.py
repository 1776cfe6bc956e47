"""The catalogue wired from Settings: which sources list which symbols, and which are fetched.

Demo mode lists the demo's fixed table and fetches nothing. Live mode fetches Binance's exchangeInfo
when crypto symbols are configured, and Finnhub's stock-symbol list when stock symbols are (unless
TICKER_STOCK_CATALOGUE names the list); TICKER_CATALOGUE_FETCH=false fetches nothing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import httpx

from ..history.store import OpenCandleStore
from ..model import Listing
from ..settings import Settings
from ..sources.build import retry_policy
from ..sources.demo_instruments import KNOWN_INSTRUMENTS, Instrument
from .catalogue import Catalogue
from .directory import ConfiguredDirectory
from .fetch import BinanceCatalogue, FetchLimits, FinnhubCatalogue, UpstreamCatalogue


def demo_listing(instrument: Instrument) -> Listing:
    name = instrument.name or instrument.symbol
    return Listing(instrument.symbol, "demo", name, instrument.decimals, instrument.base, instrument.quote)


def build_catalogue(
    settings: Settings,
    *,
    open_store: OpenCandleStore | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
) -> Catalogue:
    """`open_store`: the history store to keep the fetched catalogues in (None: TICKER_HISTORY=off).
    `http_transport`: the tests' in-memory upstream."""
    directory = ConfiguredDirectory(settings)
    configured = [listing for symbol in settings.symbols if (listing := directory.lookup(symbol)) is not None]
    fixed: dict[str, Sequence[Listing]] = {}
    upstreams: list[UpstreamCatalogue] = []
    limits = FetchLimits(
        settings.catalogue_fetch_timeout, settings.catalogue_max_bytes, settings.catalogue_max_listings
    )
    if settings.demo_mode:
        fixed["demo"] = [demo_listing(instrument) for instrument in KNOWN_INSTRUMENTS.values()]
    else:
        if settings.stock_symbols and settings.stock_catalogue:
            fixed["finnhub"] = [Listing(symbol, "finnhub", symbol) for symbol in settings.stock_catalogue]
        if settings.catalogue_fetch and settings.crypto_symbols:
            upstreams.append(
                BinanceCatalogue(
                    settings.binance_rest_url,
                    limits=limits,
                    weight_per_minute=settings.binance_rest_weight_per_minute,
                )
            )
        if settings.catalogue_fetch and settings.stock_symbols and not settings.stock_catalogue:
            assert settings.finnhub_api_key is not None  # Settings require it for live stock symbols
            upstreams.append(
                FinnhubCatalogue(
                    settings.finnhub_rest_url,
                    api_key=settings.finnhub_api_key.get_secret_value(),
                    exchange=settings.finnhub_exchange,
                    kinds=settings.finnhub_symbol_types,
                    limits=limits,
                )
            )
    return Catalogue(
        configured=configured,
        fixed=fixed,
        upstreams=upstreams,
        refresh=settings.catalogue_refresh,
        policy=retry_policy(settings),
        http_timeout=settings.upstream_connect_timeout,
        open_store=open_store if upstreams else None,
        jitter=random.Random(settings.demo_seed),
        http_transport=http_transport,
    )
