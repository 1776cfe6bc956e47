"""The Finnhub connection task: trades over the WebSocket, snapshots over the REST quote.

Every (re)connect subscribes each symbol, then fetches each quote (previous close and a price
to show before the first trade), then reports live. A quiet symbol is checked against its quote
before it is called stale, so stocks outside market hours stay fresh without flapping.
"""

from __future__ import annotations

import logging

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
)
from .finnhub_quotes import QuoteClient, QuoteError
from .ratelimit import SlidingWindowLimiter
from .sockets import FeedSocket, OpenSocket, get_messages
from .source import FeedOutput, SourceUnauthorized, Verdict

log = logging.getLogger(__name__)


class FinnhubFeed:
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
    ) -> None:
        self.symbols = symbols
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
        self.garbage_frames = 0
        self.error_messages = 0
        self.no_data: set[str] = set()

    async def run_connection(
        self, feed: FeedOutput, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        log.info("event=finnhub_connecting url=%s", redact_tokens(self._ws_url))
        async with (
            httpx.AsyncClient(timeout=self._http_timeout, transport=self._http_transport) as client,
            self._open_socket(self._ws_url) as socket,
        ):
            for symbol in self.symbols:
                await socket.send_message(encode_subscribe(symbol))
            self._quotes = QuoteClient(client, base_url=self._rest_url, api_key=self._api_key, limiter=self._limiter)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read, socket, feed)
                    await self._refresh_snapshots(feed)
                    task_status.started()
            finally:
                self._quotes = None

    async def _refresh_snapshots(self, feed: FeedOutput) -> None:
        """A price and previous close per symbol, so `change` is right before the first trade."""
        assert self._quotes is not None
        for symbol in self.symbols:
            try:
                quote = await self._quotes.fetch(symbol)
            except (QuoteError, httpx.HTTPError) as error:
                log.warning("event=finnhub_quote_failed symbol=%s error=%r", symbol, redact_tokens(str(error)))
                continue
            if quote is None:
                if symbol not in self.no_data:
                    log.warning("event=finnhub_no_data symbol=%s", symbol)
                self.no_data.add(symbol)
                continue
            self.no_data.discard(symbol)
            update = self._book.on_quote(symbol, quote)
            if update is not None:
                await feed.publish(update)

    async def _read(self, socket: FeedSocket, feed: FeedOutput) -> None:
        garbage_logged = False
        while True:
            for frame in await get_messages(socket):  # all already received, in one wake-up
                feed.note_message()
                try:
                    message = decode_message(frame)
                except FinnhubDecodeError as error:
                    self.garbage_frames += 1
                    if not garbage_logged:
                        garbage_logged = True
                        log.warning("event=finnhub_garbage_frame error=%r frame=%r", str(error), frame[:120])
                    continue
                if isinstance(message, TradeBatch):
                    for trade in message.trades:  # no checkpoint per trade while the hub has room
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
        if quote is None or self._book.has_newer(symbol, quote):
            return Verdict.STALE
        return Verdict.QUIET
