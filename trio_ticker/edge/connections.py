"""Every socket the server holds: the `TICKER_MAX_CONNECTIONS` gate, and the abort a shutdown ends with.

The per-connection guard (hypercorn_guard.py) admits each accepted socket here before Hypercorn reads
a byte and releases it once Hypercorn has closed it. One place above the limit is kept so that a
WebSocket client can still be told 1013; sockets past that, or after `stop_accepting`, are reset at once.
An admitted socket then waits for its turn to start (`wait_admission`: the flush pacer's, handed in by
the app) before Hypercorn reads its request, so a burst of handshakes yields to the connected clients.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

REFUSAL_LOG_INTERVAL = 10.0  # seconds: a burst of refused sockets logs one line, not one per socket

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConnectionStatistics:
    open: int  # sockets held now: HTTP, WebSocket, still handshaking
    refused: int  # sockets reset at accept: over the limit, or the server shutting down
    failed: int  # connections closed because Hypercorn raised while serving them


class ConnectionRegistry:
    def __init__(
        self,
        limit: int,
        *,
        refusal_log_interval: float = REFUSAL_LOG_INTERVAL,
        wait_admission: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.limit = limit
        self._wait_admission = wait_admission  # None: every admitted socket starts at once
        self._tasks: dict[object, Callable[[], None]] = {}  # connection -> its abort, until its task ends
        self._open: set[object] = set()  # connections whose socket is not closed yet
        self._accepting = True
        self._refused = 0
        self._failed = 0
        self._refusal_log_interval = refusal_log_interval
        self._refused_since_logged = 0
        self._refusal_logged_at = -math.inf
        self._socket_closed = trio.Event()

    @property
    def full(self) -> bool:
        """Every place is taken (the newest socket holds the spare one): refuse a WebSocket with 1013."""
        return len(self._open) > self.limit

    def admit(self, connection: object, abort: Callable[[], None]) -> bool:
        """Hold `connection` (False: refused; the caller resets it). `abort` closes it and ends its task."""
        if self._accepting and len(self._open) <= self.limit:
            self._tasks[connection] = abort
            self._open.add(connection)
            return True
        self._refused += 1
        self._refused_since_logged += 1
        now = trio.current_time()
        if now - self._refusal_logged_at >= self._refusal_log_interval:
            log.warning(
                "event=connections_refused reason=%s open=%d limit=%d refused=%d",
                "connection_limit" if self._accepting else "shutting_down",
                len(self._open),
                self.limit,
                self._refused_since_logged,
            )
            self._refusal_logged_at = now
            self._refused_since_logged = 0
        return False

    async def wait_admission(self) -> None:
        """Return once an admitted socket may start: its handshake's turn among the connected clients' frames."""
        if self._wait_admission is not None:
            await self._wait_admission()

    def socket_closed(self, connection: object) -> None:
        """Its socket is closed: it no longer counts, though its task may run on a moment (idempotent)."""
        if connection in self._open:
            self._open.discard(connection)
            self._socket_closed.set()
            self._socket_closed = trio.Event()

    def finished(self, connection: object) -> None:
        """Its task has ended (idempotent)."""
        self.socket_closed(connection)
        self._tasks.pop(connection, None)

    def count_failure(self) -> None:
        self._failed += 1

    def stop_accepting(self) -> None:
        """Refuse every socket accepted from now on (shutdown)."""
        self._accepting = False

    async def wait_no_open_sockets(self) -> None:
        while self._open:
            await self._socket_closed.wait()

    def abort_all(self) -> int:
        """Reset every socket still open and end every connection task still running; returns how many."""
        tasks, self._tasks = self._tasks, {}
        self._open.clear()
        self._socket_closed.set()
        self._socket_closed = trio.Event()
        for abort in tasks.values():
            abort()
        return len(tasks)

    def statistics(self) -> ConnectionStatistics:
        return ConnectionStatistics(open=len(self._open), refused=self._refused, failed=self._failed)
