"""The numbering's SQLite file (`numbering.sqlite3` beside the candles): the epoch and each symbol's ceiling.

One row per symbol and one for the epoch, replaced in one transaction; written with `synchronous=FULL`, so a
stored reservation survives a crash (`history/numbering.py` relies on it). One process at a time holds it
(an exclusive `flock` on `numbering.lock`): a second server on the same directory gets an epoch of its own.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from .numbering import StoredNumbering
from .sqlite_store import connect_sqlite, run_in_thread

FILE_NAME = "numbering.sqlite3"
LOCK_NAME = "numbering.lock"
SCHEMA = """
CREATE TABLE IF NOT EXISTS numbering (
    symbol TEXT PRIMARY KEY,  -- '' holds the epoch
    epoch TEXT NOT NULL,
    ceiling INTEGER NOT NULL
)
"""


class SQLiteNumberingStore:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._lock = trio.Lock()

    async def load(self) -> StoredNumbering | None:
        async with self._lock:
            rows = await run_in_thread(self._select)
        epochs = {epoch for _, epoch, _ in rows}
        if len(epochs) != 1:
            return None  # nothing stored (or a file this version did not write: a new epoch is the safe answer)
        return StoredNumbering(epochs.pop(), {symbol: ceiling for symbol, _, ceiling in rows if symbol})

    async def save(self, numbering: StoredNumbering) -> None:
        async with self._lock:
            await run_in_thread(self._replace, numbering)

    def _select(self) -> list[tuple[str, str, int]]:
        return self._connection.execute("SELECT symbol, epoch, ceiling FROM numbering").fetchall()

    def _replace(self, numbering: StoredNumbering) -> None:
        with self._connection:
            self._connection.execute("BEGIN IMMEDIATE")
            self._connection.execute("DELETE FROM numbering")
            self._connection.executemany(
                "INSERT INTO numbering (symbol, epoch, ceiling) VALUES (?, ?, ?)",
                [("", numbering.epoch, 0), *((s, numbering.epoch, c) for s, c in numbering.ceilings.items())],
            )


def _open(directory: Path) -> tuple[sqlite3.Connection, int]:
    directory.mkdir(parents=True, exist_ok=True)
    lock = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError (an OSError): another server has it
        connection = connect_sqlite(directory / FILE_NAME, 2.0)
        try:
            connection.execute(SCHEMA)
        except BaseException:
            connection.close()
            raise
    except BaseException:
        os.close(lock)
        raise
    return connection, lock


def _close(connection: sqlite3.Connection, lock: int) -> None:
    try:
        connection.close()
    finally:
        os.close(lock)  # releases the flock


@asynccontextmanager
async def open_sqlite_numbering(directory: Path) -> AsyncIterator[SQLiteNumberingStore]:
    """Open (creating if needed) `directory/numbering.sqlite3`, exclusively; raises `CandleStoreUnavailable` if
    it cannot (another process holds it included)."""
    connection, lock = await run_in_thread(_open, directory)
    try:
        yield SQLiteNumberingStore(connection)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_close, connection, lock)
