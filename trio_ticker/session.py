"""One WebSocket client: a reader (commands -> hub) and a writer task (outbox -> socket).

The session speaks the dialect its handshake chose (the full protocol, or the prototypes' dialect: no
replies but errors, the default symbol for a client that has not subscribed). The session's own task
reads and the writer runs in the session's nursery. A close request (an eviction by the hub's
slow-client reaper, a limit, a server shutdown) cancels that nursery through the outbox, and so does a
disconnect, so exactly this client's tasks end. The hub never waits for a session; a session only ever
waits for its own client.
"""

from __future__ import annotations

import logging
import time

import trio

from . import protocol, prototype_dialect
from .dialects import Dialect
from .hub import Hub
from .limits import CloseConnection, InboundGuard
from .outbox import ClientOutbox, Entry
from .protocol import ListSymbols, Ping, ProtocolError, Subscribe, Unsubscribe
from .transport import ClientDisconnected, ClientTransport

log = logging.getLogger(__name__)


class ClientSession:
    def __init__(
        self,
        transport: ClientTransport,
        hub: Hub,
        *,
        close_timeout: float,
        dialect: Dialect = Dialect.FULL,
        batch: bool = False,
        default_symbols: tuple[str, ...] = (),
        default_symbols_delay: float = 0.0,
        peer: str = "",
        guard: InboundGuard | None = None,
        buffer: int | None = None,
    ) -> None:
        """`default_symbols` stream to a client that has not subscribed `default_symbols_delay` seconds after it
        connected, until its first subscribe replaces them."""
        if batch and dialect is not Dialect.FULL:
            raise ValueError("only the full protocol batches")
        self._transport = transport
        self._guard = guard
        self._hub = hub
        self._close_timeout = close_timeout
        self._dialect = dialect
        self._decode_command = (
            prototype_dialect.decode_command if dialect is Dialect.PROTOTYPE else protocol.decode_command
        )
        self._encode_error = prototype_dialect.encode_error if dialect is Dialect.PROTOTYPE else ProtocolError.to_frame
        self._batch = batch
        self._default_symbols = default_symbols
        self._default_symbols_delay = default_symbols_delay
        self._default_symbols_at: float | None = None  # when they start, while they are still to start
        self._peer = peer
        self._buffer = buffer
        self._peer_gone = False
        self._peer_close_code: int | None = None

    async def run(self, *, task_status: trio.TaskStatus[ClientOutbox] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the client until it leaves, is evicted, or the server asks it to go."""
        outbox = self._hub.connect(peer=self._peer, capacity=self._buffer, dialect=self._dialect)
        log.info(
            "event=client_connected client=%d peer=%s dialect=%s batch=%s",
            outbox.client_id,
            self._peer,
            self._dialect.value,
            self._batch,
        )
        if self._default_symbols:
            self._default_symbols_at = trio.current_time() + self._default_symbols_delay
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_frames, outbox, nursery.cancel_scope)
                outbox.stop_session_on_close_request(nursery.cancel_scope.cancel)
                task_status.started(outbox)
                await self._read_commands(outbox, nursery.cancel_scope)  # the session's own task reads
        finally:
            self._hub.disconnect(outbox)
        if not self._peer_gone and outbox.close_code is not None:
            with trio.move_on_after(self._close_timeout):
                await self._transport.close(outbox.close_code, outbox.close_reason)
        log.info(
            "event=client_closed client=%d peer=%s code=%s reason=%s",
            outbox.client_id,
            self._peer,
            self._peer_close_code if self._peer_gone else outbox.close_code,
            # The code is what the server reported. Hypercorn 0.18 reports 1006 for every departure the peer
            # started, a clean close frame as well as its read timeout or a reset (pgjones/hypercorn#127), so
            # the log cannot tell a goodbye from a dropped connection.
            "peer left" if self._peer_gone else outbox.close_reason,
        )

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

    def _decode(self, frame: str | bytes) -> protocol.Command:
        guard = self._guard
        if guard is None:
            return self._decode_command(frame)
        guard.admit(frame, trio.current_time())
        return self._decode_command(frame, max_symbols=guard.max_symbols_per_message)

    async def _handle(self, command: protocol.Command, outbox: ClientOutbox) -> None:
        hub = self._hub
        acks = self._dialect is Dialect.FULL  # the prototypes' dialect sends price objects and errors only
        match command:
            case Subscribe(symbols, request_id, candles):
                if unknown := hub.unknown(symbols):
                    raise protocol.unknown_symbols_error(unknown, request_id)
                if candles is not None and hub.candles is None:
                    raise protocol.candles_unavailable_error(request_id)
                replaced = tuple(symbol for symbol in self._default_symbols if symbol not in symbols)
                if self._guard is not None:
                    kept = outbox.subscriptions
                    if replaced:
                        kept = {symbol: None for symbol in kept if symbol not in replaced}
                    self._guard.check_subscriptions(kept, symbols, request_id)
                self._default_symbols, self._default_symbols_at = (), None
                # The ack is queued before the subscription exists, so it precedes every tick.
                if acks:
                    await outbox.send_control(protocol.encode_subscribed(symbols, request_id, candles))
                if replaced:
                    hub.unsubscribe(outbox, replaced)
                hub.subscribe(outbox, symbols, candles)
            case Unsubscribe(symbols, request_id, candles):
                if unknown := hub.unknown(symbols):
                    raise protocol.unknown_symbols_error(unknown, request_id)
                hub.unsubscribe(outbox, symbols, candles)
                if candles is None:
                    self._default_symbols = tuple(s for s in self._default_symbols if s not in symbols)
                if acks:
                    await outbox.send_control(protocol.encode_unsubscribed(symbols, request_id, candles))
            case ListSymbols(request_id):
                await outbox.send_control(protocol.encode_symbols(hub.symbols, request_id))
            case Ping(request_id):
                await outbox.send_control(protocol.encode_pong(int(time.time() * 1000), request_id))

    async def _write_frames(self, outbox: ClientOutbox, cancel_scope: trio.CancelScope) -> None:
        try:
            if self._batch:
                await self._write_batches(outbox)
            else:
                await self._write_single_frames(outbox)
        except ClientDisconnected as gone:
            self._peer_gone, self._peer_close_code = True, gone.code
            cancel_scope.cancel()

    async def _write_single_frames(self, outbox: ClientOutbox) -> None:
        # Each frame takes a turn at the flush pacer (due at once: no interval), so a saturated loop serves
        # the writers round-robin a few per scheduler pass, and what a writer sends is taken right after its
        # turn comes. Whatever is queued is taken at once into a local backlog (no receive checkpoint, which
        # under load costs a whole scheduler pass). While the backlog's oldest entry can be at most two flush
        # intervals old the client gets every tick in order; past that (a saturated server, a slow client)
        # ticks a newer backlog tick of the same symbol supersedes are skipped, so it gets current prices
        # rather than old ones (the seq gap says so).
        flush_pacer = self._hub.flush_pacer
        lag_limit = 2 * flush_pacer.interval
        backlog: list[Entry] = []
        # A new client has nothing to send before its first reply: no turn until then (one wake-up less per
        # handshake, which a reconnect storm has thousands of).
        if not await self._wait_for_update(outbox, backlog):
            return  # close requested: the session is being cancelled
        taken_at = oldest_possible = trio.current_time()  # nothing in the backlog arrived before this
        while True:
            await self._transport.send(backlog.pop(0)[1])
            await flush_pacer.wait_turn(None)
            now = trio.current_time()
            if not backlog:
                oldest_possible = taken_at  # whatever is queued now arrived since the previous take
            _take_entries(outbox, backlog)
            if not backlog:
                if not await self._wait_for_update(outbox, backlog):
                    return
                now = oldest_possible = trio.current_time()
            elif now - oldest_possible > lag_limit and len(backlog) > 1:
                queued = len(backlog)
                backlog = _newest_per_key(backlog)
                self._hub.count_conflated(queued - len(backlog))
                oldest_possible = taken_at
            taken_at = now

    async def _write_batches(self, outbox: ClientOutbox) -> None:
        # Frames, not updates, cost server CPU: at most one frame per flush interval, so load makes
        # frames fuller rather than more. Waiting for the turn *before* taking what is queued costs one
        # wake-up per frame under load; an idle client's first update goes out at its next turn, which is
        # due at once (within a scheduler pass when nobody else is queued).
        flush_pacer = self._hub.flush_pacer
        entries: list[Entry] = []
        if not await self._wait_for_update(outbox, entries):  # a new client: no turn before its first reply
            return  # close requested: the session is being cancelled
        while True:
            flushed_at = trio.current_time()
            await self._transport.send("[" + ",".join([frame for _, frame in entries]) + "]")
            await flush_pacer.wait_turn(flushed_at)
            entries = []
            _take_entries(outbox, entries)
            if not entries and not await self._wait_for_update(outbox, entries):
                return

    async def _wait_for_update(self, outbox: ClientOutbox, backlog: list[Entry]) -> bool:
        """An idle writer: wait for the next entry, take a turn (a tick that wakes thousands of idle writers
        then costs a few per scheduler pass, not one pass with all of them), and take what is queued by then.
        False once the outbox is closed."""
        try:
            backlog.append(await outbox.receive.receive())
        except trio.EndOfChannel:
            return False
        await self._hub.flush_pacer.wait_turn(None)
        _take_entries(outbox, backlog)
        return True


def _take_entries(outbox: ClientOutbox, backlog: list[Entry]) -> None:
    """Append every entry queued right now to `backlog`, in order, without waiting."""
    receive = outbox.receive
    while True:
        try:
            backlog.append(receive.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    backlog.extend(outbox.take_pending_entries())  # conflated while behind: newer than anything queued


def _newest_per_key(backlog: list[Entry]) -> list[Entry]:
    """The backlog without the ticks and statuses a newer one of the same key supersedes; replies all stay."""
    newest = {key: index for index, (key, _) in enumerate(backlog) if key is not None}
    return [entry for index, entry in enumerate(backlog) if entry[0] is None or newest[entry[0]] == index]
