"""`CandleHistory`: the one object the service, the hub and the REST route hold for candles.

It runs the live candle task and the writer (and, when built with them, the backfill and the
generated demo past), answers `/candles` from the store with what is still only in memory laid
over it (memory's alone while the store is away), and reports its state for /healthz and /metrics.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio
from prometheus_client.core import Metric

from .candles import Candle
from .live import LiveCandles
from .query import CandleQuery
from .store import CandleStoreUnavailable
from .writer import CandleWriter, merge_for_answer

READ_ATTEMPTS = 3
"""Reads of the store for one answer, at most: a write that ended during a read has left memory and may have
reached the store only after the read looked, so the answer reads again."""


@dataclass(frozen=True, slots=True)
class CandleAnswer:
    """What `/candles` serves: the candles, and whether the store could be read (if not, only memory's)."""

    candles: list[Candle]
    store_available: bool


class HistoryTask(Protocol):
    """A part with a task of its own (the backfill) and a few numbers for /healthz and /metrics."""

    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...

    def health(self) -> dict[str, Any]: ...

    def metrics(self) -> Iterator[Metric]: ...


class CandleHistory:
    def __init__(
        self,
        live: LiveCandles,
        writer: CandleWriter,
        *,
        tasks: Sequence[HistoryTask] = (),
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.live = live
        self.book = live.book
        self.writer = writer
        self.tasks = tuple(tasks)
        self._wall_clock = wall_clock

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Started at once: neither a slow store nor a slow upstream holds up the prices."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.writer.run)
            await nursery.start(self.live.run)
            for task in self.tasks:
                await nursery.start(task.run)
            task_status.started()

    async def candles(self, query: CandleQuery) -> CandleAnswer:
        """The stored candles of the query's range, with pending writes and the open candle laid over them (on a
        node that does not write, its recent candles only where the store has none); when the store cannot be
        read, only those (the open candle and the recent ones not written yet)."""
        symbol, interval, start, end, limit = query.symbol, query.interval, query.start, query.end, query.limit
        stored: list[Candle] | None = None
        for _ in range(READ_ATTEMPTS):
            written = self.writer.written
            try:
                stored = await self.writer.read(symbol, interval, start=start, end=end, limit=limit)
            except CandleStoreUnavailable:
                stored = None
                break
            if self.writer.written == written:
                break  # no write ended during the read: what it missed is still in memory
        now = int(self._wall_clock() * 1000)
        current = self.book.current(symbol, interval)
        laid = merge_for_answer(self.writer.lay_over(stored, symbol, interval), [current] if current else [])
        answer = [
            candle if candle is current else dataclasses.replace(candle, closed=candle.close_time < now)
            for candle in laid
            if (start is None or candle.open_time >= start) and (end is None or candle.open_time <= end)
        ]
        return CandleAnswer(answer[:limit] if start is not None else answer[-limit:], stored is not None)

    def health(self) -> dict[str, Any]:
        writer = dataclasses.asdict(self.writer.health())
        parts: dict[str, Any] = {}
        for task in self.tasks:
            parts.update(task.health())
        live = {"late_ticks": self.book.late_ticks + self.live.unusable_ticks, "candle_frames": self.live.frames_out}
        return {**writer, **live, **parts}
