"""Hypercorn's per-connection idle timer, started without a lock or a start handshake.

Hypercorn's trio `TCPServer` starts its keep-alive timer task as each connection opens and stops it when the
request arrives, each time under a lock and with `nursery.start`: three of the ~24 scheduler steps a WebSocket
handshake and subscription took with it (docs/benchmarks.md, "Connect storms"). `install()` swaps in a timer that does
the same with a cancel scope made up front and `start_soon`, neither of which waits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import hypercorn.trio.tcp_server
import trio
from hypercorn.trio.worker_context import TrioSingleTask


class IdleTimer:
    """Runs one `action` at a time in the connection's task group; `restart` replaces it, `stop` cancels it.

    Neither method waits, so no lock is needed: no other call can run in between. An action cancelled before
    its task first ran ends at its first checkpoint, as Hypercorn's does when cancelled while it waits.
    """

    def __init__(self) -> None:
        self._scope: trio.CancelScope | None = None

    async def restart(self, task_group: Any, action: Callable[[], Awaitable[None]]) -> None:
        await self.stop()
        scope = self._scope = trio.CancelScope()
        task_group._nursery.start_soon(_run_in, scope, action)

    async def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
        self._scope = None


async def _run_in(scope: trio.CancelScope, action: Callable[[], Awaitable[None]]) -> None:
    with scope:
        await action()


def install() -> None:
    """Make every connection's `TCPServer` use `IdleTimer`; calling it again changes nothing."""
    if hypercorn.trio.tcp_server.TrioSingleTask is TrioSingleTask:  # type: ignore[attr-defined]
        hypercorn.trio.tcp_server.TrioSingleTask = IdleTimer  # type: ignore[attr-defined,assignment]
