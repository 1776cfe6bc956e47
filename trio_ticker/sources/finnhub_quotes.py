"""Finnhub's REST quote (`/api/v1/quote`) over httpx, behind the shared rate limiter.

The key travels in the `X-Finnhub-Token` header, never in a URL. A 429 pauses every caller for
`Retry-After` seconds (or an exponential guess), and whoever waits on that pause says so through
`while_paused` (the source then shows `rate_limited`); 401/403 means the key is bad.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import trio
from pydantic import SecretStr

from .finnhub import FinnhubDecodeError, Quote, decode_quote
from .ratelimit import SlidingWindowLimiter
from .rejects import RejectKind
from .supervise import SourceUnauthorized

log = logging.getLogger(__name__)

FREE_TIER_PER_MINUTE = 60
ALL_PLANS_PER_SECOND = 30


class QuoteError(Exception):
    """A quote could not be fetched (HTTP error status, rate limited too long, or a bad body: `kind` says how)."""

    def __init__(self, message: str, kind: RejectKind | None = None) -> None:
        super().__init__(message)
        self.kind = kind


def _unreported(detail: str) -> AbstractAsyncContextManager[None]:
    return contextlib.nullcontext()


def finnhub_limiter(
    per_minute: int = FREE_TIER_PER_MINUTE, per_second: int = ALL_PLANS_PER_SECOND
) -> SlidingWindowLimiter:
    return SlidingWindowLimiter((per_minute, 60.0), (per_second, 1.0))


class QuoteClient:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: SecretStr,
        limiter: SlidingWindowLimiter,
        max_attempts: int = 3,
        default_retry_after: float = 5.0,
        while_paused: Callable[[str], AbstractAsyncContextManager[None]] = _unreported,
    ) -> None:
        self._client = client
        self._while_paused = while_paused
        self._url = base_url.rstrip("/") + "/quote"
        self._api_key = api_key
        self._limiter = limiter
        self._max_attempts = max_attempts
        self._default_retry_after = default_retry_after
        self.rate_limited = 0

    async def fetch(self, symbol: str) -> Quote | None:
        """The symbol's quote, or None when Finnhub has no data for it (all zeros)."""
        for attempt in range(1, self._max_attempts + 1):
            await self._acquire()
            response = await self._client.get(
                self._url,
                params={"symbol": symbol},
                headers={"X-Finnhub-Token": self._api_key.get_secret_value()},
            )
            if response.status_code == 429:
                self.rate_limited += 1
                delay = _retry_after(response, self._default_retry_after * 2 ** (attempt - 1))
                log.warning("event=finnhub_rate_limited symbol=%s retry_after=%.1f", symbol, delay)
                self._limiter.pause_until(trio.current_time() + delay)
                continue
            if response.status_code in (401, 403):
                raise SourceUnauthorized(f"Finnhub rejected FINNHUB_API_KEY (HTTP {response.status_code})")
            if response.status_code != 200:
                raise QuoteError(f"quote for {symbol}: HTTP {response.status_code}")
            try:
                return decode_quote(response.content)
            except FinnhubDecodeError as error:
                raise QuoteError(f"quote for {symbol}: {error}", error.kind) from None
        raise QuoteError(f"quote for {symbol}: still rate limited after {self._max_attempts} attempts")

    async def _acquire(self) -> None:
        """A grant from the shared limiter; a wait on the upstream's pause is reported while it lasts."""
        paused_for = self._limiter.paused_for()
        if paused_for <= 0:
            await self._limiter.acquire()
            return
        async with self._while_paused(f"HTTP 429 from the quote API: waiting {paused_for:.0f}s (Retry-After)"):
            await self._limiter.acquire()


def _retry_after(response: httpx.Response, fallback: float) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return fallback
