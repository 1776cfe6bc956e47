"""The history's part of `GET /metrics`, read at scrape time (writing candles pays nothing for it)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .history import CandleHistory


class HistoryCollector(Collector):
    def __init__(self, history: CandleHistory) -> None:
        self._history = history

    def collect(self) -> Iterator[Metric]:
        history = self._history
        health = history.writer.health()
        up = GaugeMetricFamily("ticker_history_store_up", "1 while the candle store is open", labels=["store"])
        up.add_metric([health.store], 1.0 if health.state == "ok" else 0.0)
        yield up
        yield GaugeMetricFamily(
            "ticker_history_pending_candles", "Candles waiting in memory to be written", value=health.pending
        )
        for name, help_text, value in (
            ("ticker_history_candles_written", "Candle writes the store accepted", health.written),
            ("ticker_history_candles_dropped", "Unwritten candles dropped while the store was away", health.dropped),
            (
                "ticker_history_store_failures",
                "Failed attempts to open, read or write the candle store",
                health.failures,
            ),
            (
                "ticker_history_late_ticks",
                "Ticks left out of a candle: older than it, or out of range",
                history.book.late_ticks + history.live.unusable_ticks,
            ),
            ("ticker_candle_frames_out", "Candle frames offered to client outboxes", history.live.frames_out),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
        for task in history.tasks:
            yield from task.metrics()
