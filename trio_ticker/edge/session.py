"""One WebSocket client: its commands go to the hub, its outbox goes to the socket.

The session's own task reads commands; the writer (`delivery.writer`) runs in the session's
nursery. A close request (an eviction by the slow-client reaper, a limit, a server shutdown)
cancels the session's scope through the callback its outbox was built with, and so does a
disconnect, so exactly this client's tasks end. The hub never waits for a session; a session only
ever waits for its own client.
"""

from __future__ import annotations

import logging
import time

import trio

from ..delivery.hub import Hub
from ..delivery.outbox import ClientOutbox
from ..delivery.pacing import FlushPacer
from ..delivery.writer import write_batches, write_single_frames
from ..protocol import full as protocol
from ..protocol.full import ListSymbols, Ping, ProtocolError, Subscribe, Unsubscribe
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
        batch: bool = False,
        peer: str = "",
        guard: InboundGuard | None = None,
        buffer: int | None = None,
    ) -> None:
        self._transport = transport
        self._guard = guard
        self._hub = hub
        self._pacer = pacer
        self._close_timeout = close_timeout
        self._batch = batch
        self._peer = peer
        self._buffer = buffer
        self._peer_gone = False
        self._peer_close_code: int | None = None

    async def run(self, *, task_status: trio.TaskStatus[ClientOutbox] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the client until it leaves, is evicted, or the server asks it to go."""
        session_scope = trio.CancelScope()  # cancelled by a close request or a disconnect
        outbox = self._hub.connect(peer=self._peer, capacity=self._buffer, on_close_request=session_scope.cancel)
        log.info("event=client_connected client=%d peer=%s batch=%s", outbox.client_id, self._peer, self._batch)
        try:
            with session_scope:
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
                frame = await self._transport.receive()
                try:
                    await self._handle(self._decode(frame), outbox)
                except ProtocolError as error:
                    await outbox.send_control(error.to_frame())
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

    def _decode(self, frame: str | bytes) -> protocol.Command:
        guard = self._guard
        if guard is None:
            return protocol.decode_command(frame)
        guard.admit(frame, trio.current_time())
        return protocol.decode_command(frame, max_symbols=guard.max_symbols_per_message)

    async def _handle(self, command: protocol.Command, outbox: ClientOutbox) -> None:
        hub = self._hub
        match command:
            case Subscribe(symbols, request_id):
                if unknown := hub.unknown(symbols):
                    raise protocol.unknown_symbols_error(unknown, request_id)
                if self._guard is not None:
                    self._guard.check_subscriptions(outbox.subscriptions, symbols, request_id)
                # The ack is queued before the subscription exists, so it precedes every tick.
                await outbox.send_control(protocol.encode_subscribed(symbols, request_id))
                hub.subscribe(outbox, symbols)
            case Unsubscribe(symbols, request_id):
                if unknown := hub.unknown(symbols):
                    raise protocol.unknown_symbols_error(unknown, request_id)
                hub.unsubscribe(outbox, symbols)
                await outbox.send_control(protocol.encode_unsubscribed(symbols, request_id))
            case ListSymbols(request_id):
                await outbox.send_control(protocol.encode_symbols(hub.symbols, request_id))
            case Ping(request_id):
                await outbox.send_control(protocol.encode_pong(int(time.time() * 1000), request_id))

    async def _write_frames(self, outbox: ClientOutbox, cancel_scope: trio.CancelScope) -> None:
        try:
            if self._batch:
                await write_batches(outbox, self._transport.send, self._pacer)
            else:
                await write_single_frames(outbox, self._transport.send, self._pacer, self._hub.count_conflated)
        except ClientDisconnected as gone:
            self._peer_gone, self._peer_close_code = True, gone.code
            cancel_scope.cancel()
