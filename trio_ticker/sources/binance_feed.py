"""The Binance connection task: combined streams over trio-websocket, subscribed live as demand changes.

The feed spreads its symbols over connections of at most 1024 streams, opening another when one is
full. Each connection sends paced, batched SUBSCRIBE/UNSUBSCRIBE requests (under Binance's 5 messages
a second) whenever its share changes, checks every reply, and feeds trades and tickers through
`BinanceBook`. A refused batch is split until the refused symbol is found: an on-demand one is reported
to its subscribers, a configured one fails the connection. A symbol added on demand gets its first price
from the REST 24 h ticker (`binance_tickers`) unless the stream was quicker. A reconnect subscribes the
current set; the feed rotates before Binance's 24 h cut-off, or on `serverShutdown`; the supervisor reconnects it.
"""

from __future__ import annotations

import contextlib
import logging

import httpx
import trio

from .binance import (
    MAX_STREAMS_PER_CONNECTION,
    SOURCE_NAME,
    BinanceBook,
    BinanceDecodeError,
    BinanceMessage,
    ControlReply,
    ErrorReply,
    ServerShutdown,
    StreamRequest,
    Ticker,
    Trade,
    decode_message,
    plan_subscriptions,
    stream_names,
)
from .binance_tickers import TickerClient
from .ratelimit import SlidingWindowLimiter
from .sockets import FeedSocket, OpenSocket, get_messages
from .source import FeedOutput
from .wanted import FollowsDemand, WantedSymbols

log = logging.getLogger(__name__)

CONTROL_MESSAGES_PER_SECOND = 4  # Binance closes with 1008 past 5/s; server pongs count too
SYMBOLS_PER_CONNECTION = MAX_STREAMS_PER_CONNECTION // len(stream_names("X"))


class BinanceRequestError(Exception):
    """Binance refused a configured symbol's SUBSCRIBE (or answered with the wrong reply)."""


class BinanceServerShutdown(Exception):
    """`serverShutdown` arrived before the connection was ready."""


def symbol_of(stream: str) -> str:
    return stream.partition("@")[0].upper()


class BinanceFeed(FollowsDemand):
    name = SOURCE_NAME

    def __init__(
        self,
        symbols: tuple[str, ...],
        *,
        base_url: str,
        open_socket: OpenSocket,
        max_connection_age: float,
        reply_timeout: float = 10.0,
        symbols_per_connection: int = SYMBOLS_PER_CONNECTION,
        rest_url: str | None = None,
        rest_weight_per_minute: int = 1200,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """With `rest_url`, a symbol added on demand gets its first price from the REST 24 h ticker."""
        self._wanted = WantedSymbols(symbols)
        self._url = base_url.rstrip("/") + "/stream"
        self._open_socket = open_socket
        self._max_connection_age = max_connection_age
        self._reply_timeout = reply_timeout
        self._symbols_per_connection = symbols_per_connection
        self._book = BinanceBook()
        self._rest_url, self._rest_weight, self._http_transport = rest_url, rest_weight_per_minute, http_transport
        self._unpriced: dict[str, None] = {}  # on-demand symbols subscribed, waiting for a first price
        self._unpriced_added = trio.Event()
        self._next_id = 1
        self.error_replies = 0

    # -- what demand asks --------------------------------------------------------------------------------

    def _forget(self, symbol: str) -> None:
        self._book.opens.pop(symbol, None)
        self._book.refreshed.discard(symbol)

    # -- the connections -----------------------------------------------------------------------------------

    async def run_connection(
        self, feed: FeedOutput, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._book.start_connection()
        connections: list[_StreamConnection] = []
        rotate_at = trio.current_time() + self._max_connection_age
        async with trio.open_nursery() as nursery:
            await self._place(connections, feed, nursery)
            if self._rest_url is not None:
                nursery.start_soon(self._fetch_first_prices, feed, self._rest_url)
            task_status.started()
            with trio.move_on_at(rotate_at):
                while True:
                    await self._wanted.wait_changed()
                    await self._place(connections, feed, nursery)
            log.info("event=binance_rotate age=%.0f", self._max_connection_age)
            nursery.cancel_scope.cancel()

    async def _place(self, connections: list[_StreamConnection], feed: FeedOutput, nursery: trio.Nursery) -> None:
        """Give every wanted symbol a connection (the first with room, else a new one) and drop the unwanted."""
        placed: set[str] = set()
        for connection in connections:
            connection.symbols &= self._wanted.keys()
            placed |= connection.symbols
        opened: list[_StreamConnection] = []
        for symbol in self._wanted:
            if symbol in placed:
                continue
            room = next((c for c in connections if len(c.symbols) < self._symbols_per_connection), None)
            if room is None:
                room = _StreamConnection(self, self._open_socket, self._url, self._reply_timeout)
                connections.append(room)
                opened.append(room)
            room.symbols.add(symbol)
        for connection in connections:
            connection.wake()
        for connection in opened:
            await nursery.start(connection.run, feed, nursery.cancel_scope)

    def subscribed(self, symbols: list[str]) -> None:
        """Binance confirmed these symbols' streams: an on-demand one without a price yet asks the REST ticker."""
        for symbol in symbols:
            if symbol not in self._wanted.configured and symbol not in self._book.refreshed:
                self._unpriced[symbol] = None
                self._unpriced_added.set()

    async def _fetch_first_prices(self, feed: FeedOutput, rest_url: str) -> None:
        async with httpx.AsyncClient(timeout=self._reply_timeout, transport=self._http_transport) as client:
            tickers = TickerClient(client, base_url=rest_url, weight_per_minute=self._rest_weight)
            while True:
                await self._unpriced_added.wait()
                self._unpriced_added = trio.Event()
                while self._unpriced:
                    symbol = next(iter(self._unpriced))
                    del self._unpriced[symbol]
                    if symbol not in self._wanted or symbol in self._book.refreshed:
                        continue  # dropped, or the stream was quicker: no weight spent
                    ticker = await tickers.fetch(symbol)
                    if ticker is not None and symbol in self._wanted:
                        await feed.publish_or_mark_active(self._book.apply(ticker), symbol)

    def next_request_id(self) -> int:
        request_id, self._next_id = self._next_id, self._next_id + 1
        return request_id

    async def refused(self, symbol: str, error: ErrorReply, feed: FeedOutput) -> None:
        """Binance refused `symbol`'s streams."""
        reason = f"{error.code} {error.message}".strip()[:200]
        if not self._wanted.drop(symbol):
            raise BinanceRequestError(f"SUBSCRIBE {symbol} failed: {reason}")
        self._forget(symbol)
        log.warning("event=binance_symbol_refused symbol=%s reason=%r", symbol, reason)
        await feed.reject_symbol(symbol, reason)

    async def handle(self, frame: str | bytes, feed: FeedOutput) -> BinanceMessage | None:
        """One frame: prices go to the hub here (no checkpoint while it has room); control messages go back.
        A refused frame is counted by kind (its first logged) and skipped."""
        feed.note_message()
        try:
            message = decode_message(frame)
        except BinanceDecodeError as error:
            feed.rejected.note(error.kind, str(error), frame)
            return None
        if isinstance(message, Trade | Ticker):
            if feed.accepts(message.symbol, frame):
                await feed.publish_or_mark_active(self._book.apply(message), message.symbol)
        elif isinstance(message, ErrorReply):
            self.error_replies += 1
            log.warning(
                "event=binance_error_reply id=%r code=%r msg=%r",
                message.request_id,
                message.code,
                message.message[:200],
            )
        return message


class _StreamConnection:
    """One socket and its share of the symbols: brings the upstream subscriptions in line with `symbols`."""

    def __init__(self, owner: BinanceFeed, open_socket: OpenSocket, url: str, reply_timeout: float) -> None:
        self.symbols: set[str] = set()  # the share the feed gave it
        self._owner = owner
        self._open_socket, self._url, self._reply_timeout = open_socket, url, reply_timeout
        self._subscribed: set[str] = set()  # streams Binance confirmed
        self._pacing = SlidingWindowLimiter((CONTROL_MESSAGES_PER_SECOND, 1.0))  # Binance's limit is per connection
        self._changed = trio.Event()
        self._replies: dict[int, trio.MemorySendChannel[ControlReply | ErrorReply]] = {}

    def wake(self) -> None:
        self._changed.set()

    async def run(
        self,
        feed: FeedOutput,
        connection: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Started once its first share is subscribed."""
        async with self._open_socket(self._url) as socket, trio.open_nursery() as nursery:
            ready = trio.Event()
            nursery.start_soon(self._read, socket, feed, connection, ready)
            await self._sync(socket, feed)
            ready.set()
            log.info("event=binance_subscribed streams=%d", len(self._subscribed))
            task_status.started()
            while True:
                await self._changed.wait()
                await self._sync(socket, feed)

    async def _sync(self, socket: FeedSocket, feed: FeedOutput) -> None:
        while True:
            self._changed = trio.Event()
            wanted = frozenset(stream for symbol in self.symbols for stream in stream_names(symbol))
            requests = plan_subscriptions(frozenset(self._subscribed), wanted, 0)
            if not requests:
                return
            # One request at a time, so a change made meanwhile is planned afresh against what Binance confirmed.
            request = requests[0]
            if request.method == "UNSUBSCRIBE":
                if await self._request(socket, request.method, request.params) is None:
                    self._subscribed -= set(request.params)
            else:
                await self._subscribe(socket, feed, request.params)

    async def _subscribe(self, socket: FeedSocket, feed: FeedOutput, streams: tuple[str, ...]) -> None:
        """SUBSCRIBE `streams`; a refused batch is split in halves by symbol until the refused one is alone."""
        error = await self._request(socket, "SUBSCRIBE", streams)
        if error is None:
            self._subscribed |= set(streams)
            self._owner.subscribed(sorted({symbol_of(stream) for stream in streams}))
            return
        symbols = sorted({symbol_of(stream) for stream in streams})
        if len(symbols) == 1:
            self.symbols.discard(symbols[0])
            await self._owner.refused(symbols[0], error, feed)
            return
        half = set(symbols[: len(symbols) // 2])
        for part in ([s for s in streams if symbol_of(s) in half], [s for s in streams if symbol_of(s) not in half]):
            await self._subscribe(socket, feed, tuple(part))

    async def _request(self, socket: FeedSocket, method: str, streams: tuple[str, ...]) -> ErrorReply | None:
        """Send one paced request and wait for its reply: None when it succeeded, else Binance's error."""
        request_id = self._owner.next_request_id()
        send, receive = trio.open_memory_channel[ControlReply | ErrorReply](1)
        self._replies[request_id] = send
        try:
            await self._pacing.acquire()
            await socket.send_message(StreamRequest(method, streams, request_id).encode())
            with trio.fail_after(self._reply_timeout):
                reply = await receive.receive()
        finally:
            del self._replies[request_id]
        if isinstance(reply, ErrorReply):
            return reply
        if reply.result is not None:
            raise BinanceRequestError(f"request {request_id}: unexpected result {reply.result!r}")
        return None

    async def _read(
        self, socket: FeedSocket, feed: FeedOutput, connection: trio.CancelScope, ready: trio.Event
    ) -> None:
        while True:
            for frame in await get_messages(socket):  # all already received, in one wake-up
                message = await self._owner.handle(frame, feed)
                if isinstance(message, ControlReply | ErrorReply) and isinstance(message.request_id, int):
                    waiting = self._replies.get(message.request_id)
                    if waiting is not None:
                        with contextlib.suppress(trio.WouldBlock):  # a second reply to one request: the first counts
                            waiting.send_nowait(message)
                elif isinstance(message, ServerShutdown):
                    if not ready.is_set():
                        raise BinanceServerShutdown("serverShutdown while subscribing")
                    log.info("event=binance_server_shutdown")
                    connection.cancel()
                    return
