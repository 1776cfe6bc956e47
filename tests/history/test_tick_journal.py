"""The tick journal: its rows carry every field of a tick and its publish time; the SQLite file keeps each symbol's
newest within the recovery bounds, of one epoch; the batching on the autojump clock (one write per interval, a last
one at a clean stop, the oldest dropped when full, a failed write retried); and a restart within the window hands
the hub its ticks by their age, after it none."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, closing
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import trio

from tests.support.sources import MaxJitter
from trio_ticker.history.sqlite_journal import open_sqlite_journal
from trio_ticker.history.store import CandleStoreUnavailable
from trio_ticker.history.tick_journal import (
    JournalRow,
    JournalStore,
    TickJournal,
    journal_row,
    oldest_kept_ms,
    past_tick,
)
from trio_ticker.model import DayStats, Mode, PastTick, Tick
from trio_ticker.sources.retry import RetryPolicy
from trio_ticker.tick_codec import EntryError

EPOCH = "e1"
PUBLISHED_MS = 1_700_000_000_000


def tick(seq: int, symbol: str = "AAPL") -> Tick:
    return Tick(symbol, 100.0 + seq, 1.5, 1.52, PUBLISHED_MS + seq, seq, Mode.DEMO)


def row(seq: int, published_ms: int, symbol: str = "AAPL", epoch: str = EPOCH) -> JournalRow:
    return journal_row(epoch, tick(seq, symbol), published_ms)


# -- the rows ---------------------------------------------------------------------------------------------------------


def test_a_row_gives_back_the_tick_and_its_age() -> None:
    published = Tick(
        "BTCUSDT",
        64_012.5,
        -120.25,
        -0.1875,
        PUBLISHED_MS - 40,
        1042,
        Mode.LIVE,
        source="binance",
        volume=Decimal("0.00150000"),
        precision=2,
        day_stats=DayStats(64_100.0, 65_000.0, 63_900.5, 1234.5),
    )
    stored = journal_row(EPOCH, published, PUBLISHED_MS)
    assert (stored.epoch, stored.symbol, stored.seq, stored.published_ms) == (EPOCH, "BTCUSDT", 1042, PUBLISHED_MS)
    assert past_tick(stored, PUBLISHED_MS + 2_500) == PastTick(published, 2.5)
    assert past_tick(stored, PUBLISHED_MS - 1_000).age == 0.0  # the wall clock went back: not in the future


def test_a_row_this_version_did_not_write_is_refused() -> None:
    with pytest.raises(EntryError, match="tick body for AAPL"):
        past_tick(JournalRow(EPOCH, "AAPL", 7, PUBLISHED_MS, "[1, 2]"), PUBLISHED_MS)


def test_the_oldest_row_kept_is_a_window_ago() -> None:
    assert oldest_kept_ms(PUBLISHED_MS, 120.0) == PUBLISHED_MS - 120_000
    assert oldest_kept_ms(PUBLISHED_MS, 0.25) == PUBLISHED_MS - 250


# -- the SQLite file ------------------------------------------------------------------------------------------------


async def everything(journal: JournalStore, epoch: str = EPOCH) -> list[tuple[str, int]]:
    rows = await journal.load(epoch, not_before_ms=0, per_symbol=10_000)
    return [(stored.symbol, stored.seq) for stored in rows]


async def test_the_file_keeps_each_symbols_newest_within_the_window(tmp_path: Path) -> None:
    async with open_sqlite_journal(tmp_path) as journal:
        aapl = [row(seq, 1_000 * seq) for seq in range(1, 11)]  # published at 1 s .. 10 s
        msft = [row(seq, 9_000 + seq, "MSFT") for seq in range(1, 4)]
        await journal.append(aapl + msft, not_before_ms=0, per_symbol=5)
        assert await everything(journal) == [("AAPL", seq) for seq in range(6, 11)] + [
            ("MSFT", 1),
            ("MSFT", 2),
            ("MSFT", 3),
        ]
        await journal.append([row(11, 11_000)], not_before_ms=8_000, per_symbol=5)  # the window now starts at 8 s
        kept = [("AAPL", 8), ("AAPL", 9), ("AAPL", 10), ("AAPL", 11), ("MSFT", 1), ("MSFT", 2), ("MSFT", 3)]
        assert await everything(journal) == kept
        newest = await journal.load(EPOCH, not_before_ms=9_002, per_symbol=2)
        assert [(stored.symbol, stored.seq) for stored in newest] == [
            ("AAPL", 10),
            ("AAPL", 11),
            ("MSFT", 2),
            ("MSFT", 3),
        ]
        assert newest[0] == row(10, 10_000)  # the row as written


async def test_loading_one_epoch_deletes_every_other(tmp_path: Path) -> None:
    async with open_sqlite_journal(tmp_path) as journal:
        await journal.append([row(1, 1_000, epoch="old"), row(2, 2_000, epoch="old")], not_before_ms=0, per_symbol=5)
        await journal.append([row(1, 3_000, epoch="new")], not_before_ms=0, per_symbol=5)
        assert await everything(journal, "new") == [("AAPL", 1)]
    with closing(sqlite3.connect(tmp_path / "ticks.sqlite3")) as connection:  # gone, not only left out
        assert connection.execute("SELECT epoch, seq FROM ticks").fetchall() == [("new", 1)]


# -- the batching, on the autojump clock --------------------------------------------------------------------------


class MemoryJournal:
    """A `JournalStore` in memory that can fail its writes (a full disk); it records each write's time and seqs."""

    def __init__(self, rows: Sequence[JournalRow] = ()) -> None:
        self.rows = list(rows)
        self.writes: list[tuple[float, list[int]]] = []
        self.failing = False
        self.opened = 0

    @asynccontextmanager
    async def open(self) -> AsyncIterator[JournalStore]:
        self.opened += 1
        yield self

    async def load(self, epoch: str, *, not_before_ms: int, per_symbol: int) -> list[JournalRow]:
        await trio.lowlevel.checkpoint()
        return [stored for stored in self.rows if stored.epoch == epoch]

    async def append(self, rows: Sequence[JournalRow], *, not_before_ms: int, per_symbol: int) -> None:
        await trio.lowlevel.checkpoint()
        if self.failing:
            raise CandleStoreUnavailable("OperationalError: database or disk is full")
        self.writes.append((trio.current_time(), [stored.seq for stored in rows]))
        self.rows.extend(rows)


def tick_journal(
    store: MemoryJournal,
    *,
    epoch: str | None = EPOCH,
    pending_limit: int = 100,
    past: list[PastTick] | None = None,
    wall_clock: float = PUBLISHED_MS / 1000,
) -> TickJournal:
    return TickJournal(
        store.open,
        stored_epoch=lambda: epoch,
        on_past=(past if past is not None else []).append,
        max_ticks=1000,
        window=120.0,
        flush_interval=1.0,
        pending_limit=pending_limit,
        policy=RetryPolicy(initial=1.0, maximum=1.0),
        jitter=MaxJitter(),
        wall_clock=lambda: wall_clock,
    )


async def test_ticks_are_written_once_per_interval_and_once_more_at_a_clean_stop(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryJournal()
    journal = tick_journal(store)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for seq in (1, 2, 3):
            journal.record(tick(seq))
        await trio.sleep(1.5)
        journal.record(tick(4))
        await trio.sleep(1.0)  # 2.5 s: the write at 2 s took 4
        await trio.sleep(1.0)  # 3.5 s: nothing was pending at 3 s, so nothing was written
        journal.record(tick(5))
        nursery.cancel_scope.cancel()
    assert store.writes == [(1.0, [1, 2, 3]), (2.0, [4]), (3.5, [5])]
    assert (journal.written, journal.dropped) == (5, 0)
    assert store.rows[-1] == row(5, PUBLISHED_MS)  # stamped with the wall clock when it was published


async def test_a_full_batch_drops_its_oldest_ticks_and_counts_them(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryJournal()
    journal = tick_journal(store, pending_limit=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for seq in range(1, 6):
            journal.record(tick(seq))
        assert journal.health()["journal"]["pending"] == 3
        await trio.sleep(1.5)
        nursery.cancel_scope.cancel()
    assert store.writes == [(1.0, [3, 4, 5])]
    assert journal.dropped == 2


async def test_a_failed_write_keeps_its_ticks_ahead_of_newer_ones_and_is_retried(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryJournal()
    journal = tick_journal(store)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        journal.record(tick(1))
        store.failing = True
        await trio.sleep(1.5)  # the write at 1 s failed: the store is opened again after the retry delay
        assert (journal.state, journal.failures, journal.health()["journal"]["pending"]) == ("unavailable", 1, 1)
        journal.record(tick(2))
        store.failing = False
        await trio.sleep(2.0)  # reopened at 2 s, written at 3 s
        nursery.cancel_scope.cancel()
    assert store.writes == [(3.0, [1, 2])]
    assert (journal.state, store.opened, journal.written) == ("ok", 2, 2)


async def test_an_epoch_never_stored_journals_nothing(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryJournal([row(1, PUBLISHED_MS)])
    past: list[PastTick] = []
    journal = tick_journal(store, epoch=None, past=past)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        journal.record(tick(2))
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert (store.opened, store.writes, past, journal.health()["journal"]["pending"]) == (0, [], [], 0)


async def test_the_stored_rows_go_to_the_hub_at_start_each_by_its_age(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryJournal([row(1, PUBLISHED_MS - 3_000), row(2, PUBLISHED_MS - 1_000), row(3, 0, epoch="other")])
    past: list[PastTick] = []
    journal = tick_journal(store, past=past)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        assert past == [PastTick(tick(1), 3.0), PastTick(tick(2), 1.0)]  # before `run` reports started
        assert journal.loaded == 2
        nursery.cancel_scope.cancel()


# -- a restart, on a real SQLite file -------------------------------------------------------------------------------


async def restarted(directory: Path, seconds_later: float) -> list[PastTick]:
    """What a journal started `seconds_later` than the one that published ticks 1-5 hands the hub."""
    past: list[PastTick] = []
    journal = TickJournal(
        partial(open_sqlite_journal, directory),
        stored_epoch=lambda: EPOCH,
        on_past=past.append,
        max_ticks=1000,
        window=120.0,
        flush_interval=1.0,
        pending_limit=100,
        policy=RetryPolicy(initial=1.0, maximum=1.0),
        jitter=MaxJitter(),
        wall_clock=lambda: PUBLISHED_MS / 1000 + seconds_later,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        if seconds_later == 0:
            for seq in range(1, 6):
                journal.record(tick(seq))
        nursery.cancel_scope.cancel()  # a clean stop: the last write
    return past


async def test_a_restart_within_the_window_hands_the_hub_its_ticks_and_one_after_it_none(tmp_path: Path) -> None:
    assert await restarted(tmp_path, 0) == []
    assert await restarted(tmp_path, 30) == [PastTick(tick(seq), 30.0) for seq in range(1, 6)]
    assert await restarted(tmp_path, 120.5) == []
