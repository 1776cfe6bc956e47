"""Hypercorn's WebSocket ping loop, made to end the moment its connection closes.

Hypercorn 0.18 pings at the handshake, then sleeps a whole ping interval before it looks at `closed` again,
and the connection's task group (which closes the socket last) waits for that loop: every departed client kept
its socket, its tasks and their memory for up to one interval (docs/benchmarks.md, "Churn").
`install()` swaps in a loop that waits one interval before each ping and is cancelled when the stream closes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Coroutine
from typing import Any

import trio
from hypercorn.protocol.events import Event
from hypercorn.protocol.ws_stream import WSStream
from wsproto.events import Ping

Handler = Callable[[WSStream, Event], Coroutine[Any, Any, None]]
PingLoop = Callable[[WSStream], Coroutine[Any, Any, None]]
PingLoops = weakref.WeakKeyDictionary[WSStream, trio.CancelScope]


def install() -> None:
    """Patch `WSStream` once per process; calling it again changes nothing."""
    if getattr(WSStream._send_pings, "ends_on_close", False):
        return
    ping_loops: PingLoops = weakref.WeakKeyDictionary()
    WSStream._send_pings = _ping_loop(ping_loops, WSStream._send_pings)  # type: ignore[method-assign,assignment]
    WSStream.handle = _handle_then_stop_pings(ping_loops, WSStream.handle)  # type: ignore[method-assign,assignment]


def _ping_loop(ping_loops: PingLoops, hypercorn_loop: PingLoop) -> PingLoop:
    async def send_pings_until_closed(stream: WSStream) -> None:
        # No ping at the handshake: a new client has just proved it is there, and in a reconnect storm that
        # ping is one send (and one pong read) more per connection while thousands wait for their handshake.
        with trio.CancelScope() as scope:
            ping_loops[stream] = scope
            while not stream.closed:
                interval = stream.config.websocket_ping_interval  # read afresh: JitteredPingConfig draws each one
                if interval is None:
                    return
                await stream.context.sleep(interval)
                if stream.closed:
                    break
                await stream._send_wsproto_event(Ping())

    send_pings_until_closed.ends_on_close = True  # type: ignore[attr-defined]
    send_pings_until_closed.__wrapped__ = hypercorn_loop  # type: ignore[attr-defined]
    return send_pings_until_closed


def _handle_then_stop_pings(ping_loops: PingLoops, hypercorn_handle: Handler) -> Handler:
    async def handle(stream: WSStream, event: Event) -> None:
        await hypercorn_handle(stream, event)
        if stream.closed and (scope := ping_loops.pop(stream, None)) is not None:
            scope.cancel()

    handle.__wrapped__ = hypercorn_handle  # type: ignore[attr-defined]
    return handle
