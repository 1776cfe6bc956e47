"""Backfill from Binance's klines, against the fake Binance REST API in memory, on the autojump clock:
what is fetched, in the real wire format, and how 429, 418, 5xx and the weight budget are respected."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal

import pytest
import trio
import trio.testing

from tests.fakes.binance_rest import FakeBinanceRest, fake_kline
from tests.fakes.candle_store import MemoryCandles
from trio_ticker.history.backfill import BinanceBackfill
from trio_ticker.history.book import Gap
from trio_ticker.history.candles import INTERVALS, Candle, Interval, bucket_start
from trio_ticker.history.retention import parse_retention
from trio_ticker.history.store import CandleWrite, Retention
from trio_ticker.sources.retry import RetryPolicy

BASE_S = 1_763_640_030  # 2025-11-20 12:00:30 UTC
KEEP = Retention(parse_retention(""), max_per_series=100_000)
REFUSED = {"code": -1003, "msg": "Too many requests."}


class Longest:
    def uniform(self, a: float, b: float) -> float:
        return b


class Run:
    """A backfill of BTCUSDT against the fake, collecting what it sends to the writer."""

    def __init__(self, *, per_series: int = 5, weight_per_minute: int = 1200, script: list | None = None) -> None:  # type: ignore[type-arg]
        start = trio.current_time()
        self.clock: Callable[[], float] = lambda: BASE_S + trio.current_time() - start
        self.fake = FakeBinanceRest(script=script or [], wall_clock=self.clock)
        send, self.receive = trio.open_memory_channel[list[Candle]](1000)
        self.backfill = BinanceBackfill(
            ["BTCUSDT"],
            base_url="http://binance.test",
            results=send,  # type: ignore[arg-type]
            weight_per_minute=weight_per_minute,
            candles_per_series=per_series,
            retention=KEEP,
            policy=RetryPolicy(initial=1.0, maximum=8.0),
            http_timeout=5.0,
            jitter=Longest(),
            wall_clock=self.clock,
            http_transport=self.fake.transport(),
        )
        self.candles: list[Candle] = []

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def collect(self, seconds: float) -> list[Candle]:
        with trio.move_on_after(seconds):
            async for batch in self.receive:
                self.candles.extend(batch)
        return self.candles

    async def backfill_for(self, seconds: float, store: MemoryCandles | None = None) -> list[Candle]:
        """Run the backfill as the writer would: prepared on `store` (empty by default), for `seconds`."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.backfill.run)
            assert await self.backfill.prepare(store or MemoryCandles()) == []
            candles = await self.collect(seconds)
            nursery.cancel_scope.cancel()
        return candles

    def request_times(self) -> list[float]:
        return [at for at, _ in self.fake.requests]


async def test_start_fetches_each_series_up_to_its_last_closed_interval(autojump_clock: trio.abc.Clock) -> None:
    run = Run(per_series=5)
    candles = await run.backfill_for(30)
    now = run.now_ms() - 30_000
    for interval in INTERVALS:
        series = [c for c in candles if c.interval is interval]
        last_closed = bucket_start(now, interval) - interval.ms
        assert [c.open_time for c in series] == [last_closed - i * interval.ms for i in range(4, -1, -1)]
        for c in series:  # every field exactly as Binance wrote it
            row = fake_kline("BTCUSDT", interval.value, c.open_time)
            assert (c.open, c.high, c.low, c.close, c.volume) == tuple(Decimal(x) for x in row[1:6])
            assert (c.trades, c.updated_ts) == (row[8], row[6])
    assert len(run.fake.requests) == len(INTERVALS)  # one request per series
    assert {q["symbol"] for _, q in run.fake.requests} == {"BTCUSDT"}


async def test_the_newest_stored_candle_is_fetched_again_and_nothing_older(autojump_clock: trio.abc.Clock) -> None:
    run = Run(per_series=1000)
    store = MemoryCandles()
    minute = bucket_start(run.now_ms(), Interval.M1)
    partial = Candle("BTCUSDT", Interval.M1, minute - 3 * 60_000, *[Decimal(1)] * 5, 1, minute)  # type: ignore[arg-type]
    await store.write([CandleWrite(partial)])
    candles = await run.backfill_for(30, store)
    minutes = [c.open_time for c in candles if c.interval is Interval.M1]
    assert minutes == [minute - 3 * 60_000, minute - 2 * 60_000, minute - 60_000]


async def test_a_429_pauses_every_request_for_its_retry_after(autojump_clock: trio.abc.Clock) -> None:
    run = Run(script=[(429, {"Retry-After": "7"}, REFUSED)])
    candles = await run.backfill_for(60)
    first, second, *_ = run.request_times()
    assert second - first == 7.0
    assert len({c.interval for c in candles}) == len(INTERVALS)  # then everything came
    assert run.backfill.health()["backfill"]["rate_limited"] == 1


async def test_a_418_ban_drops_the_job_and_holds_every_request_until_it_ends(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(script=[(418, {"Retry-After": "300"}, {"code": -1003, "msg": "Way too many requests; IP banned."})])
    candles = await run.backfill_for(400)
    first, second, *_ = run.request_times()
    assert second - first == 300.0
    assert len({c.interval for c in candles}) == len(INTERVALS) - 1  # the banned request's series waits for later
    health = run.backfill.health()["backfill"]
    assert (health["banned"], health["failed_jobs"]) == (1, 1)
    assert "event=backfill_paused reason=banned status=418 retry_after=300" in caplog.text


async def test_server_errors_back_off_and_a_job_that_keeps_failing_is_dropped(autojump_clock: trio.abc.Clock) -> None:
    busy = (503, {}, {"code": -1001, "msg": "Internal error; unable to process your request."})
    run = Run(script=[busy] * 4)
    await run.backfill_for(60)
    times = run.request_times()
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[:5])]
    assert gaps == [1.0, 2.0, 4.0, 0.0]  # backoff 1, 2, 4 s; after the 4th attempt the next job starts at once
    health = run.backfill.health()["backfill"]
    assert (health["server_errors"], health["failed_jobs"], health["requests"]) == (4, 1, len(INTERVALS) + 3)


async def test_a_request_binance_calls_wrong_is_not_retried(autojump_clock: trio.abc.Clock) -> None:
    run = Run(script=[(400, {}, {"code": -1121, "msg": "Invalid symbol."})])
    await run.backfill_for(30)
    assert len(run.fake.requests) == len(INTERVALS)  # the failed one once, then the six others
    assert run.backfill.health()["backfill"]["failed_jobs"] == 1


async def test_requests_stay_within_the_weight_budget(autojump_clock: trio.abc.Clock) -> None:
    run = Run(per_series=5, weight_per_minute=10)  # 5 requests a minute
    candles = await run.backfill_for(200)
    times = run.request_times()
    assert len(times) == len(INTERVALS)
    assert all(sum(1 for t in times if start <= t < start + 60) <= 5 for start in times)
    assert len({c.interval for c in candles}) == len(INTERVALS)


async def test_near_binances_weight_limit_requests_wait_for_the_next_minute(autojump_clock: trio.abc.Clock) -> None:
    run = Run()  # the first answer is a normal one; only its header says the IP is nearly at its limit
    run.fake.script = [(200, {"X-MBX-USED-WEIGHT-1M": "5800"}, [])]
    await run.backfill_for(120)
    first, second, *_ = run.request_times()
    assert second - first == 30.0  # 12:00:30 -> 12:01:00


async def test_a_silence_and_an_incomplete_candle_are_fetched_from_klines(autojump_clock: trio.abc.Clock) -> None:
    run = Run()
    now = run.now_ms()
    minute = bucket_start(now, Interval.M1)
    async with trio.open_nursery() as nursery:
        await nursery.start(run.backfill.run)
        run.backfill.gap(Gap("BTCUSDT", minute - 5 * 60_000 + 10, now))
        run.backfill.gap(Gap("AAPL", 0, now))  # not a Binance symbol: nothing to fetch
        yesterday = bucket_start(now, Interval.D1) - 86_400_000
        day = Candle("BTCUSDT", Interval.D1, yesterday, *[Decimal(1)] * 5, 1, 0)  # type: ignore[arg-type]
        run.backfill.incomplete(day)
        candles = await run.collect(30)
        nursery.cancel_scope.cancel()
    assert [c.open_time for c in candles if c.interval is Interval.M1] == [minute - i * 60_000 for i in range(5, 0, -1)]
    assert [c.open_time for c in candles if c.interval is Interval.H1] == [minute - 3_600_000]  # closed in the gap
    assert [c.open_time for c in candles if c.interval is Interval.D1] == [yesterday]
    repair = next(at for at, query in run.fake.requests if query["interval"] == "1d")
    assert repair >= 3.0  # a little after it closed, so Binance has the whole interval
