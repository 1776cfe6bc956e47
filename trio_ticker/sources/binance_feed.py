"""The Binance connection task: combined streams over trio-websocket, subscribed live.

Each connection (at most 1024 streams) opens `/stream`, subscribes with paced, batched SUBSCRIBE
requests and checks every reply, then feeds trades and tickers through `BinanceBook`. It ends on
its own before Binance's 24 h cut-off, or on `serverShutdown`; the supervisor reconnects it.
"""

from __future__ import annotations

import logging

import trio

from .binance import (
    SOURCE_NAME,
    BinanceBook,
    BinanceDecodeError,
    BinanceMessage,
    ControlReply,
    ErrorReply,
    ServerShutdown,
    Ticker,
    Trade,
    decode_message,
    plan_subscriptions,
    split_streams,
    stream_names,
)
from .ratelimit import SlidingWindowLimiter
from .sockets import FeedSocket, OpenSocket, get_messages
from .supervise import FeedOutput

log = logging.getLogger(__name__)

CONTROL_MESSAGES_PER_SECOND = 4  # Binance closes with 1008 past 5/s; server pongs count too


class BinanceRequestError(Exception):
    """Binance answered a SUBSCRIBE/UNSUBSCRIBE with an error (or the wrong reply)."""


class BinanceServerShutdown(Exception):
    """`serverShutdown` arrived before the connection was ready."""


class BinanceFeed:
    name = SOURCE_NAME

    def __init__(
        self,
        symbols: tuple[str, ...],
        *,
        base_url: str,
        open_socket: OpenSocket,
        max_connection_age: float,
        reply_timeout: float = 10.0,
    ) -> None:
        self.symbols = symbols
        self._url = base_url.rstrip("/") + "/stream"
        self._open_socket = open_socket
        self._max_connection_age = max_connection_age
        self._reply_timeout = reply_timeout
        self._book = BinanceBook()
        self._next_id = 1
        self.error_replies = 0

    async def run_connection(
        self, feed: FeedOutput, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._book.start_connection()
        streams = [stream for symbol in self.symbols for stream in stream_names(symbol)]
        async with trio.open_nursery() as nursery:
            for group in split_streams(streams):
                await nursery.start(self._run_socket, group, feed, nursery.cancel_scope)
            task_status.started()
            await trio.sleep(self._max_connection_age)
            log.info("event=binance_rotate age=%.0f", self._max_connection_age)
            nursery.cancel_scope.cancel()

    async def _run_socket(
        self,
        streams: list[str],
        feed: FeedOutput,
        connection: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with self._open_socket(self._url) as socket:
            pacing = SlidingWindowLimiter((CONTROL_MESSAGES_PER_SECOND, 1.0))
            for request in plan_subscriptions(frozenset(), frozenset(streams), self._next_id):
                self._next_id = request.request_id + 1
                await pacing.acquire()
                await socket.send_message(request.encode())
                with trio.fail_after(self._reply_timeout):
                    await self._wait_reply(socket, feed, request.request_id)
            log.info("event=binance_subscribed streams=%d", len(streams))
            task_status.started()
            while True:
                for frame in await get_messages(socket):  # all already received, in one wake-up
                    if isinstance(await self._handle(frame, feed), ServerShutdown):
                        log.info("event=binance_server_shutdown")
                        connection.cancel()
                        return

    async def _wait_reply(self, socket: FeedSocket, feed: FeedOutput, request_id: int) -> None:
        while True:
            message = await self._handle(await socket.get_message(), feed)
            if isinstance(message, ErrorReply) and message.request_id == request_id:
                raise BinanceRequestError(f"request {request_id} failed: {message.code} {message.message}")
            if isinstance(message, ControlReply) and message.request_id == request_id:
                if message.result is not None:
                    raise BinanceRequestError(f"request {request_id}: unexpected result {message.result!r}")
                return
            if isinstance(message, ServerShutdown):
                raise BinanceServerShutdown("serverShutdown while subscribing")

    async def _handle(self, frame: str | bytes, feed: FeedOutput) -> BinanceMessage | None:
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
