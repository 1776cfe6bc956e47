"""Backfill from Binance's REST klines: history before this process started, gaps, incomplete candles.

On the writing node only: at the first write it queues, per crypto symbol and interval, the closed
intervals since the newest stored one (at most TICKER_BACKFILL_CANDLES); a silence queues the
intervals it swallowed; a candle that may lack trades is fetched again once it has closed. One task
fetches the jobs in turn, within a request-weight budget; 429 and 418 pause every request for
`Retry-After`, 5xx and transport errors back off; a job that keeps failing is dropped, never looped.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..sources.ratelimit import SlidingWindowLimiter
from ..sources.retry import Jitter, RetryPolicy
from .binance_klines import (
    KLINES_PATH,
    KLINES_WEIGHT,
    MAX_KLINES,
    KlinesDecodeError,
    decode_error,
    decode_klines,
    klines_params,
    weight_near_limit,
)
from .book import Gap
from .candles import INTERVALS, Candle, Interval, bucket_start
from .store import CandleStore, CandleWrite, Retention

log = logging.getLogger(__name__)

MIN_RETRY_DELAY = 1.0
"""Seconds at least between two attempts of one request, whatever the jitter draws."""
BANNED_DEFAULT_DELAY = 120.0


class BackfillFailed(Exception):
    """A job could not be fetched (its request is wrong, Binance banned us, or it kept failing)."""


@dataclass(order=True, frozen=True, slots=True)
class BackfillJob:
    not_before: float  # trio time
    symbol: str = field(compare=False)
    interval: Interval = field(compare=False)
    first_open: int = field(compare=False)  # epoch ms, inclusive
    last_open: int = field(compare=False)  # epoch ms, inclusive
    reason: str = field(compare=False)  # "start", "gap" or "repair"


class BinanceBackfill:
    def __init__(
        self,
        symbols: Sequence[str],
        *,
        base_url: str,
        results: trio.MemorySendChannel[Sequence[Candle]],
        weight_per_minute: int,
        candles_per_series: int,
        retention: Retention,
        policy: RetryPolicy,
        http_timeout: float,
        max_attempts: int = 4,
        repair_delay: float = 3.0,
        max_jobs: int = 10_000,
        jitter: Jitter | None = None,
        wall_clock: Callable[[], float] = time.time,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.symbols = frozenset(symbols)
        self._base_url = base_url.rstrip("/")
        self._results = results
        self._limiter = SlidingWindowLimiter((max(1, weight_per_minute // KLINES_WEIGHT), 60.0))
        self._per_series = candles_per_series
        self._retention = retention
        self._policy = policy
        self._http_timeout = http_timeout
        self._max_attempts = max_attempts
        self._repair_delay = repair_delay
        self._max_jobs = max_jobs
        self._jitter = jitter or random.Random()
        self._wall_clock = wall_clock
        self._transport = http_transport
        self._jobs: list[BackfillJob] = []
        self._wake = trio.Event()
        self._paused_until_ms: int | None = None
        self.requests = 0
        self.candles = 0
        self.rate_limited = 0
        self.banned = 0
        self.server_errors = 0
        self.failed_jobs = 0
        self.dropped_jobs = 0

    # -- what the writer tells it (on the writing node) ---------------------------------------------

    async def prepare(self, store: CandleStore) -> list[CandleWrite]:
        """Queue the closed intervals since the newest stored candle of each series (which is fetched
        again: the process that wrote it may have stopped inside it)."""
        now = self._now_ms()
        for symbol in sorted(self.symbols):
            for interval in INTERVALS:
                depth = self._depth(interval)
                last_closed = bucket_start(now, interval) - interval.ms
                if depth == 0:
                    continue
                first = last_closed - (depth - 1) * interval.ms
                newest = await store.read(symbol, interval, start=None, end=None, limit=1)
                if newest:
                    first = max(first, newest[0].open_time)
                self._add(symbol, interval, first, last_closed, "start")
        return []

    def gap(self, gap: Gap) -> None:
        """The symbol was silent: fetch the intervals that closed meanwhile (the open one is repaired later)."""
        if gap.symbol not in self.symbols:
            return
        for interval in INTERVALS:
            last = bucket_start(gap.resumed_ts, interval) - interval.ms
            first = max(bucket_start(gap.last_ts, interval), last - (self._depth(interval) - 1) * interval.ms)
            self._add(gap.symbol, interval, first, last, "gap")

    def incomplete(self, candle: Candle) -> None:
        """A closed candle that may lack trades: Binance's kline replaces it, a little after it closed."""
        if candle.symbol in self.symbols:
            self._add(candle.symbol, candle.interval, candle.open_time, candle.open_time, "repair", self._repair_delay)

    def _depth(self, interval: Interval) -> int:
        keep = self._retention.keep_ms.get(interval)
        kept = math.inf if keep is None else keep // interval.ms
        return int(min(self._per_series, kept, self._retention.max_per_series))

    def _add(self, symbol: str, interval: Interval, first: int, last: int, reason: str, delay: float = 0.0) -> None:
        if first > last:
            return
        if len(self._jobs) >= self._max_jobs:
            self.dropped_jobs += 1
            return
        heapq.heappush(self._jobs, BackfillJob(trio.current_time() + delay, symbol, interval, first, last, reason))
        self._wake.set()

    # -- the task ---------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self._results, httpx.AsyncClient(timeout=self._http_timeout, transport=self._transport) as client:
            task_status.started()
            while True:
                job = await self._next_job()
                try:
                    await self._fetch(client, job)
                except BackfillFailed as error:
                    self.failed_jobs += 1
                    log.warning(
                        "event=backfill_failed symbol=%s interval=%s reason=%s error=%r",
                        job.symbol,
                        job.interval.value,
                        job.reason,
                        str(error),
                    )

    async def _next_job(self) -> BackfillJob:
        while True:
            if self._jobs and self._jobs[0].not_before <= trio.current_time():
                return heapq.heappop(self._jobs)
            self._wake = trio.Event()
            with trio.move_on_at(self._jobs[0].not_before if self._jobs else math.inf):
                await self._wake.wait()

    async def _fetch(self, client: httpx.AsyncClient, job: BackfillJob) -> None:
        length = job.interval.ms
        start = job.first_open
        while start <= job.last_open:
            limit = min(MAX_KLINES, (job.last_open - start) // length + 1)
            rows = await self._request(client, job, start, limit)
            now = self._now_ms()
            closed = [candle for candle in rows if candle.close_time < now and candle.open_time <= job.last_open]
            if closed:
                await self._results.send(closed)
                self.candles += len(closed)
            if len(rows) < limit:
                return
            start = rows[-1].open_time + length

    async def _request(self, client: httpx.AsyncClient, job: BackfillJob, start: int, limit: int) -> list[Candle]:
        params = klines_params(job.symbol, job.interval, start_ms=start, end_ms=job.last_open, limit=limit)
        problem = ""
        for attempt in range(1, self._max_attempts + 1):
            await self._limiter.acquire()
            try:
                response = await client.get(self._base_url + KLINES_PATH, params=params)
            except httpx.HTTPError as error:  # timeouts, refused or broken connections
                problem = f"{type(error).__name__}: {error}"
                await self._back_off(attempt)
                continue
            self.requests += 1
            self._watch_weight(response)
            status = response.status_code
            if status == 200:
                try:
                    return decode_klines(response.content, job.symbol, job.interval)
                except KlinesDecodeError as error:
                    raise BackfillFailed(str(error)) from None
            if status == 429:
                self.rate_limited += 1
                self._pause(response, self._policy.maximum, "rate_limited")
                problem = "HTTP 429"
                continue
            if status == 418:
                self.banned += 1
                self._pause(response, BANNED_DEFAULT_DELAY, "banned")
                raise BackfillFailed(f"HTTP 418 (banned): {decode_error(response.content)}")
            if status >= 500:
                self.server_errors += 1
                problem = f"HTTP {status}"
                await self._back_off(attempt)
                continue
            raise BackfillFailed(f"HTTP {status}: {decode_error(response.content)}")
        raise BackfillFailed(f"gave up after {self._max_attempts} attempts ({problem})")

    async def _back_off(self, attempt: int) -> None:
        if attempt < self._max_attempts:  # after the last one the job is given up: nothing to wait for
            await trio.sleep(max(MIN_RETRY_DELAY, self._policy.delay(attempt, self._jitter)))

    def _pause(self, response: httpx.Response, fallback: float, why: str) -> None:
        try:
            delay = max(MIN_RETRY_DELAY, float(response.headers.get("Retry-After", "")))
        except ValueError:
            delay = fallback
        self._limiter.pause_until(trio.current_time() + delay)
        self._paused_until_ms = self._now_ms() + round(delay * 1000)
        level = logging.ERROR if why == "banned" else logging.WARNING
        log.log(level, "event=backfill_paused reason=%s status=%d retry_after=%.0f", why, response.status_code, delay)

    def _watch_weight(self, response: httpx.Response) -> None:
        """Binance counts every client of our IP: near its limit, wait for the next minute's budget."""
        if (used := weight_near_limit(response.headers)) is not None:
            delay = 60.0 - self._wall_clock() % 60.0
            self._limiter.pause_until(trio.current_time() + delay)
            log.warning("event=backfill_paused reason=weight used=%d retry_after=%.0f", used, delay)

    def _now_ms(self) -> int:
        return int(self._wall_clock() * 1000)

    # -- reporting --------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {
            "backfill": {
                "queued": len(self._jobs),
                "requests": self.requests,
                "candles": self.candles,
                "rate_limited": self.rate_limited,
                "banned": self.banned,
                "server_errors": self.server_errors,
                "failed_jobs": self.failed_jobs,
                "dropped_jobs": self.dropped_jobs,
                "paused_until": self._paused_until_ms,
            }
        }

    def metrics(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("ticker_backfill_queued_jobs", "Backfill jobs waiting", value=len(self._jobs))
        yield CounterMetricFamily("ticker_backfill_requests", "Klines requests answered", value=self.requests)
        yield CounterMetricFamily("ticker_backfill_candles", "Closed candles fetched from klines", value=self.candles)
        refused = CounterMetricFamily(
            "ticker_backfill_refused", "Klines requests refused, by status", labels=["status"]
        )
        for status, count in (("429", self.rate_limited), ("418", self.banned), ("5xx", self.server_errors)):
            refused.add_metric([status], count)
        yield refused
        yield CounterMetricFamily("ticker_backfill_failed_jobs", "Backfill jobs given up", value=self.failed_jobs)
