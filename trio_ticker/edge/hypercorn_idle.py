"""Hypercorn's per-connection keep-alive timer, as an entry in the run's connection timers instead of a task.

Hypercorn's trio `TCPServer` starts a task as each connection opens that waits `keep_alive_timeout` (or until
the worker terminates) and then closes the connection, and cancels that task when a request arrives: a spawn
and two scheduler steps of every WebSocket handshake. `install()` makes it an entry in `connection_timers`:
the same close at the same moment, started in the connection's task group only if it falls due.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import hypercorn.trio.tcp_server
import trio
from hypercorn.trio.worker_context import TrioSingleTask

from .connection_timers import Timer, connection_timers


class IdleTimer:
    """One connection's keep-alive timer: `restart(task_group, server._idle_timeout)` arms it, `stop` disarms it.

    Neither waits. Hypercorn only ever hands it its TCPServer's own `_idle_timeout`, whose wait the timer does
    instead; what that method does after its wait (a shielded close) runs in the connection's task group.
    """

    def __init__(self) -> None:
        self._timer: Timer | None = None

    async def restart(self, task_group: Any, action: Callable[[], Awaitable[None]]) -> None:
        await self.stop()
        server = action.__self__  # type: ignore[attr-defined]  # the bound TCPServer._idle_timeout
        self._timer = connection_timers().call_at(
            trio.current_time() + server.config.keep_alive_timeout,
            # A weak reference: a connection that closed by itself is not kept for the rest of the timeout.
            _start_close(weakref.ref(server)),
            or_when=server.context.terminated,  # as Hypercorn's wait returns: shutting down closes idle ones
        )

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _start_close(server_ref: weakref.ref[Any]) -> Callable[[], None]:
    def start_close() -> None:
        server = server_ref()
        nursery = getattr(getattr(server, "_task_group", None), "_nursery", None)
        if nursery is None:
            return  # the connection is gone
        with contextlib.suppress(RuntimeError):  # its task group is closing: the connection is ending anyway
            nursery.start_soon(_close, server)

    return start_close


async def _close(server: Any) -> None:
    # What Hypercorn's `_idle_timeout` does after its wait.
    with trio.CancelScope(shield=True):
        await server._initiate_server_close()


def install() -> None:
    """Make every connection's `TCPServer` use `IdleTimer`; calling it again changes nothing."""
    if hypercorn.trio.tcp_server.TrioSingleTask is TrioSingleTask:  # type: ignore[attr-defined]
        hypercorn.trio.tcp_server.TrioSingleTask = IdleTimer  # type: ignore[attr-defined,assignment]
