"""The candle writer: owns the open store, writes batches off the hot path, survives store failures.

Every flush interval it takes what the book changed (open candles, closed ones) and what backfill
sent, and writes it all in one call. When the store fails (a corrupt or locked file, a full disk,
Redis down) it logs one error, keeps the unwritten candles in memory (bounded: the finest first go
when it is full), closes the store and opens it again with backoff; live prices never wait for it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from ..sources.retry import Backoff, Jitter, RetryPolicy
from .book import BookCandle, CandleBook, Gap
from .candles import INTERVALS, Candle, Interval
from .store import CandleStore, CandleStoreUnavailable, CandleWrite, OpenCandleStore, Retention

log = logging.getLogger(__name__)

Key = tuple[str, Interval, int]
FOLLOWER_KEEPS_MS = 60_000
FINAL_FLUSH_TIMEOUT = 2.0  # seconds a shutdown waits for the last write


class Preparer(Protocol):
    async def prepare(self, store: CandleStore) -> list[CandleWrite]:
        """Called once, before the first write: read what the store has; returns what to write first."""


class RepairListener(Protocol):
    """Told (on the writing node only) what the book could not see whole: the backfill."""

    def gap(self, gap: Gap) -> None: ...

    def incomplete(self, candle: Candle) -> None: ...


@dataclass(frozen=True, slots=True)
class WriterHealth:
    store: str
    state: str  # "opening", "ok", "unavailable"
    writing: bool  # False on a scale-out follower: the ingest leader writes
    pending: int
    written: int
    dropped: int
    failures: int
    last_write_ts: int | None
    error: str


class CandleWriter:
    def __init__(
        self,
        open_store: OpenCandleStore,
        book: CandleBook,
        *,
        store_name: str,
        retention: Retention,
        flush_interval: float,
        pending_limit: int,
        policy: RetryPolicy,
        prune_interval: float = 600.0,
        writing: Callable[[], bool] = lambda: True,
        preparers: Sequence[Preparer] = (),
        backfilled: trio.MemoryReceiveChannel[Sequence[Candle]] | None = None,
        listener: RepairListener | None = None,
        on_repaired: Callable[[Sequence[Candle]], None] | None = None,
        jitter: Jitter | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._open_store = open_store
        self._book = book
        self.store_name = store_name
        self._retention = retention
        self._flush_interval = flush_interval
        self._pending_limit = pending_limit
        self._prune_interval = prune_interval
        self._writing = writing
        self._preparers = tuple(preparers)
        self._backfilled = backfilled
        self._listener = listener
        self._on_repaired = on_repaired  # the live candles: told of every kline the store now holds
        self._wall_clock = wall_clock
        self._store: CandleStore | None = None
        self._prepared = False
        self._external: deque[CandleWrite] = deque()  # backfill and generated history, in order
        self._live: dict[Key, CandleWrite] = {}  # the book's candles: the newest state of each
        self._in_flight: list[CandleWrite] = []  # the book's candles being written: taken, maybe not stored yet
        self._opened = trio.Event()
        self._finishing = trio.Event()
        self._finished = trio.Event()
        self._backoff = Backoff(policy, jitter)
        self.state = "opening"
        self.error = ""
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self.last_write_ts: int | None = None

    # -- what others call -------------------------------------------------------------------------

    def _queue_external(self, writes: Iterable[CandleWrite]) -> None:
        self._external.extend(writes)
        self._enforce_limit()

    async def read(
        self, symbol: str, interval: Interval, *, start: int | None, end: int | None, limit: int
    ) -> list[Candle]:
        store = self._store
        if store is None:
            raise CandleStoreUnavailable(self.error or "the candle store is not open yet")
        return await store.read(symbol, interval, start=start, end=end, limit=limit)

    def lay_over(self, stored: Sequence[Candle] | None, symbol: str, interval: Interval) -> list[Candle]:
        """`stored` (None: the store could not be read) with what this process has not written yet laid over it,
        in time order: each write as the store will apply it (a merge only onto what was read). A node that does
        not write keeps its recent candles only to take over with: what the writing node stored wins over them,
        so that every worker answers what the store holds once the writer has written it."""
        self._take_from_book()  # what the book closed since the last flush is pending too
        series = (symbol, interval)
        by_time = {candle.open_time: candle for candle in stored or ()}
        writing = self._writing()
        stored_wins = () if writing else set(by_time)  # a follower's memory fills in only what is not stored
        replaced = {write.candle.key for write in self._external if write.merge_from is None}
        live = (write for key, write in self._live.items() if key not in replaced)  # as `flush` leaves them out
        for write in [*self._external, *self._in_flight, *live]:  # in the order the store applies them
            open_time = write.candle.open_time
            if write.candle.key[:2] != series or open_time in stored_wins:
                continue
            # A part of a candle only where this process will merge it with what was read; a follower's is not
            # what the leader stores.
            if write.merge_from is None or (writing and stored is not None):
                by_time[open_time] = write.applied_to(by_time.get(open_time))
        return [by_time[open_time] for open_time in sorted(by_time)]

    async def wait_open(self) -> None:
        await self._opened.wait()

    def health(self) -> WriterHealth:
        return WriterHealth(
            store=self.store_name,
            state=self.state,
            writing=self._writing(),
            pending=len(self._external) + len(self._live),
            written=self.written,
            dropped=self.dropped,
            failures=self.failures,
            last_write_ts=self.last_write_ts,
            error=self.error,
        )

    # -- the task ---------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Started once the store is open and its first write is done (a generated past included, so the first
        `/candles` has it), or once the first attempt has failed: a store that is away never holds up prices.
        Returns after `finish`."""
        backoff = self._backoff
        ready = _Once(task_status.started)
        try:
            while not self._finishing.is_set():
                try:
                    async with self._open_store() as store:
                        self._store = store
                        self._opened.set()
                        if backoff.failures or self.state != "ok":
                            self._recovered(backoff.failures)
                        backoff.reset()
                        await self._write_forever(store, ready)
                        return  # finished
                except CandleStoreUnavailable as error:
                    backoff.failed()
                    self._failed(str(error), backoff.failures)
                finally:
                    self._store = None
                ready()
                self._take_from_book()  # keep the book's queues short while the store is away
                with trio.move_on_after(backoff.delay()):
                    await self._finishing.wait()
        finally:
            self._finished.set()

    def finish(self) -> None:
        """A graceful stop: write what changed since the last flush, then `run` returns. Unlike a cancellation
        (whose last write is attempted too), the store's own connection tasks still run for that write."""
        self._finishing.set()

    async def wait_finished(self) -> None:
        await self._finished.wait()

    async def _write_forever(self, store: CandleStore, ready: Callable[[], None]) -> None:
        try:
            await self._write_until_finished(store, ready)
        except trio.Cancelled:
            # Shutting down: what changed since the last flush is written too, within a bound.
            with trio.CancelScope(shield=True), trio.move_on_after(FINAL_FLUSH_TIMEOUT):
                await self._final_flush(store)
            raise
        with trio.move_on_after(FINAL_FLUSH_TIMEOUT):
            await self._final_flush(store)

    async def _final_flush(self, store: CandleStore) -> None:
        if self._writing() and self._prepared:
            try:
                await self.flush(store)
            except CandleStoreUnavailable as error:
                log.warning("event=history_final_flush_failed store=%s error=%r", self.store_name, str(error))

    async def _write_until_finished(self, store: CandleStore, ready: Callable[[], None]) -> None:
        next_prune = trio.current_time()
        while not self._finishing.is_set():
            if self._writing():
                if not self._prepared:
                    for preparer in self._preparers:
                        self._queue_external(await preparer.prepare(store))
                    self._prepared = True
                await self.flush(store)
                if trio.current_time() >= next_prune:
                    deleted = await store.prune(self._book.symbols, self._retention, self._now_ms())
                    if deleted:
                        log.info("event=history_pruned deleted=%d", deleted)
                    next_prune = trio.current_time() + self._prune_interval
            else:
                self._take_from_book()
                self._external.clear()
                self._keep_recent_only()
                await store.check()  # a follower only reads: notice a store that went away all the same
            ready()
            with trio.move_on_after(self._flush_interval):
                await self._finishing.wait()

    def _keep_recent_only(self) -> None:
        """Not writing (a follower): keep the last minute's candles, so that taking over from a leader that
        died loses none it had not written yet; older ones the leader wrote."""
        oldest = self._now_ms() - FOLLOWER_KEEPS_MS
        self._live = {key: write for key, write in self._live.items() if write.candle.close_time >= oldest}

    async def flush(self, store: CandleStore) -> None:
        """Write everything pending now, in one call: backfill first, then the book's candles."""
        self._take_from_book()
        external = list(self._external)
        replaced = {write.candle.key for write in external if write.merge_from is None}
        live, self._live = self._live, {}
        live_writes = [write for key, write in live.items() if key not in replaced]
        batch = external + live_writes
        if not batch:
            return
        self._in_flight = live_writes  # the external ones stay queued until written
        try:
            stored = await store.write(batch)
        except BaseException:
            self._live = {**live, **self._live}
            raise
        finally:
            self._in_flight = []
        for _ in external:
            self._external.popleft()
        if external and self._on_repaired is not None:
            self._on_repaired([write.candle for write in external if write.merge_from is None])
        for write, result in zip(live_writes, stored[len(external) :], strict=True):
            if write.merge_from is not None and not write.candle.closed:
                self._book.absorb(result, write.candle)
        self.written += len(batch)
        self.last_write_ts = self._now_ms()

    def _take_from_book(self) -> None:
        """Take the book's candles and what backfill fetched; pass on what the book could not see whole."""
        writing = self._writing()
        for book_candle in self._book.take_for_store():
            self._queue_live(book_candle)
            if writing and book_candle.incomplete and book_candle.candle.closed and self._listener is not None:
                self._listener.incomplete(book_candle.candle)
        for gap in self._book.take_gaps():
            if writing and self._listener is not None:
                self._listener.gap(gap)
        while self._backfilled is not None:
            try:
                fetched = self._backfilled.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            self._external.extend(CandleWrite(candle) for candle in fetched)  # klines replace what is stored
        self._enforce_limit()

    def _queue_live(self, book_candle: BookCandle) -> None:
        candle = book_candle.candle
        key = candle.key
        previous = self._live.get(key)
        # A merge is asked for until the store has done it once; a newer state keeps the request.
        merge_from = book_candle.merge_from if previous is None else previous.merge_from or book_candle.merge_from
        self._live[key] = CandleWrite(candle, merge_from)

    def _enforce_limit(self) -> None:
        excess = len(self._external) + len(self._live) - self._pending_limit
        if excess <= 0:
            return
        first_drop = self.dropped == 0
        while excess > 0 and self._external:
            self._external.popleft()
            self.dropped += 1
            excess -= 1
        if excess > 0:
            closed = [key for key, write in self._live.items() if write.candle.closed]
            closed.sort(key=lambda key: (INTERVALS.index(key[1]), key[2]))  # finest and oldest first
            for key in closed[:excess]:
                del self._live[key]
                self.dropped += 1
        if first_drop:
            log.warning(
                "event=history_pending_full limit=%d action=dropping_finest_oldest store=%s",
                self._pending_limit,
                self.store_name,
            )

    # -- state ------------------------------------------------------------------------------------

    def _failed(self, error: str, failures: int) -> None:
        self.failures += 1
        self.error = error
        if self.state != "unavailable":
            log.error(
                "event=history_store_failed store=%s error=%r pending=%d action=retrying "
                "(live prices are not affected; unwritten candles wait in memory, up to %d)",
                self.store_name,
                error,
                len(self._external) + len(self._live),
                self._pending_limit,
            )
        else:
            log.debug(
                "event=history_store_still_failing store=%s error=%r failures=%d", self.store_name, error, failures
            )
        self.state = "unavailable"

    def _recovered(self, failures: int) -> None:
        if self.state == "unavailable":
            log.info("event=history_store_recovered store=%s after_failures=%d", self.store_name, failures)
        else:
            log.info("event=history_store_open store=%s", self.store_name)
        self.state = "ok"
        self.error = ""

    def _now_ms(self) -> int:
        return int(self._wall_clock() * 1000)


class _Once:
    """Calls `function` the first time it is called, and never again."""

    def __init__(self, function: Callable[[], None]) -> None:
        self._function: Callable[[], None] | None = function

    def __call__(self) -> None:
        if self._function is not None:
            function, self._function = self._function, None
            function()


def merge_for_answer(stored: Sequence[Candle], newer: Iterable[Candle]) -> list[Candle]:
    """Candles with newer ones (the open candle) laid over them, in time order."""
    by_time = {candle.open_time: candle for candle in stored}
    for candle in newer:
        by_time[candle.open_time] = candle
    return [by_time[open_time] for open_time in sorted(by_time)]
