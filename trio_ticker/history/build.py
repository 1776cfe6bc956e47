"""The history wired from Settings: which store, the book's timings, the writer's limits.

`TICKER_HISTORY` picks the store (`auto`: Redis when TICKER_REDIS_URL is set, else the SQLite file
under TICKER_DATA_DIR; `off`: no candles). Only a Redis deployment imports coredis.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from functools import partial

import trio

from ..model import PastTick
from ..settings import Settings
from ..sources.build import retry_policy
from ..sources.retry import RetryPolicy
from .backfill import BinanceBackfill
from .book import CandleBook
from .candles import Candle
from .demo_past import DemoPast
from .history import CandleHistory, HistoryTask
from .live import LiveCandles
from .numbering import PersistedNumbering
from .retention import parse_retention
from .sqlite_journal import open_sqlite_journal
from .sqlite_numbering import open_sqlite_numbering
from .sqlite_store import open_sqlite_store
from .store import OpenCandleStore, Retention
from .tick_journal import TickJournal
from .writer import CandleWriter, Preparer, RepairListener

MIN_CANDLE_FLUSH = 0.01
"""Open-candle updates go out at most this often even with TICKER_BATCH_FLUSH_INTERVAL=0."""
BACKFILL_BATCHES = 64
"""Fetched batches (up to 1000 candles each) waiting for the writer."""


def store_opener(settings: Settings) -> OpenCandleStore:
    if settings.history_store == "redis":
        from .redis_store import open_redis_candle_store  # only Redis deployments import coredis

        assert settings.redis_url is not None  # Settings refuses TICKER_HISTORY=redis without it
        return partial(
            open_redis_candle_store,
            settings.redis_url.get_secret_value(),
            prefix=settings.redis_prefix,
            command_timeout=settings.redis_command_timeout,
        )
    return partial(open_sqlite_store, settings.data_dir)


def build_numbering(settings: Settings) -> PersistedNumbering | None:
    """The epoch and seqs kept in the SQLite store across restarts; None with TICKER_HISTORY=off (a new epoch
    per start) and with Redis, whose scale-out publish script numbers the ticks and keeps the epoch."""
    if settings.history_store != "sqlite" or settings.redis_url is not None:
        return None
    return PersistedNumbering(partial(open_sqlite_numbering, settings.data_dir), settings.symbols)


def store_retry_policy(settings: Settings) -> RetryPolicy:
    """How the candle writer and the tick journal retry a store that failed: from 1 s up to
    TICKER_HISTORY_RETRY_MAX_DELAY."""
    return RetryPolicy(initial=1.0, maximum=settings.history_retry_max_delay)


def build_journal(
    settings: Settings, numbering: PersistedNumbering | None, *, on_past: Callable[[PastTick], None]
) -> TickJournal | None:
    """The published ticks kept beside the numbering, handed back to the hub (`on_past`) after a restart; None
    without a persisted numbering (TICKER_HISTORY=off, Redis: its stream is the source there) or with recovery off."""
    if numbering is None or settings.recovery_ticks == 0:
        return None
    return TickJournal(
        partial(open_sqlite_journal, settings.data_dir),
        stored_epoch=numbering.stored_epoch,
        on_past=on_past,
        max_ticks=settings.recovery_ticks,
        window=settings.recovery_window,
        flush_interval=settings.history_flush_interval,
        pending_limit=settings.history_pending_limit,
        policy=store_retry_policy(settings),
    )


def build_history(
    settings: Settings,
    *,
    writing: Callable[[], bool] = lambda: True,
    open_store: OpenCandleStore | None = None,
    journal: TickJournal | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> CandleHistory | None:
    """None with TICKER_HISTORY=off. `writing`: whether this process writes (scale-out: the ingest leader);
    `journal`, when there is one, runs as one of the history's tasks."""
    if settings.history_store == "off":
        return None
    book = CandleBook(
        settings.symbols,
        close_delay_ms=round(settings.candle_close_delay * 1000),
        gap_after_ms=round(settings.backfill_gap_after * 1000),
    )
    live = LiveCandles(book, flush_interval=max(settings.batch_flush_interval, MIN_CANDLE_FLUSH), wall_clock=wall_clock)
    retention = Retention(parse_retention(settings.candle_retention), settings.history_max_candles)
    preparers: list[Preparer] = []
    tasks: list[HistoryTask] = [] if journal is None else [journal]
    listener: RepairListener | None = None
    backfilled: trio.MemoryReceiveChannel[Sequence[Candle]] | None = None
    if settings.demo_mode:
        preparers.append(
            DemoPast(
                settings.symbols,
                book,
                hours=settings.demo_history_hours,
                seed=settings.demo_seed,
                demo_interval=settings.demo_interval,
                demo_speed=settings.demo_speed,
                wall_clock=wall_clock,
            )
        )
    elif settings.backfill and settings.crypto_symbols:
        send, backfilled = trio.open_memory_channel[Sequence[Candle]](BACKFILL_BATCHES)
        backfill = BinanceBackfill(
            settings.crypto_symbols,
            base_url=settings.binance_rest_url,
            results=send,
            weight_per_minute=settings.binance_rest_weight_per_minute,
            candles_per_series=settings.backfill_candles,
            retention=retention,
            policy=retry_policy(settings),
            http_timeout=settings.upstream_connect_timeout,
            jitter=random.Random(settings.demo_seed),
            wall_clock=wall_clock,
        )
        preparers.append(backfill)
        tasks.append(backfill)
        listener = backfill
    writer = CandleWriter(
        open_store or store_opener(settings),
        book,
        store_name=settings.history_store,
        retention=retention,
        flush_interval=settings.history_flush_interval,
        pending_limit=settings.history_pending_limit,
        policy=store_retry_policy(settings),
        writing=writing,
        preparers=preparers,
        backfilled=backfilled,
        listener=listener,
        on_repaired=live.repaired,
        wall_clock=wall_clock,
    )
    return CandleHistory(live, writer, tasks=tasks, wall_clock=wall_clock)
