"""Binance's REST 24 h ticker (`/api/v3/ticker/24hr?symbol=`): the first price of a symbol added on demand.

`decode_ticker_24hr` is sans-I/O (the real wire format, decimals as strings) and gives the same `Ticker`
the stream's miniTicker does, so `BinanceBook` treats both alike. `TickerClient` asks within its share of
the request-weight budget, watches `X-MBX-USED-WEIGHT-1M`, and on 429/418 pauses for `Retry-After`; a
failure only means the first price waits for the stream.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
import trio

from ..history.binance_klines import weight_near_limit
from .binance import BinanceDecodeError, Ticker, decode_message
from .ratelimit import SlidingWindowLimiter

log = logging.getLogger(__name__)

TICKER_24HR_WEIGHT = 2  # request weight of one symbol's 24 h ticker
FALLBACK_RETRY_AFTER = 60.0


def decode_ticker_24hr(body: str | bytes) -> Ticker:
    """`{"symbol","lastPrice","openPrice","closeTime",...}` as a `Ticker`, or `BinanceDecodeError`."""
    try:
        fields: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BinanceDecodeError("24 h ticker is not JSON") from None
    if not isinstance(fields, dict):
        raise BinanceDecodeError("24 h ticker is not an object")
    # The stream's codec checks prices and times: hand it the miniTicker's field names.
    event = {
        "e": "24hrMiniTicker",
        "s": fields.get("symbol"),
        "c": fields.get("lastPrice"),
        "o": fields.get("openPrice"),
        "E": fields.get("closeTime"),
    }
    message = decode_message(orjson.dumps(event))
    assert isinstance(message, Ticker)
    return message


class TickerClient:
    def __init__(self, client: httpx.AsyncClient, *, base_url: str, weight_per_minute: int) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + "/api/v3/ticker/24hr"
        self._limiter = SlidingWindowLimiter((max(1, weight_per_minute // TICKER_24HR_WEIGHT), 60.0))
        self.fetched = self.failed = 0

    async def fetch(self, symbol: str) -> Ticker | None:
        """The symbol's 24 h ticker, or None (logged) when Binance could not say now."""
        await self._limiter.acquire()
        try:
            response = await self._client.get(self._url, params={"symbol": symbol})
        except httpx.HTTPError as error:
            self._failed(symbol, f"{type(error).__name__}: {error}")
            return None
        self._watch_weight(response)
        if response.status_code in (429, 418):
            try:
                delay = max(1.0, float(response.headers.get("Retry-After", "")))
            except ValueError:
                delay = FALLBACK_RETRY_AFTER
            self._limiter.pause_until(trio.current_time() + delay)
            self._failed(symbol, f"HTTP {response.status_code}, retry after {delay:.0f}s")
            return None
        if response.status_code != 200:
            self._failed(symbol, f"HTTP {response.status_code} {response.text[:200]}")
            return None
        try:
            ticker = decode_ticker_24hr(response.content)
        except BinanceDecodeError as error:
            self._failed(symbol, str(error))
            return None
        if ticker.symbol != symbol:
            self._failed(symbol, f"answer for {ticker.symbol}")
            return None
        self.fetched += 1
        return ticker

    def _watch_weight(self, response: httpx.Response) -> None:
        if weight_near_limit(response.headers) is not None:
            self._limiter.pause_until(trio.current_time() + FALLBACK_RETRY_AFTER)

    def _failed(self, symbol: str, why: str) -> None:
        self.failed += 1
        log.warning("event=binance_first_price_failed symbol=%s error=%r", symbol, why[:200])
