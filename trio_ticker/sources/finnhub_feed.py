"""The Finnhub connection task: trades over the WebSocket, snapshots over the REST quote.

Every (re)connect subscribes each symbol, then fetches each quote (previous close and a price to show
before the first trade), then reports live; a symbol demand adds later is subscribed on the open
connection and quoted the same way, within the plan's symbol limit (TICKER_FINNHUB_MAX_SYMBOLS). A symbol
whose quote was unusable leaves the source `degraded` and is asked again with backoff. A quiet symbol is
checked against its quote before it is called stale, so stocks outside market hours stay fresh.
"""

from __future__ import annotations

import logging
import random

import httpx
import trio
from pydantic import SecretStr

from ..errors import redact_tokens
from .finnhub import (
    SOURCE_NAME,
    ErrorMessage,
    FinnhubBook,
    FinnhubDecodeError,
    TradeBatch,
    decode_message,
    encode_subscribe,
    encode_unsubscribe,
)
from .finnhub_quotes import QuoteClient, QuoteError
from .ratelimit import SlidingWindowLimiter
from .retry import Backoff, Jitter, RetryPolicy
from .sockets import FeedSocket, OpenSocket, get_messages
from .source import FeedOutput, SourceUnauthorized, Verdict
from .wanted import FollowsDemand, WantedSymbols

log = logging.getLogger(__name__)

QUOTE_RETRY_CEILING = 300.0
"""Seconds: the longest wait before a symbol without a usable quote is asked again (each costs a REST call)."""


class FinnhubFeed(FollowsDemand):
    name = SOURCE_NAME

    def __init__(
        self,
        symbols: tuple[str, ...],
        *,
        ws_url: str,
        rest_url: str,
        api_key: SecretStr,
        open_socket: OpenSocket,
        limiter: SlidingWindowLimiter,
        http_timeout: float = 10.0,
        http_transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        jitter: Jitter | None = None,
        max_symbols: int = 50,
    ) -> None:
        self._wanted = WantedSymbols(symbols)
        self._max_symbols = max_symbols
        separator = "&" if "?" in ws_url else "?"
        self._ws_url = f"{ws_url}{separator}token={api_key.get_secret_value()}"
        self._rest_url = rest_url
        self._api_key = api_key
        self._open_socket = open_socket
        self._limiter = limiter
        self._http_timeout = http_timeout
        self._http_transport = http_transport
        self._book = FinnhubBook()
        self._quotes: QuoteClient | None = None
        retry = retry or RetryPolicy()
        self._quote_retry = RetryPolicy(initial=retry.initial, maximum=max(retry.maximum, QUOTE_RETRY_CEILING))
        self._jitter = jitter or random.Random()
        self._quote_trouble: dict[str, str] = {}  # symbol -> the last failure logged on this connection
        self.error_messages = 0

    def _forget(self, symbol: str) -> None:
        for known in (self._book.previous_close, self._book.last_ts, self._book.waiting):
            known.pop(symbol, None)

    async def run_connection(
        self, feed: FeedOutput, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        log.info("event=finnhub_connecting url=%s", redact_tokens(self._ws_url))
        async with (
            httpx.AsyncClient(timeout=self._http_timeout, transport=self._http_transport) as client,
            self._open_socket(self._ws_url) as socket,
        ):
            self._book.start_connection(feed.now_ms())  # trades before now may be lost: the day's volume waits
            subscribed = await self._subscribe(socket, feed, self.symbols, set())
            self._quotes = QuoteClient(
                client,
                base_url=self._rest_url,
                api_key=self._api_key,
                limiter=self._limiter,
                while_paused=feed.waiting_out_rate_limit,
            )
            self._quote_trouble.clear()
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read, socket, feed)
                    missing = await self._take_snapshots(feed, tuple(s for s in self.symbols if s in subscribed))
                    task_status.started()
                    nursery.start_soon(self._follow_demand, socket, feed, subscribed, nursery)
                    await self._retry_snapshots(feed, missing)
            finally:
                self._quotes = None

    async def _subscribe(
        self, socket: FeedSocket, feed: FeedOutput, symbols: tuple[str, ...], subscribed: set[str]
    ) -> set[str]:
        """Subscribe `symbols` within the plan's limit; an on-demand symbol past it is refused to its clients."""
        for symbol in symbols:
            if symbol in subscribed:
                continue
            if len(subscribed) >= self._max_symbols and self._wanted.drop(symbol):
                await feed.reject_symbol(symbol, f"the Finnhub plan streams at most {self._max_symbols} symbols")
                continue
            await socket.send_message(encode_subscribe(symbol))
            subscribed.add(symbol)
        return subscribed

    async def _follow_demand(
        self, socket: FeedSocket, feed: FeedOutput, subscribed: set[str], nursery: trio.Nursery
    ) -> None:
        """Bring the open connection's subscriptions in line with demand; each new symbol gets its quote."""
        while True:
            await self._wanted.wait_changed()
            for symbol in subscribed - self._wanted.keys():
                await socket.send_message(encode_unsubscribe(symbol))
                subscribed.discard(symbol)
            added = tuple(symbol for symbol in self._wanted if symbol not in subscribed)
            await self._subscribe(socket, feed, added, subscribed)
            fresh = tuple(symbol for symbol in added if symbol in subscribed)
            if missing := await self._take_snapshots(feed, fresh):
                nursery.start_soon(self._retry_snapshots, feed, missing)

    async def _retry_snapshots(self, feed: FeedOutput, missing: tuple[str, ...]) -> None:
        """Ask again, with backoff, for the quotes that were unusable, so no symbol waits for the next connection."""
        backoff = Backoff(self._quote_retry, self._jitter)
        while missing:
            backoff.failed()
            await trio.sleep(backoff.delay())
            missing = await self._take_snapshots(feed, missing)

    async def _take_snapshots(self, feed: FeedOutput, symbols: tuple[str, ...]) -> tuple[str, ...]:
        """A price and previous close per symbol, so `change` is right before the first trade. Returns the
        symbols whose quote was unusable; those with no previous close at all leave the source degraded."""
        missing: list[str] = []
        for symbol in symbols:
            trouble = await self._take_snapshot(feed, symbol)
            if trouble is None:
                self._quote_trouble.pop(symbol, None)
                await feed.mark_priced(symbol)
                continue
            missing.append(symbol)
            if self._quote_trouble.get(symbol) != trouble:
                self._quote_trouble[symbol] = trouble
                log.warning("event=finnhub_quote_unusable symbol=%s error=%r", symbol, trouble)
            if symbol not in self._book.previous_close:  # trades wait for a previous close
                await feed.mark_unpriced(symbol, trouble)
        return tuple(missing)

    async def _take_snapshot(self, feed: FeedOutput, symbol: str) -> str | None:
        """Fetch and publish one quote; None when it was usable, else what was wrong with it."""
        assert self._quotes is not None
        try:
            quote = await self._quotes.fetch(symbol)
        except (QuoteError, httpx.HTTPError) as error:
            if isinstance(error, QuoteError) and error.kind is not None:
                feed.rejected.note(error.kind, str(error), f"quote {symbol}")
            return redact_tokens(str(error)) or type(error).__name__
        if quote is None:
            return "no data"
        update = self._book.on_quote(symbol, quote)
        if update is not None:
            await feed.publish(update)
        return None

    async def _read(self, socket: FeedSocket, feed: FeedOutput) -> None:
        while True:
            for frame in await get_messages(socket):  # all already received, in one wake-up
                feed.note_message()
                try:
                    message = decode_message(frame)
                except FinnhubDecodeError as error:
                    feed.rejected.note(error.kind, str(error), frame)
                    continue
                if isinstance(message, TradeBatch):
                    for rejection in message.rejected:
                        feed.rejected.note(rejection.kind, rejection.reason, frame)
                    for trade in message.trades:  # no checkpoint per trade while the hub has room
                        if feed.accepts(trade.symbol, frame):
                            await feed.publish_or_mark_active(self._book.on_trade(trade), trade.symbol)
                elif isinstance(message, ErrorMessage):
                    self.error_messages += 1
                    log.warning("event=finnhub_error msg=%r", redact_tokens(message.message[:200]))

    async def verify_quiet(self, symbol: str, feed: FeedOutput) -> Verdict:
        """Quiet is fine when the quote has no trade newer than the last one we published."""
        quotes = self._quotes
        if quotes is None:
            return Verdict.STALE
        try:
            quote = await quotes.fetch(symbol)
        except (QuoteError, SourceUnauthorized, httpx.HTTPError) as error:
            log.warning("event=finnhub_quiet_check_failed symbol=%s error=%r", symbol, str(error)[:200])
            return Verdict.STALE
        if quote is None:
            return Verdict.STALE
        self._book.note_day(symbol, quote)
        if self._book.has_newer(symbol, quote):
            return Verdict.STALE
        return Verdict.QUIET
