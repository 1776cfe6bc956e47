"""An in-memory `CandleStore` with the real backends' semantics, for the writer's autojump-clock tests.

It can go down (every open and call raises `CandleStoreUnavailable`, like a locked file or a dead
Redis), or fail only its writes (a full disk), and come back with everything it had; it records
each write call's batch. It keeps saved catalogues too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio

from trio_ticker.history.candles import Candle, Interval
from trio_ticker.history.store import CandleStore, CandleStoreUnavailable, CandleWrite, Retention, StoredListings
from trio_ticker.model import Listing


class MemoryCandles:
    name = "memory"

    def __init__(self) -> None:
        self.candles: dict[tuple[str, Interval, int], Candle] = {}
        self.down = False
        self.failing_writes = False  # opens and reads work, writes fail (a full disk)
        self.batches: list[tuple[float, int]] = []  # (trio time, writes in the call)
        self.opened = 0
        self.listings: dict[str, StoredListings] = {}  # by source

    def open(self) -> AbstractAsyncContextManager[CandleStore]:
        return self._open()

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[CandleStore]:
        self.opened += 1
        self._check()
        yield self

    def _check(self) -> None:
        if self.down:
            raise CandleStoreUnavailable("OperationalError: database is locked")

    async def write(self, writes: Sequence[CandleWrite]) -> list[Candle]:
        await trio.lowlevel.checkpoint()
        self._check()
        if self.failing_writes:
            raise CandleStoreUnavailable("OperationalError: database or disk is full")
        self.batches.append((trio.current_time(), len(writes)))
        stored = []
        for write in writes:
            result = write.applied_to(self.candles.get(write.candle.key))
            self.candles[write.candle.key] = result
            stored.append(result)
        return stored

    async def read(
        self, symbol: str, interval: Interval, *, start: int | None, end: int | None, limit: int
    ) -> list[Candle]:
        await trio.lowlevel.checkpoint()
        self._check()
        found = sorted(
            (c for key, c in self.candles.items() if key[:2] == (symbol, interval)), key=lambda c: c.open_time
        )
        found = [c for c in found if (start is None or c.open_time >= start) and (end is None or c.open_time <= end)]
        return found[:limit] if start is not None else found[-limit:]

    async def prune(self, symbols: Sequence[str], retention: Retention, now_ms: int) -> int:
        await trio.lowlevel.checkpoint()
        self._check()
        return 0

    async def check(self) -> None:
        await trio.lowlevel.checkpoint()
        self._check()

    async def save_listings(self, source: str, listings: Sequence[Listing], saved_ms: int) -> None:
        await trio.lowlevel.checkpoint()
        self._check()
        self.listings[source] = StoredListings(tuple(listings), saved_ms)

    async def load_listings(self, source: str) -> StoredListings | None:
        await trio.lowlevel.checkpoint()
        self._check()
        return self.listings.get(source)

    def series(self, symbol: str, interval: Interval) -> list[Candle]:
        return sorted((c for k, c in self.candles.items() if k[:2] == (symbol, interval)), key=lambda c: c.open_time)
