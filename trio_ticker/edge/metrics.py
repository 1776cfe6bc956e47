"""`GET /metrics`: Prometheus text from a registry owned by the app (never the global one).

Everything but the tick-age histogram is read at scrape time from the hub, the sources' last
statuses, the open connections and the limit counters, so serving ticks pays nothing for it; the
histogram observes a sample of ticks (every 32nd, see `fanout.TICK_SAMPLE_MASK`): the hub is built
with `observe_tick_age` as its sampler.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..delivery.hub import Hub
from ..model import SourceState, Tick
from ..sources.supervise import Supervisor
from .connections import ConnectionRegistry
from .limits import LimitCounters

TICK_AGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class TickerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._tick_age = Histogram(
            "ticker_tick_age_seconds",
            "Source event time to fan-out, over a sample of ticks (every 32nd)",
            buckets=TICK_AGE_BUCKETS,
            registry=self.registry,
        )

    def collect_at_scrape(self, collector: Collector) -> None:
        """Report what `collector` reads at each scrape (the `ScrapeTimeCollector`, the history's)."""
        self.registry.register(collector)

    def observe_tick_age(self, tick: Tick) -> None:
        # Upstream clocks may run ahead of ours: a negative age counts as zero.
        self._tick_age.observe(max(0.0, time.time() - tick.ts / 1000))

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True, eq=False)
class ScrapeTimeCollector(Collector):
    """What /metrics reads at each scrape; the composition root builds it from the parts it wired."""

    hub: Hub
    sources: Sequence[Supervisor]
    connections: Callable[[], int]  # open WebSocket connections (the /ws endpoint's count)
    counters: LimitCounters
    sockets: ConnectionRegistry

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        statistics = hub.statistics()
        yield GaugeMetricFamily("ticker_clients", "Clients registered with the hub", value=statistics.clients)
        yield GaugeMetricFamily(
            "ticker_connections",
            "Open WebSocket connections (including evicted ones not yet closed)",
            value=self.connections(),
        )
        sockets = self.sockets.statistics()
        yield GaugeMetricFamily(
            "ticker_sockets",
            "Sockets held: HTTP, WebSocket and handshaking (TICKER_MAX_CONNECTIONS)",
            value=sockets.open,
        )
        yield GaugeMetricFamily(
            "ticker_subscriptions", "Client subscriptions, all symbols", value=statistics.subscriptions
        )
        for name, help_text, value in (
            ("ticker_messages_out", "Tick frames offered to client outboxes", statistics.messages_out),
            ("ticker_conflated", "Unsent ticks replaced by a newer one for a slow client", statistics.conflated),
            ("ticker_evicted", "Clients closed as slow consumers (4008)", statistics.evicted),
            ("ticker_sockets_refused", "Sockets reset at accept: over the limit or shutting down", sockets.refused),
            (
                "ticker_connections_failed",
                "Connections closed because the HTTP server raised serving them",
                sockets.failed,
            ),
            (
                "ticker_unusable_prices",
                "Price updates the hub dropped: a price outside the accepted range",
                statistics.unusable_prices,
            ),
            ("ticker_rate_limited", "Client messages refused with rate_limited", self.counters.rate_limited),
            (
                "ticker_too_many_subscriptions",
                "Subscribe messages refused with too_many_subscriptions",
                self.counters.too_many_subscriptions,
            ),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
        yield _labelled_counter(
            "ticker_limit_closes", "Connections closed for breaking a limit", "reason", self.counters.closed
        )
        yield _labelled_counter(
            "ticker_handshakes_refused", "WebSocket handshakes refused", "reason", self.counters.handshakes_refused
        )
        ticks_in: dict[str, int] = {}
        for tick in hub.all_latest().values():  # `seq` counts every update of its symbol
            ticks_in[tick.source] = ticks_in.get(tick.source, 0) + tick.seq
        yield _labelled_counter("ticker_ticks_in", "Price updates received, by source", "source", ticks_in)
        states = GaugeMetricFamily(
            "ticker_source_state", "1 for each source's current state", labels=["source", "state"]
        )
        reconnects = CounterMetricFamily(
            "ticker_source_reconnects", "Upstream reconnects, by source", labels=["source"]
        )
        for name, status in sorted(hub.source_statuses().items()):
            for state in SourceState:
                states.add_metric([name, state.value], 1.0 if status.state is state else 0.0)
            reconnects.add_metric([name], status.reconnects)
        yield states
        yield reconnects
        rejected = CounterMetricFamily(
            "ticker_upstream_rejected",
            "Upstream messages (or trades in one) a source refused, by kind",
            labels=["source", "kind"],
        )
        for source in self.sources:
            for kind, count in sorted(source.statistics().rejected.items()):
                rejected.add_metric([source.name, kind], count)
        yield rejected


def _labelled_counter(name: str, help_text: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, help_text, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family
