"""One WebSocket client: a reader task (commands -> hub) and a writer task (outbox -> socket).

Both run in the session's own nursery with a slow-consumer watchdog and a close watcher, so
a disconnect, an eviction or a server shutdown cancels exactly this client's tasks. The hub
never waits for a session; a session only ever waits for its own client.
"""

from __future__ import annotations

import logging
import time

import trio

from . import protocol
from .hub import Hub
from .limits import CloseConnection, InboundGuard
from .outbox import ClientOutbox
from .protocol import CloseCode, ListSymbols, Ping, ProtocolError, Subscribe, Unsubscribe
from .transport import ClientDisconnected, ClientTransport

log = logging.getLogger(__name__)


class ClientSession:
    def __init__(
        self,
        transport: ClientTransport,
        hub: Hub,
        *,
        slow_client_timeout: float,
        close_timeout: float,
        batch: bool = False,
        peer: str = "",
        guard: InboundGuard | None = None,
        buffer: int | None = None,
    ) -> None:
        self._transport = transport
        self._guard = guard
        self._hub = hub
        self._slow_client_timeout = slow_client_timeout
        self._close_timeout = close_timeout
        self._batch = batch
        self._peer = peer
        self._buffer = buffer
        self._peer_gone = False
        self._peer_close_code: int | None = None

    async def run(self, *, task_status: trio.TaskStatus[ClientOutbox] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the client until it leaves, is evicted, or the server asks it to go."""
        outbox = self._hub.connect(peer=self._peer, capacity=self._buffer)
        log.info("event=client_connected client=%d peer=%s batch=%s", outbox.client_id, self._peer, self._batch)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_commands, outbox, nursery.cancel_scope)
                nursery.start_soon(self._write_frames, outbox, nursery.cancel_scope)
                nursery.start_soon(self._evict_when_stuck, outbox)
                nursery.start_soon(self._stop_on_close_request, outbox, nursery.cancel_scope)
                task_status.started(outbox)
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
            "peer closed" if self._peer_gone else outbox.close_reason,
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
        receive = outbox.receive
        flush_clock = self._hub.flush_clock
        flushed_at_tick = -1
        try:
            while True:
                first: str | None = None
                # Conflated frames wait until the channel has drained; an overflow may also have
                # collapsed the channel into them while the previous frame was being sent.
                if not (outbox.has_pending and receive.statistics().current_buffer_used == 0):
                    try:
                        _, first = await receive.receive()
                    except trio.EndOfChannel:
                        return  # close requested; the close watcher ends the session
                if self._batch:
                    # Frames, not updates, cost server CPU: after one frame per flush-clock tick, later
                    # updates wait for the next tick, so load makes frames fuller rather than more.
                    await flush_clock.wait_tick_after(flushed_at_tick)
                    flushed_at_tick = flush_clock.ticks
                    await self._transport.send(_batch_frame(first, outbox))
                elif first is not None:
                    await self._transport.send(first)
                else:
                    for pending in outbox.take_pending():
                        await self._transport.send(pending)
        except ClientDisconnected as gone:
            self._peer_gone, self._peer_close_code = True, gone.code
            cancel_scope.cancel()

    async def _evict_when_stuck(self, outbox: ClientOutbox) -> None:
        await outbox.wait_behind_for(self._slow_client_timeout)
        log.warning(
            "event=client_evicted client=%d peer=%s reason=slow_consumer pending=%d",
            outbox.client_id,
            self._peer,
            outbox.pending_count(),
        )
        self._hub.evict(outbox, CloseCode.SLOW_CONSUMER, "slow consumer")

    async def _stop_on_close_request(self, outbox: ClientOutbox, cancel_scope: trio.CancelScope) -> None:
        await outbox.wait_close_requested()
        cancel_scope.cancel()


def _batch_frame(first: str | None, outbox: ClientOutbox) -> str:
    """Everything queued right now, as one JSON array frame."""
    frames = [] if first is None else [first]
    receive = outbox.receive
    while True:
        try:
            frames.append(receive.receive_nowait()[1])
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    frames.extend(outbox.take_pending())
    return "[" + ",".join(frames) + "]"
