"""The embedded candle store: one SQLite file (WAL), stdlib `sqlite3` run in worker threads.

A writer connection and a reader connection (WAL lets reads go on during a write), each used by
one thread at a time under its own lock. Prices are stored as decimal text, exactly. Any sqlite3
or OS error becomes `CandleStoreUnavailable`; the file itself is never deleted or replaced.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import trio

from ..model import Listing
from .candles import Candle, Interval, plain
from .store import CandleStoreUnavailable, CandleWrite, Retention, StoredListings

T = TypeVar("T")

FILE_NAME = "candles.sqlite3"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS candles (
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    open_time INTEGER NOT NULL,
    open TEXT NOT NULL,
    high TEXT NOT NULL,
    low TEXT NOT NULL,
    close TEXT NOT NULL,
    volume TEXT NOT NULL,
    trades INTEGER NOT NULL,
    updated_ts INTEGER NOT NULL,
    PRIMARY KEY (symbol, interval, open_time)
) WITHOUT ROWID
"""
UPSERT = """
INSERT INTO candles (symbol, interval, open_time, open, high, low, close, volume, trades, updated_ts)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (symbol, interval, open_time) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, trades = excluded.trades, updated_ts = excluded.updated_ts
"""
LISTINGS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS listings (
    source TEXT NOT NULL,
    symbol TEXT NOT NULL,
    name TEXT NOT NULL,
    precision INTEGER,
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    PRIMARY KEY (source, symbol)
) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS listing_sources (source TEXT PRIMARY KEY, saved_ms INTEGER NOT NULL) WITHOUT ROWID",
)
COLUMNS = "open_time, open, high, low, close, volume, trades, updated_ts"
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the WAL file keeps after a checkpoint


class SQLiteCandleStore:
    name = "sqlite"

    def __init__(self, writer: sqlite3.Connection, reader: sqlite3.Connection, path: Path) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = trio.Lock()
        self._read_lock = trio.Lock()

    async def write(self, writes: Sequence[CandleWrite]) -> list[Candle]:
        async with self._write_lock:
            return await run_in_thread(self._write_now, writes)

    def _write_now(self, writes: Sequence[CandleWrite]) -> list[Candle]:
        connection = self._writer
        stored: list[Candle] = []
        with _transaction(connection):
            for write in writes:
                candle = write.candle
                existing = None
                if write.merge_from is not None:
                    existing = _select_one(connection, candle.symbol, candle.interval, candle.open_time)
                result = write.applied_to(existing)
                connection.execute(UPSERT, _row(result))
                stored.append(result)
        return stored

    async def read(
        self, symbol: str, interval: Interval, *, start: int | None, end: int | None, limit: int
    ) -> list[Candle]:
        async with self._read_lock:
            return await run_in_thread(self._read_now, symbol, interval, start, end, limit)

    def _read_now(
        self, symbol: str, interval: Interval, start: int | None, end: int | None, limit: int
    ) -> list[Candle]:
        lower = -(2**62) if start is None else start
        upper = 2**62 if end is None else end
        order = "ASC" if start is not None else "DESC"
        rows = self._reader.execute(
            f"SELECT {COLUMNS} FROM candles WHERE symbol = ? AND interval = ? AND open_time BETWEEN ? AND ? "
            f"ORDER BY open_time {order} LIMIT ?",
            (symbol, interval.value, lower, upper, limit),
        ).fetchall()
        candles = [_candle(symbol, interval, row) for row in rows]
        return candles if start is not None else candles[::-1]

    async def prune(self, symbols: Sequence[str], retention: Retention, now_ms: int) -> int:
        async with self._write_lock:
            return await run_in_thread(self._prune_now, symbols, retention, now_ms)

    def _prune_now(self, symbols: Sequence[str], retention: Retention, now_ms: int) -> int:
        connection = self._writer
        deleted = 0
        with _transaction(connection):
            for interval in Interval:
                cutoff = retention.cutoff(interval, now_ms)
                if cutoff is not None:
                    deleted += connection.execute(
                        "DELETE FROM candles WHERE interval = ? AND open_time < ?", (interval.value, cutoff)
                    ).rowcount
                for symbol in symbols:
                    deleted += connection.execute(
                        "DELETE FROM candles WHERE symbol = ? AND interval = ? AND open_time < ("
                        "SELECT open_time FROM candles WHERE symbol = ? AND interval = ? "
                        "ORDER BY open_time DESC LIMIT 1 OFFSET ?)",
                        (symbol, interval.value, symbol, interval.value, retention.max_per_series - 1),
                    ).rowcount
        return deleted

    async def check(self) -> None:
        async with self._read_lock:
            await run_in_thread(self._reader.execute, "SELECT 1")

    async def save_listings(self, source: str, listings: Sequence[Listing], saved_ms: int) -> None:
        async with self._write_lock:
            await run_in_thread(self._save_listings_now, source, listings, saved_ms)

    def _save_listings_now(self, source: str, listings: Sequence[Listing], saved_ms: int) -> None:
        connection = self._writer
        with _transaction(connection):
            connection.execute("DELETE FROM listings WHERE source = ?", (source,))
            connection.executemany(
                "INSERT OR REPLACE INTO listings (source, symbol, name, precision, base, quote) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(source, item.symbol, item.name, item.precision, item.base, item.quote) for item in listings],
            )
            connection.execute(
                "INSERT INTO listing_sources (source, saved_ms) VALUES (?, ?) "
                "ON CONFLICT (source) DO UPDATE SET saved_ms = excluded.saved_ms",
                (source, saved_ms),
            )

    async def load_listings(self, source: str) -> StoredListings | None:
        async with self._read_lock:
            return await run_in_thread(self._load_listings_now, source)

    def _load_listings_now(self, source: str) -> StoredListings | None:
        # One read transaction, so the rows and their time come from the same save.
        with _transaction(self._reader, "BEGIN"):
            saved = self._reader.execute("SELECT saved_ms FROM listing_sources WHERE source = ?", (source,)).fetchone()
            if saved is None:
                return None
            rows = self._reader.execute(
                "SELECT symbol, name, precision, base, quote FROM listings WHERE source = ? ORDER BY symbol", (source,)
            ).fetchall()
        listings = tuple(
            Listing(
                str(symbol), source, str(name), None if precision is None else int(precision), str(base), str(quote)
            )
            for symbol, name, precision, base, quote in rows
        )
        return StoredListings(listings, int(saved[0]))


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (the connection is in autocommit mode).
    `begin="BEGIN"` for reads: one snapshot of the WAL for all of them, taking no write lock."""

    def __init__(self, connection: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> None:
        self._connection = connection
        self._begin = begin

    def __enter__(self) -> None:
        self._connection.execute(self._begin)

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if kind is None:
            self._connection.execute("COMMIT")
        elif self._connection.in_transaction:
            self._connection.execute("ROLLBACK")


def _row(candle: Candle) -> tuple[object, ...]:
    return (
        candle.symbol,
        candle.interval.value,
        candle.open_time,
        plain(candle.open),
        plain(candle.high),
        plain(candle.low),
        plain(candle.close),
        plain(candle.volume),
        candle.trades,
        candle.updated_ts,
    )


def _candle(symbol: str, interval: Interval, row: tuple[Any, ...]) -> Candle:
    open_time, open_, high, low, close, volume, trades, updated_ts = row
    return Candle(
        symbol,
        interval,
        int(open_time),
        Decimal(str(open_)),
        Decimal(str(high)),
        Decimal(str(low)),
        Decimal(str(close)),
        Decimal(str(volume)),
        int(trades),
        int(updated_ts),
    )


def _select_one(connection: sqlite3.Connection, symbol: str, interval: Interval, open_time: int) -> Candle | None:
    row = connection.execute(
        f"SELECT {COLUMNS} FROM candles WHERE symbol = ? AND interval = ? AND open_time = ?",
        (symbol, interval.value, open_time),
    ).fetchone()
    return None if row is None else _candle(symbol, interval, row)


async def run_in_thread(function: Callable[..., T], *args: object) -> T:
    try:
        return await trio.to_thread.run_sync(function, *args)
    except (sqlite3.Error, OSError) as error:
        raise CandleStoreUnavailable(_describe(error)) from error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def connect_sqlite(path: Path, busy_timeout: float) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        _use_wal(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _use_wal(connection: sqlite3.Connection) -> None:
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot use WAL mode (journal_mode is {mode})")
    connection.execute("PRAGMA synchronous=FULL")  # a committed candle survives a power cut
    connection.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")


def _create_schema(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        raise sqlite3.DatabaseError(f"{path} has schema version {version}; this version reads {SCHEMA_VERSION}")
    connection.execute(SCHEMA)
    for statement in LISTINGS_SCHEMA:
        connection.execute(statement)
    connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _open(directory: Path, busy_timeout: float) -> tuple[sqlite3.Connection, sqlite3.Connection, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    writer = connect_sqlite(path, busy_timeout)
    try:
        _create_schema(writer, path)
        reader = connect_sqlite(path, busy_timeout)
    except BaseException:
        writer.close()
        raise
    return writer, reader, path


@asynccontextmanager
async def open_sqlite_store(directory: Path, *, busy_timeout: float = 2.0) -> AsyncIterator[SQLiteCandleStore]:
    """Open (creating if needed) `directory/candles.sqlite3`; raises `CandleStoreUnavailable` if it cannot."""
    writer, reader, path = await run_in_thread(_open, directory, busy_timeout)
    try:
        yield SQLiteCandleStore(writer, reader, path)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_close_all, writer, reader)


def _close_all(*connections: sqlite3.Connection) -> None:
    for connection in connections:
        with contextlib.suppress(sqlite3.Error):  # closing a broken connection: nothing more to lose
            connection.close()
