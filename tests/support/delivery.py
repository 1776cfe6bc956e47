"""Delivery without a server: a hub with its own flush pacer and slow-client reaper, wired as
`trio_ticker.app.assemble` wires them, and sessions over any transport; tests publish directly."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import trio

from trio_ticker.delivery.demand import SymbolDemand
from trio_ticker.delivery.hub import Hub
from trio_ticker.delivery.pacing import FlushPacer
from trio_ticker.delivery.recovery import RecoveryLimits
from trio_ticker.delivery.slow_clients import SlowClientReaper
from trio_ticker.edge.session import ClientSession
from trio_ticker.edge.transport import ClientTransport
from trio_ticker.history.live import LiveCandles
from trio_ticker.model import Ingest


class Delivery:
    def __init__(
        self,
        symbols: Iterable[str],
        *,
        client_buffer: int,
        batch_flush_interval: float = 0.0,
        slow_client_timeout: float = 10.0,
        candles: LiveCandles | None = None,
        epoch: str = "",
        recovery: RecoveryLimits | None = None,
        demand: SymbolDemand | None = None,
    ) -> None:
        self.pacer = FlushPacer(batch_flush_interval)
        self.reaper = SlowClientReaper(slow_client_timeout)
        self.hub = Hub(
            symbols,
            client_buffer=client_buffer,
            reaper=self.reaper,
            candles=candles,
            epoch=epoch,
            recovery=recovery,
            demand=demand,
        )

    def session(self, transport: ClientTransport, **options: Any) -> ClientSession:
        """A session of this hub and pacer; `options` as ClientSession takes them (close_timeout is 1 s here)."""
        options.setdefault("close_timeout", 1.0)
        return ClientSession(transport, self.hub, self.pacer, **options)

    async def start(self, nursery: trio.Nursery) -> None:
        """Run the pacer, the reaper and the hub with no sources, as TickerService does. Without this the
        pacer lets every writer through at once and nobody is evicted."""
        _, no_sources = trio.open_memory_channel[Ingest](0)
        await nursery.start(self.pacer.run)
        await nursery.start(self.reaper.run, self.hub.evict_slow_client)
        await nursery.start(self.hub.run, no_sources)
