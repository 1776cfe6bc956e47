"""The tick journal's SQLite file (`ticks.sqlite3` beside the numbering): the recent ticks of the stored epoch.

One row per published tick (epoch, symbol, seq, when it was published, its `tick_codec` body), appended in batches
and pruned to the recovery bounds in the same transaction. `synchronous=NORMAL`: a row a power cut takes away costs
a recovery that the crash loses anyway (the numbering then skips the seqs it had reserved).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from .sqlite_store import connect_sqlite, run_in_thread
from .tick_journal import JournalRow

FILE_NAME = "ticks.sqlite3"
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ticks (
    epoch TEXT NOT NULL,
    symbol TEXT NOT NULL,
    seq INTEGER NOT NULL,
    published_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (epoch, symbol, seq)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS ticks_by_time ON ticks (published_ms)",
)
NEWEST_PER_SYMBOL = """
SELECT symbol, seq, published_ms, body FROM (
    SELECT symbol, seq, published_ms, body,
           ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY seq DESC) AS newness
    FROM ticks WHERE epoch = ? AND published_ms >= ?
) WHERE newness <= ? ORDER BY symbol, seq
"""
BEYOND_COUNT = """
DELETE FROM ticks WHERE epoch = ? AND symbol = ? AND seq <= (
    SELECT seq FROM ticks WHERE epoch = ? AND symbol = ? ORDER BY seq DESC LIMIT 1 OFFSET ?
)
"""


class SQLiteTickJournal:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._lock = trio.Lock()

    async def load(self, epoch: str, *, not_before_ms: int, per_symbol: int) -> list[JournalRow]:
        """The newest `per_symbol` rows of each symbol of `epoch` published at `not_before_ms` or later, each
        symbol's in seq order; every row of another epoch is deleted."""
        async with self._lock:
            return await run_in_thread(self._load_now, epoch, not_before_ms, per_symbol)

    def _load_now(self, epoch: str, not_before_ms: int, per_symbol: int) -> list[JournalRow]:
        connection = self._connection
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("DELETE FROM ticks WHERE epoch != ?", (epoch,))
            rows = connection.execute(NEWEST_PER_SYMBOL, (epoch, not_before_ms, per_symbol)).fetchall()
        return [JournalRow(epoch, str(symbol), int(seq), int(ms), str(body)) for symbol, seq, ms, body in rows]

    async def append(self, rows: Sequence[JournalRow], *, not_before_ms: int, per_symbol: int) -> None:
        """Store `rows`, then delete what is published before `not_before_ms` and, for each symbol of `rows`, all
        but its newest `per_symbol`: one transaction."""
        async with self._lock:
            await run_in_thread(self._append_now, rows, not_before_ms, per_symbol)

    def _append_now(self, rows: Sequence[JournalRow], not_before_ms: int, per_symbol: int) -> None:
        connection = self._connection
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                "INSERT OR REPLACE INTO ticks (epoch, symbol, seq, published_ms, body) VALUES (?, ?, ?, ?, ?)",
                [(row.epoch, row.symbol, row.seq, row.published_ms, row.body) for row in rows],
            )
            connection.execute("DELETE FROM ticks WHERE published_ms < ?", (not_before_ms,))
            for epoch, symbol in {(row.epoch, row.symbol) for row in rows}:
                connection.execute(BEYOND_COUNT, (epoch, symbol, epoch, symbol, per_symbol))


def _open(directory: Path) -> sqlite3.Connection:
    directory.mkdir(parents=True, exist_ok=True)
    connection = connect_sqlite(directory / FILE_NAME, 2.0)
    try:
        connection.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            connection.execute(statement)
    except BaseException:
        connection.close()
        raise
    return connection


def _close(connection: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):  # closing a broken connection: nothing more to lose
        connection.close()


@asynccontextmanager
async def open_sqlite_journal(directory: Path) -> AsyncIterator[SQLiteTickJournal]:
    """Open (creating if needed) `directory/ticks.sqlite3`; raises `CandleStoreUnavailable` if it cannot. The
    numbering's lock (held while the journal runs: it journals only a stored epoch) keeps it to one process."""
    connection = await run_in_thread(_open, directory)
    try:
        yield SQLiteTickJournal(connection)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_close, connection)
