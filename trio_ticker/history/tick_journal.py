"""The tick journal: every tick the hub publishes, kept in the data directory so a restart can still replay it.

`record` (the hub's, per published tick) only appends to a bounded batch; `run` writes the batch every flush
interval and at a clean stop, pruned to the recovery bounds. At start it hands the hub, as `PastTick`s, the rows of
the numbering's epoch still within those bounds, so a client that comes back after a restart recovers what the old
process published. docs/architecture.md ("Epoch and seq across restarts") has the reasoning.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..model import PastTick, Tick
from ..sources.retry import Backoff, Jitter, RetryPolicy
from ..tick_codec import EntryError, decode_tick, encode_tick_body
from .store import CandleStoreUnavailable

log = logging.getLogger(__name__)

FINAL_FLUSH_TIMEOUT = 2.0  # seconds a shutdown waits for the last write


@dataclass(frozen=True, slots=True)
class JournalRow:
    epoch: str
    symbol: str
    seq: int
    published_ms: int  # wall clock, epoch milliseconds
    body: str  # `tick_codec`'s body: the tick's other fields


def journal_row(epoch: str, tick: Tick, published_ms: int) -> JournalRow:
    return JournalRow(epoch, tick.symbol, tick.seq, published_ms, encode_tick_body(tick).decode())


def past_tick(row: JournalRow, now_ms: int) -> PastTick:
    """The row's tick, aged by how long ago it was published (0 for a clock that went back); `EntryError` for a
    body this version did not write."""
    return PastTick(decode_tick(row.symbol, row.seq, row.body, stale=False), max(0, now_ms - row.published_ms) / 1000)


def oldest_kept_ms(now_ms: int, window: float) -> int:
    """The publish time of the oldest row still worth keeping: recovery replays nothing older than `window`."""
    return now_ms - round(window * 1000)


class JournalStore(Protocol):
    async def load(self, epoch: str, *, not_before_ms: int, per_symbol: int) -> list[JournalRow]:
        """The newest `per_symbol` rows of each symbol of `epoch` since `not_before_ms`, in seq order; rows of
        any other epoch are deleted."""

    async def append(self, rows: Sequence[JournalRow], *, not_before_ms: int, per_symbol: int) -> None:
        """Store `rows` and prune to the same bounds, atomically."""


OpenJournalStore = Callable[[], AbstractAsyncContextManager[JournalStore]]


class TickJournal:
    def __init__(
        self,
        open_store: OpenJournalStore,
        *,
        stored_epoch: Callable[[], str | None],
        on_past: Callable[[PastTick], None],
        max_ticks: int,
        window: float,
        flush_interval: float,
        pending_limit: int,
        policy: RetryPolicy,
        jitter: Jitter | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`stored_epoch()`: the numbering's epoch once stored, or None for one no restart continues (nothing is
        journaled then). `on_past` is the hub's ingest; `max_ticks` and `window` are the recovery bounds."""
        self._open_store = open_store
        self._stored_epoch = stored_epoch
        self._on_past = on_past
        self._max_ticks = max_ticks
        self._window = window
        self._flush_interval = flush_interval
        self._pending_limit = pending_limit
        self._backoff = Backoff(policy, jitter)
        self._wall_clock = wall_clock
        self._epoch: str | None = None  # set once `run` knows the epoch is stored: from then on ticks are kept
        self._pending: deque[tuple[Tick, int]] = deque()  # (tick, published ms), oldest first
        self.state = "off"
        self.loaded = 0
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self.unreadable = 0

    def record(self, tick: Tick) -> None:
        """Keep a published tick for the next write; never waits. Full (the disk is slow): the oldest goes."""
        if self._epoch is None:
            return
        pending = self._pending
        if len(pending) >= self._pending_limit:
            pending.popleft()
            self.dropped += 1
            if self.dropped == 1:
                log.warning("event=tick_journal_full limit=%d action=dropping_oldest", self._pending_limit)
        pending.append((tick, self._now_ms()))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Started once the stored rows are handed to the hub (or their first read failed); then writes until
        cancelled, and once more, bounded, after. Started at once, journaling nothing, for an unstored epoch."""
        epoch = self._stored_epoch()
        if epoch is None:
            log.info("event=tick_journal_off reason=epoch_not_stored")
            task_status.started()
            return
        self._epoch = epoch
        started = False
        while True:
            try:
                async with self._open_store() as store:
                    if not started:
                        self._hand_over(await store.load(epoch, **self._bounds()))
                        started = True
                        task_status.started()
                    self._opened()
                    await self._write_forever(store)
            except CandleStoreUnavailable as error:
                self._failed(str(error))
            if not started:  # the first open or read failed: the hub starts without the stored ticks
                started = True
                task_status.started()
            await trio.sleep(self._backoff.delay())

    def _hand_over(self, rows: Sequence[JournalRow]) -> None:
        now_ms = self._now_ms()
        for row in rows:
            try:
                self._on_past(past_tick(row, now_ms))
            except EntryError as error:
                self.unreadable += 1
                if self.unreadable == 1:
                    log.warning(
                        "event=tick_journal_row_unreadable symbol=%s seq=%d error=%s further=counted_only",
                        row.symbol,
                        row.seq,
                        error,
                    )
        self.loaded = len(rows) - self.unreadable
        log.info("event=tick_journal_loaded epoch=%s ticks=%d", self._epoch, self.loaded)

    async def _write_forever(self, store: JournalStore) -> None:
        try:
            while True:
                await trio.sleep(self._flush_interval)
                await self._flush(store)
                self._backoff.reset()
        except trio.Cancelled:
            # A clean stop: what was published since the last write goes too (the hub may run one more step).
            with trio.CancelScope(shield=True), trio.move_on_after(FINAL_FLUSH_TIMEOUT):
                try:
                    while self._pending:
                        await self._flush(store)
                except CandleStoreUnavailable as error:
                    log.warning(
                        "event=tick_journal_final_flush_failed error=%r pending=%d", str(error), len(self._pending)
                    )
            raise

    async def _flush(self, store: JournalStore) -> None:
        """Write every pending tick in one call; on failure they stay pending, ahead of newer ones."""
        if not self._pending:
            return
        assert self._epoch is not None
        batch = list(self._pending)
        self._pending.clear()
        rows = [journal_row(self._epoch, tick, published_ms) for tick, published_ms in batch]
        try:
            await store.append(rows, **self._bounds())
        except BaseException:
            self._pending.extendleft(reversed(batch))
            excess = len(self._pending) - self._pending_limit
            for _ in range(max(0, excess)):
                self._pending.popleft()
            self.dropped += max(0, excess)
            raise
        self.written += len(rows)

    def _bounds(self) -> dict[str, int]:
        return {"not_before_ms": oldest_kept_ms(self._now_ms(), self._window), "per_symbol": self._max_ticks}

    def _opened(self) -> None:
        if self.state == "unavailable":
            log.info("event=tick_journal_recovered after_failures=%d", self._backoff.failures)
        self.state = "ok"

    def _failed(self, error: str) -> None:
        self.failures += 1
        self._backoff.failed()
        if self.state != "unavailable":
            log.error(
                "event=tick_journal_failed error=%r pending=%d action=retrying (live prices are not affected)",
                error,
                len(self._pending),
            )
        self.state = "unavailable"

    def _now_ms(self) -> int:
        return int(self._wall_clock() * 1000)

    def health(self) -> dict[str, Any]:
        return {
            "journal": {
                "state": self.state,
                "loaded": self.loaded,
                "pending": len(self._pending),
                "written": self.written,
                "dropped": self.dropped,
                "failures": self.failures,
            }
        }

    def metrics(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "ticker_tick_journal_pending", "Published ticks waiting to be written to the journal", len(self._pending)
        )
        for name, help_text, value in (
            ("ticker_tick_journal_written", "Ticks written to the journal", self.written),
            ("ticker_tick_journal_dropped", "Ticks dropped unwritten: the journal's batch was full", self.dropped),
            ("ticker_tick_journal_failures", "Failed attempts to open or write the journal", self.failures),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
