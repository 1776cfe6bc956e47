"""On-demand delivery without a server: a hub whose demand owner routes to real sources (supervised), fed
through a bounded channel as `TickerService` feeds it, and `ListedDirectory`, a directory of given symbols."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import trio

from tests.support.delivery import Delivery
from trio_ticker.delivery.demand import SymbolDemand
from trio_ticker.model import Ingest, Listing
from trio_ticker.sources.retry import RetryPolicy
from trio_ticker.sources.source import Source
from trio_ticker.sources.supervise import Supervisor


class ListedDirectory:
    """Every symbol in `symbols` is listed by `source` (what the fake upstream lists, in a test)."""

    def __init__(self, source: str, symbols: Iterable[str], *, precision: int | None = None) -> None:
        self._listings = {symbol: Listing(symbol, source, symbol, precision) for symbol in symbols}

    def lookup(self, symbol: str) -> Listing | None:
        return self._listings.get(symbol)


class DemandDelivery(Delivery):
    """`Delivery` plus a `SymbolDemand` over `sources`, each run by a `Supervisor` into the hub."""

    def __init__(
        self,
        sources: Sequence[Source],
        directory: ListedDirectory,
        *,
        always_on: tuple[str, ...],
        linger: float = 60.0,
        max_active: int = 100,
        client_buffer: int = 64,
        ingest_buffer: int = 1000,
    ) -> None:
        self.supervisors = [
            Supervisor(source, stale_after=None, policy=RetryPolicy(initial=0.05)) for source in sources
        ]
        self.demand = SymbolDemand(
            directory,
            always_on=always_on,
            linger=linger,
            max_active=max_active,
            streams=self.supervisors,
            on_retired=lambda symbol: self.hub.retire(symbol),
        )
        super().__init__(always_on, client_buffer=client_buffer, demand=self.demand)
        self._ingest_buffer = ingest_buffer

    async def start(self, nursery: trio.Nursery) -> None:
        send, receive = trio.open_memory_channel[Ingest](self._ingest_buffer)
        await nursery.start(self.pacer.run)
        await nursery.start(self.reaper.run, self.hub.evict_slow_client)
        await nursery.start(self.demand.run)
        await nursery.start(self.hub.run, receive)
        async with send:
            for supervisor in self.supervisors:
                await nursery.start(supervisor.run, send.clone())
