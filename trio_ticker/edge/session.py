"""One WebSocket client: its commands go to the hub, its outbox goes to the socket.

The session speaks the dialect its handshake chose (the full protocol, or the prototypes' dialect: no
replies but errors, the default symbol for a client that has not subscribed). The session's own task
reads commands; the writer (`delivery.writer`) runs in the session's nursery. A close request (an
eviction by the slow-client reaper, a limit, a server shutdown) cancels the session's scope through the
callback its outbox was built with, and so does a disconnect, so exactly this client's tasks end. The
hub never waits for a session; a session only ever waits for its own client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import trio

from ..delivery.hub import Hub
from ..delivery.outbox import ClientOutbox
from ..delivery.pacing import FlushPacer
from ..delivery.writer import write_batches, write_single_frames
from ..model import Listing
from ..protocol import prototype as prototype_dialect
from ..protocol.commands import Command, ListSymbols, Ping, Search, Subscribe, Unsubscribe, decode_command
from ..protocol.dialects import Dialect
from ..protocol.errors import ErrorCode, ProtocolError, RequestId, candles_unavailable_error, unknown_symbols_error
from ..protocol.frames import encode_listings, encode_pong, encode_subscribed, encode_symbols, encode_unsubscribed
from .limits import CloseConnection, InboundGuard
from .transport import ClientDisconnected, ClientTransport

log = logging.getLogger(__name__)


class ClientSession:
    def __init__(
        self,
        transport: ClientTransport,
        hub: Hub,
        pacer: FlushPacer,
        *,
        close_timeout: float,
        dialect: Dialect = Dialect.FULL,
        batch: bool = False,
        default_symbols: tuple[str, ...] = (),
        default_symbols_delay: float = 0.0,
        peer: str = "",
        guard: InboundGuard | None = None,
        buffer: int | None = None,
        search: Callable[[str, int], Sequence[Listing]] | None = None,
        search_limits: tuple[int, int] = (20, 50),
        welcome: str | None = None,
    ) -> None:
        """`default_symbols` stream to a client that has not subscribed `default_symbols_delay` seconds after it
        connected, until its first subscribe replaces them. `search` answers the `search` command (the
        catalogue's), with `search_limits`: the default and the largest `limit`. `welcome` is the first frame sent
        (full protocol)."""
        if batch and dialect is not Dialect.FULL:
            raise ValueError("only the full protocol batches")
        self._transport = transport
        self._guard = guard
        self._hub, self._pacer = hub, pacer  # delivery: the hub it registers with, the pacer its writer takes turns at
        self._close_timeout = close_timeout
        self._dialect = dialect
        self._decode_command = prototype_dialect.decode_command if dialect is Dialect.PROTOTYPE else decode_command
        self._encode_error = prototype_dialect.encode_error if dialect is Dialect.PROTOTYPE else ProtocolError.to_frame
        self._batch = batch
        self._default_symbols = default_symbols
        self._default_symbols_delay = default_symbols_delay
        self._default_symbols_at: float | None = None  # when they start, while they are still to start
        self._peer = peer
        self._buffer = buffer
        self._welcome = welcome
        self._peer_gone = False
        self._peer_close_code: int | None = None
        self._search = search
        self._search_limits = search_limits

    async def run(self, *, task_status: trio.TaskStatus[ClientOutbox] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the client until it leaves, is evicted, or the server asks it to go."""
        session_scope = trio.CancelScope()  # cancelled by a close request or a disconnect
        outbox = self._hub.connect(
            peer=self._peer, capacity=self._buffer, dialect=self._dialect, on_close_request=session_scope.cancel
        )
        # DEBUG: a reconnect storm has thousands of these within a second, and `client_closed` says it all once.
        log.debug(
            "event=client_connected client=%d peer=%s dialect=%s batch=%s",
            outbox.client_id,
            self._peer,
            self._dialect.value,
            self._batch,
        )
        if self._default_symbols:
            self._default_symbols_at = trio.current_time() + self._default_symbols_delay
        try:
            with session_scope:
                if self._welcome is not None:
                    await self._send_welcome(session_scope)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_frames, outbox, session_scope)
                    task_status.started(outbox)
                    await self._read_commands(outbox, session_scope)  # the session's own task reads
        finally:
            self._hub.disconnect(outbox)
        if not self._peer_gone and outbox.close_code is not None:
            with trio.move_on_after(self._close_timeout):
                await self._transport.close(outbox.close_code, outbox.close_reason)
        log.info(
            "event=client_closed client=%d peer=%s dialect=%s batch=%s code=%s reason=%s",
            outbox.client_id,
            self._peer,
            self._dialect.value,
            self._batch,
            self._peer_close_code if self._peer_gone else outbox.close_code,
            # The code is what the server reported. Hypercorn 0.18 reports 1006 for every departure the peer
            # started, a clean close frame as well as its read timeout or a reset (pgjones/hypercorn#127), so
            # the log cannot tell a goodbye from a dropped connection.
            "peer left" if self._peer_gone else outbox.close_reason,
        )

    async def _send_welcome(self, cancel_scope: trio.CancelScope) -> None:
        """Sent alone and before the writer starts, so it is the first frame (one array of it when batching)."""
        assert self._welcome is not None
        try:
            await self._transport.send(f"[{self._welcome}]" if self._batch else self._welcome)
        except ClientDisconnected as gone:
            self._peer_gone, self._peer_close_code = True, gone.code
            cancel_scope.cancel()
            await trio.lowlevel.checkpoint()  # ends the session here: the scope is cancelled

    async def _read_commands(self, outbox: ClientOutbox, cancel_scope: trio.CancelScope) -> None:
        try:
            while True:
                frame = await self._receive(outbox)
                try:
                    await self._handle(self._decode(frame), outbox)
                except ProtocolError as error:
                    await outbox.send_control(self._encode_error(error))
                except CloseConnection as limit:
                    log.warning(
                        "event=client_limit client=%d peer=%s code=%d reason=%s",
                        outbox.client_id,
                        self._peer,
                        limit.code,
                        limit.reason,
                    )
                    outbox.request_close(limit.code, limit.reason)
                    return
        except ClientDisconnected as gone:
            self._peer_gone, self._peer_close_code = True, gone.code
            cancel_scope.cancel()

    async def _receive(self, outbox: ClientOutbox) -> str | bytes:
        """The client's next frame; meanwhile the default symbols start if their delay ends before a subscribe.

        The delay is what keeps them from a client that subscribes on open (the stock streamer's pages): its
        subscribe arrives within a round trip, before the default symbol's snapshot would have gone out.
        """
        if self._default_symbols_at is not None:
            with trio.move_on_at(self._default_symbols_at):
                return await self._transport.receive()
            self._default_symbols_at = None
            self._hub.subscribe(outbox, self._default_symbols)
        return await self._transport.receive()

    def _decode(self, frame: str | bytes) -> Command:
        guard = self._guard
        if guard is None:
            return self._decode_command(frame)
        guard.admit(frame, trio.current_time())
        return self._decode_command(frame, max_symbols=guard.max_symbols_per_message)

    async def _handle(self, command: Command, outbox: ClientOutbox) -> None:
        hub = self._hub
        acks = self._dialect is Dialect.FULL  # the prototypes' dialect sends price objects and errors only
        match command:
            case Subscribe(symbols, request_id, candles, since, epoch):
                if refusal := hub.refusal(symbols, request_id):
                    raise refusal
                if candles is not None and hub.candles is None:
                    raise candles_unavailable_error(request_id)
                replaced = tuple(symbol for symbol in self._default_symbols if symbol not in symbols)
                if self._guard is not None:
                    kept = outbox.subscriptions
                    if replaced:
                        kept = {symbol: None for symbol in kept if symbol not in replaced}
                    self._guard.check_subscriptions(kept, symbols, request_id)
                self._default_symbols, self._default_symbols_at = (), None
                # Symbols it has already are acknowledged but neither snapshot nor replayed.
                if since is not None:
                    since = {s: seq for s, seq in since.items() if s not in outbox.subscriptions}
                # The ack is queued before the subscription exists, so it precedes every tick. Its verdict on
                # recovery is the hub's now; should the history move past a position before `subscribe` (only
                # when the ack waited for room), that symbol's snapshot says `recovered: false`.
                if acks:
                    recovered = hub.recoverable(since, epoch) if since is not None else None
                    ack = encode_subscribed(symbols, request_id, candles, epoch=hub.epoch, recovered=recovered)
                    await outbox.send_control(ack)
                if replaced:
                    hub.unsubscribe(outbox, replaced)
                hub.subscribe(outbox, symbols, candles, since=since, epoch=epoch)
            case Unsubscribe(symbols, request_id, candles):
                if unknown := hub.unknown(symbols):
                    raise unknown_symbols_error(unknown, request_id)
                hub.unsubscribe(outbox, symbols, candles)
                if candles is None:
                    self._default_symbols = tuple(s for s in self._default_symbols if s not in symbols)
                if acks:
                    await outbox.send_control(encode_unsubscribed(symbols, request_id, candles))
            case ListSymbols(request_id):
                await outbox.send_control(encode_symbols(hub.symbols, request_id))
            case Ping(request_id):
                await outbox.send_control(encode_pong(int(time.time() * 1000), request_id))
            case Search(query, limit, request_id):
                await outbox.send_control(encode_listings(self._search_for(query, limit, request_id), request_id))

    def _search_for(self, query: str, limit: int | None, request_id: RequestId) -> list[Listing]:
        default, largest = self._search_limits
        if limit is not None and limit > largest:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"'limit' must be from 1 to {largest}",
                request_id=request_id,
                field="limit",
                limit=largest,
            )
        return [] if self._search is None else list(self._search(query, limit or default))

    async def _write_frames(self, outbox: ClientOutbox, cancel_scope: trio.CancelScope) -> None:
        try:
            if self._batch:
                await write_batches(outbox, self._transport.send, self._pacer)
            else:
                await write_single_frames(outbox, self._transport.send, self._pacer, self._hub.count_conflated)
        except ClientDisconnected as gone:
            self._peer_gone, self._peer_close_code = True, gone.code
            cancel_scope.cancel()
