"""The candle store contract, run against both real backends: SQLite on tmp_path and a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.redis_server import open_redis_server
from trio_ticker.history.candles import Candle, Interval
from trio_ticker.history.redis_store import open_redis_candle_store
from trio_ticker.history.sqlite_store import open_sqlite_store
from trio_ticker.history.store import CandleStore, CandleWrite, OpenCandleStore, Retention, StoredListings
from trio_ticker.model import Listing

BASE = 1_763_640_000_000  # a day's 12:00 UTC
MINUTE = 60_000
FOREVER = dict.fromkeys(Interval)


def candle(
    minute: int,
    close: str = "96500.12345678",
    volume: str = "1.5",
    *,
    interval: Interval = Interval.M1,
    updated: int | None = None,
    trades: int = 3,
    symbol: str = "BTCUSDT",
) -> Candle:
    open_time = BASE + minute * interval.ms
    return Candle(
        symbol, interval, open_time, Decimal("96000.1"), Decimal("97000"), Decimal("95000.00000001"), Decimal(close),
        Decimal(volume), trades, open_time + 1_000 if updated is None else updated,
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "redis"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenCandleStore]:
    """A function opening the same store again (a restart), as a context manager."""
    if request.param == "sqlite":
        yield lambda: open_sqlite_store(tmp_path)
        return
    async with open_redis_server() as server:
        yield lambda: open_redis_candle_store(server.url, prefix="test", command_timeout=5)


async def read_all(store: CandleStore, interval: Interval = Interval.M1, symbol: str = "BTCUSDT") -> list[Candle]:
    return await store.read(symbol, interval, start=None, end=None, limit=10_000)


async def test_candles_come_back_exactly_and_in_order(open_store: OpenCandleStore) -> None:
    async with open_store() as store:
        written = [candle(minute, close=f"96500.{minute:08d}") for minute in (3, 1, 2)]
        tiny = candle(4, close="0.00000001", volume="123456789012.12345678")
        assert await store.write([CandleWrite(c) for c in [*written, tiny]]) == [*written, tiny]
        assert await read_all(store) == sorted([*written, tiny], key=lambda c: c.open_time)
        assert (await read_all(store))[-1].volume == Decimal("123456789012.12345678")
        assert await read_all(store, Interval.H1) == [] and await read_all(store, symbol="ETHUSDT") == []


async def test_reads_take_the_newest_or_the_first_from_start_within_the_range(open_store: OpenCandleStore) -> None:
    async with open_store() as store:
        await store.write([CandleWrite(candle(minute)) for minute in range(10)])
        times = [BASE + minute * MINUTE for minute in range(10)]

        async def opens(**query: int | None) -> list[int]:
            bounds = {"start": None, "end": None, **query}
            found = await store.read(
                "BTCUSDT", Interval.M1, start=bounds["start"], end=bounds["end"], limit=query["limit"] or 0
            )
            return [c.open_time for c in found]

        assert await opens(limit=3) == times[-3:]
        assert await opens(start=times[2], limit=3) == times[2:5]
        assert await opens(end=times[5], limit=2) == times[4:6]
        assert await opens(start=times[2], end=times[3], limit=100) == times[2:4]
        assert await opens(start=times[9] + 1, limit=5) == []


async def test_a_write_replaces_and_a_merge_adds_the_parts(open_store: OpenCandleStore) -> None:
    async with open_store() as store:
        before_restart = candle(0, close="10", volume="2", updated=BASE + 20_000, trades=4)
        await store.write([CandleWrite(before_restart)])
        after_restart = candle(0, close="11", volume="0.5", updated=BASE + 50_000, trades=1)
        [merged] = await store.write([CandleWrite(after_restart, merge_from=BASE + 40_000)])
        assert (merged.open, merged.close, merged.volume, merged.trades) == (Decimal("96000.1"), 11, Decimal("2.5"), 5)
        assert await read_all(store) == [merged]
        kline = candle(0, close="12", volume="9")
        await store.write([CandleWrite(kline)])  # an exchange's closed kline replaces whatever was there
        assert await read_all(store) == [kline]


async def test_writes_in_one_batch_apply_in_order(open_store: OpenCandleStore) -> None:
    async with open_store() as store:
        generated = candle(0, close="10", volume="1", updated=BASE + 30_000, trades=2)
        live = candle(0, close="11", volume="3", updated=BASE + 59_000, trades=5)
        stored = await store.write([CandleWrite(generated, BASE), CandleWrite(live, BASE + 31_000)])
        assert (stored[1].volume, stored[1].trades, stored[1].close) == (4, 7, 11)
        assert await read_all(store) == [stored[1]]


async def test_a_merge_batch_sent_twice_is_counted_once(open_store: OpenCandleStore) -> None:
    # What a retry after a lost reply does: the second write finds its own result and keeps it.
    async with open_store() as store:
        await store.write([CandleWrite(candle(0, volume="2", updated=BASE + 10_000))])
        batch = [CandleWrite(candle(0, volume="1", updated=BASE + 40_000), merge_from=BASE + 30_000)]
        first = await store.write(batch)
        again = await store.write(batch)
        assert first == again and first[0].volume == 3
        assert await read_all(store) == first


async def test_a_batch_larger_than_a_redis_script_call_is_written_whole(open_store: OpenCandleStore) -> None:
    async with open_store() as store:
        day = [candle(minute, volume="1", updated=BASE + minute * MINUTE + 10) for minute in range(1_440)]
        await store.write([CandleWrite(c, merge_from=c.open_time) for c in day])
        again = await store.write([CandleWrite(c, merge_from=c.open_time) for c in day])  # a retried batch
        assert again == day
        assert await store.read("BTCUSDT", Interval.M1, start=None, end=None, limit=2_000) == day


async def test_candles_survive_closing_and_opening_the_store_again(open_store: OpenCandleStore) -> None:
    async with open_store() as store:
        await store.write([CandleWrite(candle(minute)) for minute in range(5)])
    async with open_store() as reopened:
        assert [c.open_time for c in await read_all(reopened)] == [BASE + m * MINUTE for m in range(5)]


async def test_prune_keeps_what_retention_says_and_at_most_the_cap(open_store: OpenCandleStore) -> None:
    async with open_store() as store:
        await store.write([CandleWrite(candle(minute)) for minute in range(10)])
        await store.write([CandleWrite(candle(day, interval=Interval.D1)) for day in range(5)])
        retention = Retention({**FOREVER, Interval.M1: 3 * MINUTE}, max_per_series=3)
        now = BASE + 10 * MINUTE
        deleted = await store.prune(["BTCUSDT"], retention, now)
        assert [c.open_time for c in await read_all(store)] == [BASE + m * MINUTE for m in (7, 8, 9)]
        assert [c.open_time for c in await read_all(store, Interval.D1)] == [BASE + d * 86_400_000 for d in (2, 3, 4)]
        assert deleted == 7 + 2
        assert await store.prune(["BTCUSDT"], retention, now) == 0


async def test_a_saved_catalogue_comes_back_whole_after_a_restart_and_a_save_replaces_it(
    open_store: OpenCandleStore,
) -> None:
    doge = Listing("DOGEUSDT", "binance", "DOGE/USDT", 5, "DOGE", "USDT")
    apple = Listing("AAPL", "finnhub", "APPLE INC — ÉDITION “SPÉCIALE”")  # names keep any text exactly
    async with open_store() as store:
        assert await store.load_listings("binance") is None
        await store.save_listings("binance", [doge, Listing("BTCUSDT", "binance", "BTC/USDT", 2, "BTC", "USDT")], 1)
        await store.save_listings("finnhub", [apple], 2)
    async with open_store() as store:
        saved = await store.load_listings("binance")
        assert saved is not None and saved.saved_ms == 1
        assert sorted(saved.listings, key=lambda listing: listing.symbol) == [
            Listing("BTCUSDT", "binance", "BTC/USDT", 2, "BTC", "USDT"),
            doge,
        ]
        assert await store.load_listings("finnhub") == StoredListings((apple,), 2)
        await store.save_listings("binance", [doge], 3)  # a later catalogue replaces the earlier one whole
        assert await store.load_listings("binance") == StoredListings((doge,), 3)
        await store.save_listings("binance", [], 4)
        assert await store.load_listings("binance") == StoredListings((), 4)
        assert await read_all(store) == []  # catalogues are no candles


async def test_fifty_thousand_listings_are_saved_and_loaded(open_store: OpenCandleStore) -> None:
    listings = [Listing(f"S{number}", "finnhub", f"COMPANY {number} INC") for number in range(50_000)]
    async with open_store() as store:
        await store.save_listings("finnhub", listings, 5)
        saved = await store.load_listings("finnhub")
    assert saved is not None and set(saved.listings) == set(listings) and len(saved.listings) == len(listings)
