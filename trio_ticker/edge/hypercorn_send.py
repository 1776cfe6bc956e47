"""Hypercorn's per-connection send, with one scheduler pass per frame instead of two.

Hypercorn 0.18's trio `TCPServer.protocol_send` takes its send lock with `async with`, and an uncontended
`trio.Lock.acquire` still yields a whole scheduler pass; the shielded `send_all` after it yields another.
Every frame, the 101 of every handshake and every ping paid both. `install()` takes a free lock without that
pass (still raising Cancelled first, as `acquire` does) and parks in the lock's queue when it is held.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.tcp_server import TCPServer

ProtocolSend = Callable[[Any, Event], Awaitable[None]]


def install() -> None:
    """Patch `TCPServer.protocol_send` once per process; calling it again changes nothing."""
    if getattr(TCPServer.protocol_send, "takes_a_free_lock_at_once", False):
        return
    TCPServer.protocol_send = _send_without_a_lock_pass(TCPServer.protocol_send)  # type: ignore[method-assign,assignment]


def _send_without_a_lock_pass(hypercorn_send: ProtocolSend) -> ProtocolSend:
    async def protocol_send(server: Any, event: Event) -> None:
        if not isinstance(event, RawData):
            await hypercorn_send(server, event)  # Closed and Updated: Hypercorn's own handling
            return
        lock: trio.Lock = server.send_lock
        if lock.locked():
            await lock.acquire()  # another send is in flight: wait behind it, in order
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
            lock.acquire_nowait()  # the pass `acquire` would yield here is left to `send_all`
        try:
            try:
                with trio.CancelScope(shield=True):
                    await server.stream.send_all(event.data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await server.protocol.handle(Closed())
        finally:
            lock.release()

    protocol_send.takes_a_free_lock_at_once = True  # type: ignore[attr-defined]
    protocol_send.__wrapped__ = hypercorn_send  # type: ignore[attr-defined]
    return protocol_send
