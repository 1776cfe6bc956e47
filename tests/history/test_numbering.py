"""The persisted numbering over a real SQLite file: the epoch and seqs continue across a clean restart, a crash
never lets a seq be given twice, and a second server on the same directory gets an epoch of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import trio

from trio_ticker.history.numbering import NumberingStore, PersistedNumbering, StoredNumbering
from trio_ticker.history.sqlite_numbering import open_sqlite_numbering
from trio_ticker.history.store import CandleStoreUnavailable

SYMBOLS = ("AAPL", "BTCUSDT")


def give(numbering: PersistedNumbering, symbol: str, count: int) -> list[int]:
    """Number `count` ticks as the hub does; the seqs it was allowed to give."""
    given = []
    seq = numbering.first_seq(symbol)
    for _ in range(count):
        if numbering.may_number(symbol, seq):
            given.append(seq)
            seq += 1
    return given


async def run_numbering(nursery: trio.Nursery, numbering: PersistedNumbering) -> str:
    epoch: str = await nursery.start(numbering.run)
    return epoch


class CrashingStore:
    """The SQLite store, until `crash()`: from then on nothing more is written (as if the process had died)."""

    def __init__(self, store: NumberingStore) -> None:
        self._store = store
        self.crashed = False

    async def load(self) -> StoredNumbering | None:
        return await self._store.load()

    async def save(self, numbering: StoredNumbering) -> None:
        if self.crashed:
            raise CandleStoreUnavailable("crashed")
        await self._store.save(numbering)


async def test_a_clean_restart_keeps_the_epoch_and_continues_the_seqs(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        first = PersistedNumbering(partial(open_sqlite_numbering, tmp_path), SYMBOLS, block=100)
        epoch = await run_numbering(nursery, first)
        assert give(first, "AAPL", 5) == [1, 2, 3, 4, 5]
        nursery.cancel_scope.cancel()
    async with trio.open_nursery() as nursery:
        again = PersistedNumbering(partial(open_sqlite_numbering, tmp_path), SYMBOLS, block=100)
        assert await run_numbering(nursery, again) == epoch
        assert give(again, "AAPL", 2) == [6, 7]
        assert give(again, "BTCUSDT", 1) == [1]
        nursery.cancel_scope.cancel()


async def test_after_a_crash_no_seq_is_given_twice(tmp_path: Path) -> None:
    crashing: list[CrashingStore] = []

    @asynccontextmanager
    async def open_crashing() -> AsyncIterator[NumberingStore]:
        async with open_sqlite_numbering(tmp_path) as store:
            crashing.append(CrashingStore(store))
            yield crashing[-1]

    async with trio.open_nursery() as nursery:
        first = PersistedNumbering(open_crashing, SYMBOLS, block=100)
        epoch = await run_numbering(nursery, first)
        given: list[int] = []
        for _ in range(7):  # 350 seqs: the reservation is extended as they go
            given += give_more(first, "AAPL", 50, given)
            await trio.sleep(0.05)
        assert given == list(range(1, 351))
        crashing[0].crashed = True  # the final save at the stop fails, as a crash would skip it
        nursery.cancel_scope.cancel()
    async with trio.open_nursery() as nursery:
        again = PersistedNumbering(partial(open_sqlite_numbering, tmp_path), SYMBOLS, block=100)
        assert await run_numbering(nursery, again) == epoch
        assert again.first_seq("AAPL") > 350
        nursery.cancel_scope.cancel()


def give_more(numbering: PersistedNumbering, symbol: str, count: int, given: list[int]) -> list[int]:
    seq = given[-1] + 1 if given else numbering.first_seq(symbol)
    more = []
    for _ in range(count):
        if not numbering.may_number(symbol, seq):
            break
        more.append(seq)
        seq += 1
    return more


async def test_a_seq_beyond_the_stored_reservation_is_refused(tmp_path: Path) -> None:
    stuck = trio.Event()

    class StuckAfterStart:
        def __init__(self, store: NumberingStore) -> None:
            self._store, self.saves = store, 0

        async def load(self) -> StoredNumbering | None:
            return await self._store.load()

        async def save(self, numbering: StoredNumbering) -> None:
            self.saves += 1
            if self.saves > 1:
                await stuck.wait()  # the disk hangs: no new block is ever stored
            await self._store.save(numbering)

    @asynccontextmanager
    async def open_stuck() -> AsyncIterator[NumberingStore]:
        async with open_sqlite_numbering(tmp_path) as store:
            yield StuckAfterStart(store)

    async with trio.open_nursery() as nursery:
        numbering = PersistedNumbering(open_stuck, SYMBOLS, block=100)
        await run_numbering(nursery, numbering)
        assert give(numbering, "AAPL", 150) == list(range(1, 101))
        assert numbering.refused == 50
        stuck.set()
        nursery.cancel_scope.cancel()


async def test_a_second_server_on_the_same_directory_gets_its_own_epoch(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        first = PersistedNumbering(partial(open_sqlite_numbering, tmp_path), SYMBOLS)
        second = PersistedNumbering(partial(open_sqlite_numbering, tmp_path), SYMBOLS)
        epoch = await run_numbering(nursery, first)
        assert await run_numbering(nursery, second) != epoch
        assert give(second, "AAPL", 3) == [1, 2, 3]  # its own stream, which nothing stores
        nursery.cancel_scope.cancel()
