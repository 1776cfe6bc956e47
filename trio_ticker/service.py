"""The root service: one nursery that owns the hub and every source.

`TickerService.run` is startable: it reports started only once the hub is consuming and every
source has settled (live, failed, or waiting out a rate limit), so the app serves the first prices
at once and no single upstream holds it up. The app's lifespan starts it once; tests start it directly.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import trio

from .history.build import build_history
from .hub import Hub
from .model import Ingest
from .settings import Settings
from .sources.build import build_supervised_sources
from .sources.supervise import SourceStatistics

if TYPE_CHECKING:
    from .scaleout.node import ScaleOutNode

log = logging.getLogger(__name__)


class Source(Protocol):
    name: str
    symbols: tuple[str, ...]

    async def run(
        self,
        updates: trio.MemorySendChannel[Ingest],
        *,
        task_status: trio.TaskStatus[None] = ...,
    ) -> None: ...

    def statistics(self) -> SourceStatistics: ...


def build_sources(settings: Settings, hub: Hub | None = None) -> list[Source]:
    """Every source wrapped in the shared supervisor: the demo, or Binance and/or Finnhub live.

    With a hub, the demo walk resumes from the prices the hub last published (e.g. a new ingest leader).
    """
    return list(build_supervised_sources(settings, latest_price=hub.latest_price if hub else None))


class TickerService:
    def __init__(self, settings: Settings, sources: list[Source] | None = None) -> None:
        self.settings = settings
        self.history = build_history(settings, writing=self._writes_history)  # None with TICKER_HISTORY=off
        self.hub = Hub(
            settings.symbols,
            client_buffer=settings.client_buffer,
            batch_flush_interval=settings.batch_flush_interval,
            slow_client_timeout=settings.slow_client_timeout,
            candles=self.history.live if self.history is not None else None,
        )
        self.sources = sources if sources is not None else build_sources(settings, self.hub)
        self._cancel_scope: trio.CancelScope | None = None
        # With TICKER_REDIS_URL the hub follows Redis and the sources run only on the elected leader.
        self.scale_out: ScaleOutNode | None = None
        if settings.redis_url is not None:
            from .scaleout.node import ScaleOutNode  # only scale-out deployments import coredis

            self.scale_out = ScaleOutNode(settings, self.hub, self.sources)
        # WebSocket connections still open, including evicted ones whose socket is not yet closed.
        self.open_connections = 0

    async def run(self, *, task_status: trio.TaskStatus[TickerService] = trio.TASK_STATUS_IGNORED) -> None:
        send_ingest, receive_ingest = trio.open_memory_channel[Ingest](self.settings.ingest_buffer)
        try:
            async with trio.open_nursery() as nursery:
                self._cancel_scope = nursery.cancel_scope
                if self.history is not None:
                    await nursery.start(self.history.run)
                await nursery.start(self.hub.run, receive_ingest)
                if self.scale_out is not None:
                    await nursery.start(self.scale_out.run, send_ingest)
                else:
                    async with send_ingest:
                        for source in self.sources:
                            await nursery.start(source.run, send_ingest.clone())
                            symbols = ",".join(source.symbols)
                            log.info("event=source_started source=%s symbols=%s", source.name, symbols)
                task_status.started(self)
        finally:
            log.info("event=service_stopped")

    def _writes_history(self) -> bool:
        """One candle writer per deployment: this process, or with Redis the ingest leader while it leads."""
        if self.scale_out is None:
            return True
        return self.scale_out.leader is not None and self.scale_out.leader.leading

    def stop(self) -> None:
        """Cancel the sources and the hub; `run` then returns."""
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
