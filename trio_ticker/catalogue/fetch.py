"""Fetching one upstream's catalogue over HTTP: Binance's exchangeInfo, Finnhub's stock-symbol list.

The body is read in chunks and refused past TICKER_CATALOGUE_MAX_BYTES (a hostile or broken upstream
cannot fill memory), then decoded in a worker thread (a large body must not stall the hub). Every failure
becomes one `CatalogueFetchFailed` saying when to try again: Retry-After for 429 and 418, the unauthorized
delay for a refused key, otherwise the caller's backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import httpx
import trio

from ..model import Listing
from ..sources.ratelimit import SlidingWindowLimiter
from ..sources.rejects import RejectedMessages, UpstreamDecodeError
from .codecs import (
    EXCHANGE_INFO_PATH,
    EXCHANGE_INFO_WEIGHT,
    STOCK_SYMBOL_PATH,
    decode_exchange_info,
    decode_stock_symbols,
)

ERROR_BODY_BYTES = 2048  # of a refusal's body, for its one-line detail
RATE_LIMITED_DEFAULT_DELAY = 60.0  # a 429 without a readable Retry-After
BANNED_DEFAULT_DELAY = 120.0  # a 418 without one
MIN_RETRY_AFTER = 1.0
THREAD_DECODE_BYTES = 256 * 1024  # a body this large is decoded in a worker thread


class CatalogueFetchFailed(Exception):
    """A catalogue could not be fetched. `retry_after`: the upstream said when (429/418); `unauthorized`: the
    key was refused (the long unauthorized delay applies); neither: retry with backoff."""

    def __init__(self, detail: str, *, retry_after: float | None = None, unauthorized: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        self.unauthorized = unauthorized


@dataclass(frozen=True, slots=True)
class FetchLimits:
    timeout: float  # seconds for the whole answer (a slow drip is cut off too)
    max_bytes: int
    max_listings: int


class UpstreamCatalogue(Protocol):
    source: str  # the source whose symbols it lists
    rejected: RejectedMessages

    async def fetch(self, client: httpx.AsyncClient) -> list[Listing]:
        """The upstream's current listings, or raise `CatalogueFetchFailed`."""


class BinanceCatalogue:
    source = "binance"

    def __init__(self, base_url: str, *, limits: FetchLimits, weight_per_minute: int) -> None:
        self._url = base_url.rstrip("/") + EXCHANGE_INFO_PATH
        self._limits = limits
        # exchangeInfo costs 20 of the IP's request weight: this budget keeps its share of the minute.
        self._limiter = SlidingWindowLimiter((max(1, weight_per_minute // EXCHANGE_INFO_WEIGHT), 60.0))
        self.rejected = RejectedMessages("binance_catalogue")

    async def fetch(self, client: httpx.AsyncClient) -> list[Listing]:
        await self._limiter.acquire()
        try:
            body = await get_bounded(client, self._url, headers={}, limits=self._limits)
        except CatalogueFetchFailed as failure:
            if failure.retry_after is not None:
                self._limiter.pause_until(trio.current_time() + failure.retry_after)
            raise
        decode = partial(decode_exchange_info, max_listings=self._limits.max_listings, rejected=self.rejected)
        return await decode_in_thread(decode, body)


class FinnhubCatalogue:
    source = "finnhub"

    def __init__(
        self, base_url: str, *, api_key: str, exchange: str, kinds: Collection[str], limits: FetchLimits
    ) -> None:
        self._url = base_url.rstrip("/") + STOCK_SYMBOL_PATH + f"?exchange={exchange}"
        self._headers = {"X-Finnhub-Token": api_key}  # a header, so the key is in no URL that may be logged
        self._kinds = frozenset(kinds)
        self._limits = limits
        self.rejected = RejectedMessages("finnhub_catalogue")

    async def fetch(self, client: httpx.AsyncClient) -> list[Listing]:
        body = await get_bounded(client, self._url, headers=self._headers, limits=self._limits)
        decode = partial(
            decode_stock_symbols, kinds=self._kinds, max_listings=self._limits.max_listings, rejected=self.rejected
        )
        return await decode_in_thread(decode, body)


async def get_bounded(client: httpx.AsyncClient, url: str, *, headers: dict[str, str], limits: FetchLimits) -> bytes:
    """The body of a 200 answer to GET `url`, at most `limits.max_bytes`, within `limits.timeout`."""
    try:
        with trio.fail_after(limits.timeout):
            async with client.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    raise refusal(response, await read_at_most(response, ERROR_BODY_BYTES, cut=True))
                return await read_at_most(response, limits.max_bytes)
    except httpx.HTTPError as error:  # timeouts, refused or broken connections, a bad encoding
        raise CatalogueFetchFailed(f"{type(error).__name__}: {error}") from None
    except trio.TooSlowError:
        raise CatalogueFetchFailed(f"no complete answer within {limits.timeout:g} s") from None


async def read_at_most(response: httpx.Response, max_bytes: int, *, cut: bool = False) -> bytes:
    """The body, or (`cut`) its first `max_bytes`; without `cut` a longer body is refused."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            if cut:
                return bytes(body[:max_bytes])
            raise CatalogueFetchFailed(f"the catalogue is larger than {max_bytes} bytes (TICKER_CATALOGUE_MAX_BYTES)")
    return bytes(body)


def refusal(response: httpx.Response, body: bytes) -> CatalogueFetchFailed:
    status = response.status_code
    detail = f"HTTP {status}: {body[:200].decode(errors='replace')}"
    if status in (429, 418):
        fallback = RATE_LIMITED_DEFAULT_DELAY if status == 429 else BANNED_DEFAULT_DELAY
        return CatalogueFetchFailed(detail, retry_after=retry_after(response.headers.get("Retry-After"), fallback))
    return CatalogueFetchFailed(detail, unauthorized=status in (401, 403))


def retry_after(header: str | None, fallback: float) -> float:
    """Retry-After in seconds (the only form Binance and Finnhub send), at least MIN_RETRY_AFTER."""
    try:
        seconds = float(header) if header is not None else fallback
    except ValueError:
        seconds = fallback
    return max(MIN_RETRY_AFTER, seconds if seconds == seconds and seconds < 86_400 else fallback)


async def decode_in_thread(decode: Callable[[bytes], list[Listing]], body: bytes) -> list[Listing]:
    """Tens of megabytes of JSON take a noticeable time to decode: not on the event loop, where the hub runs."""
    try:
        if len(body) < THREAD_DECODE_BYTES:
            return decode(body)  # a few milliseconds at most: a thread would cost more than it saves
        return await trio.to_thread.run_sync(decode, body)
    except UpstreamDecodeError as error:
        raise CatalogueFetchFailed(f"not a catalogue: {error}") from None
