"""The root service: one nursery that owns delivery (the flush pacer, the slow-client reaper, the
hub), the candle history (unless TICKER_HISTORY=off), the symbol catalogue, the symbol demand's linger
and the ingest route that feeds the hub.

`TickerService.run` is startable: it reports started only once the hub is consuming and the
ingest route has started (every local source settled: live, failed, or waiting out a rate limit;
or the Redis snapshot loaded), so the app serves the first prices at once and no single upstream
holds it up. The app's lifespan starts it once; tests start it directly. Which ingest route runs
is the composition root's choice (app.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

import trio

from ..delivery.demand import SymbolDemand, SymbolStream
from ..delivery.hub import Hub
from ..delivery.pacing import FlushPacer
from ..delivery.slow_clients import SlowClientReaper
from ..history.history import CandleHistory
from ..history.numbering import PersistedNumbering
from ..model import Ingest

log = logging.getLogger(__name__)


class IngestRoute(Protocol):
    """How ticks reach the hub: `ingest.local.LocalIngest` or `ingest.scaleout.node.ScaleOutNode`."""

    async def run(
        self,
        updates: trio.MemorySendChannel[Ingest],
        *,
        task_status: trio.TaskStatus[None] = ...,
    ) -> None:
        """Send into `updates` until cancelled; started once the hub has what it needs to serve."""

    def symbol_streams(self) -> Sequence[SymbolStream]:
        """Where on-demand symbols go: the local sources, or (scale-out) this worker's interest for the leader."""

    def health(self) -> dict[str, Any]:
        """Blocks of its own for /healthz (the Redis connection), by name; none for local ingest."""

    def leads(self) -> bool:
        """Whether this process writes what a deployment writes once (the candles): always for local ingest,
        with Redis while it is the ingest leader."""


class Startable(Protocol):
    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...


@dataclass(eq=False)
class TickerService:
    hub: Hub
    ingest: IngestRoute
    _: KW_ONLY
    pacer: FlushPacer
    reaper: SlowClientReaper
    ingest_buffer: int
    history: CandleHistory | None = None  # None with TICKER_HISTORY=off
    catalogue: Startable | None = None  # the symbol catalogue's refresh task
    numbering: PersistedNumbering | None = None  # the epoch and seqs kept across restarts (the SQLite store)
    demand: SymbolDemand | None = None  # None: the configured symbols only
    _cancel_scope: trio.CancelScope | None = field(default=None, init=False)

    async def run(self, *, task_status: trio.TaskStatus[TickerService] = trio.TASK_STATUS_IGNORED) -> None:
        send_ingest, receive_ingest = trio.open_memory_channel[Ingest](self.ingest_buffer)
        try:
            async with trio.open_nursery() as nursery:
                self._cancel_scope = nursery.cancel_scope
                await nursery.start(self.pacer.run)
                await nursery.start(self.reaper.run, self.hub.evict_slow_client)
                if self.numbering is not None:
                    self.hub.set_epoch(await nursery.start(self.numbering.run))
                if self.history is not None:
                    await nursery.start(self.history.run)
                if self.catalogue is not None:  # started before its first fetch: configured symbols serve meanwhile
                    await nursery.start(self.catalogue.run)
                if self.demand is not None:
                    await nursery.start(self.demand.run)
                await nursery.start(self.hub.run, receive_ingest)
                await nursery.start(self.ingest.run, send_ingest)
                task_status.started(self)
        finally:
            log.info("event=service_stopped")

    def stop(self) -> None:
        """Cancel the ingest route and delivery; `run` then returns."""
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
