"""Supervision shared by every source: restarts with capped, fully jittered exponential backoff,
the per-symbol stale watchdog, and the source's state as the hub and /healthz see it.

A source implements one connection attempt (`run_connection`); `Supervisor` runs it forever. The
attempt reports through its `FeedOutput` when it waits out a rate limit or lacks a usable price.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import trio

from ..errors import leaves, redact_tokens
from ..model import Ingest, Listing, SourceState, SourceStatus
from .rejects import RejectedMessages
from .retry import Backoff, Jitter, RetryPolicy
from .source import FeedOutput, HubGone, OnDemandSource, QuietChecker, Source, SourceUnauthorized, Verdict

MAX_DETAIL_LENGTH = 200

log = logging.getLogger(__name__)


class SourceStalled(Exception):
    """The connection is open but no symbol has had data for the stale threshold."""


@dataclass(frozen=True, slots=True)
class SourceStatistics:
    state: SourceState
    reconnects: int
    rejected: Mapping[str, int]  # upstream messages refused, by `RejectKind` value


class Supervisor:
    """Runs one source forever: restart with backoff, watch for stale symbols, report state."""

    def __init__(
        self,
        source: Source,
        *,
        stale_after: float | None,
        policy: RetryPolicy,
        jitter: Jitter | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.name = source.name
        self._stale_after = stale_after
        self._policy = policy
        self._jitter = jitter or random.Random()
        self._wall_clock = wall_clock
        self._feed: FeedOutput | None = None
        self._attempt_scope: trio.CancelScope | None = None
        self._live_since: float | None = None
        self._wake = trio.Event()
        self._phase, self._phase_detail = SourceState.CONNECTING, ""
        self._shown: tuple[SourceState, str, int] | None = None
        self._showing = trio.Lock()  # statuses reach the hub in the order they were decided
        self._settled = trio.Event()
        self.rejected = RejectedMessages(source.name)
        self.state = SourceState.CONNECTING
        self.reconnects = 0

    @property
    def symbols(self) -> tuple[str, ...]:
        """What the source streams now (on-demand sources: it changes)."""
        return self.source.symbols

    def stream_symbol(self, listing: Listing) -> None:
        """Demand asks for `listing.symbol`: the source subscribes upstream and the watchdog watches it."""
        if not isinstance(self.source, OnDemandSource):
            log.warning("event=source_fixed_symbols source=%s symbol=%s", self.name, listing.symbol)
            return
        self.source.stream_symbol(listing)
        if self._feed is not None:
            self._feed.track(listing.symbol)

    def drop_symbol(self, symbol: str) -> None:
        if not isinstance(self.source, OnDemandSource):
            return
        self.source.drop_symbol(symbol)
        if self._feed is not None:
            self._feed.untrack(symbol)

    @property
    def last_message_ts(self) -> int | None:
        return self._feed.last_message_ts if self._feed else None

    def statistics(self) -> SourceStatistics:
        return SourceStatistics(self.state, self.reconnects, self.rejected.counts())

    async def run(
        self,
        updates: trio.MemorySendChannel[Ingest],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Started once the state first leaves `connecting` (live, failed, or waiting out a rate limit), so
        neither a dead nor a rate-limited upstream holds up startup."""
        self._settled, self._shown = trio.Event(), None
        async with updates:
            feed = self._feed = FeedOutput(
                self.name,
                self.symbols,
                updates,
                wall_clock=self._wall_clock,
                rejected=self.rejected,
                on_condition=self._show_state,
            )
            try:
                async with trio.open_nursery() as nursery:
                    if self._stale_after is not None:
                        nursery.start_soon(self._watch_stale, feed, self._stale_after)
                    nursery.start_soon(self._supervise, feed)
                    await self._settled.wait()
                    task_status.started()
            finally:
                self._report_stopped(updates)

    async def _supervise(self, feed: FeedOutput) -> None:
        backoff = Backoff(self._policy, self._jitter)
        await self._set_phase(SourceState.CONNECTING, "")
        while True:
            began = trio.current_time()
            unauthorized = False
            error: Exception | None = None
            try:
                with trio.CancelScope() as attempt:
                    self._attempt_scope = attempt
                    async with trio.open_nursery() as nursery:
                        await nursery.start(self.source.run_connection, feed)
                        self._live_since = trio.current_time()
                        self._wake.set()
                        await self._set_phase(SourceState.LIVE, "")
                if attempt.cancelled_caught:
                    error = SourceStalled(f"no data for {self._stale_after:g}s")
            except* HubGone:
                raise
            except* Exception as group:
                error = leaves(group)[0]
                unauthorized = _is_unauthorized(group)
            finally:
                self._attempt_scope, self._live_since = None, None
                feed.end_connection()
            healthy = backoff.ended_after(trio.current_time() - began)
            if error is None and healthy:
                delay, detail = 0.0, "planned reconnect"
            else:
                backoff.failed()
                delay = backoff.delay()
                detail = "connection ended" if error is None else _describe(error)
            if unauthorized:
                delay = max(delay, backoff.policy.unauthorized_delay)
            self.reconnects += 1
            log.log(
                logging.INFO if error is None and healthy else logging.WARNING,
                "event=source_disconnected source=%s error=%r failures=%d retry_in=%.3f",
                self.name,
                detail,
                backoff.failures,
                delay,
            )
            await self._set_phase(SourceState.UNAUTHORIZED if unauthorized else SourceState.RECONNECTING, detail)
            await trio.sleep(delay)

    async def _set_phase(self, phase: SourceState, detail: str) -> None:
        """Where the supervision loop is: connecting, live, or between attempts (and why)."""
        self._phase, self._phase_detail = phase, detail
        await self._show_state()

    async def _show_state(self) -> None:
        """Send the state clients see: the phase, unless the connection waits out a rate limit (any phase) or
        lacks a usable price for a symbol (when live). Unchanged states are not sent again."""
        feed = self._feed
        assert feed is not None
        async with self._showing:
            state, detail = self._phase, self._phase_detail
            if feed.rate_limit_detail is not None:
                state, detail = SourceState.RATE_LIMITED, feed.rate_limit_detail
            elif state is SourceState.LIVE and feed.unpriced:
                missing = "; ".join(f"{symbol} ({reason})" for symbol, reason in feed.unpriced.items())
                detail = redact_tokens(f"no usable price for {missing}")[:MAX_DETAIL_LENGTH]
                state = SourceState.DEGRADED
            if (state, detail, self.reconnects) == self._shown:
                return
            self._shown = (state, detail, self.reconnects)
            self.state = state
            if state is not SourceState.CONNECTING:
                self._settled.set()
            await feed.send(
                SourceStatus(
                    self.name,
                    state,
                    feed.now_ms(),
                    detail=detail,
                    reconnects=self.reconnects,
                    last_message_ts=feed.last_message_ts,
                )
            )

    def _report_stopped(self, updates: trio.MemorySendChannel[Ingest]) -> None:
        self.state = SourceState.STOPPED
        status = SourceStatus(self.name, SourceState.STOPPED, int(self._wall_clock() * 1000))
        # Best effort: when the hub is full or already gone, the service is stopping anyway.
        with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            updates.send_nowait(status)

    # -- the stale watchdog ------------------------------------------------------------------------

    async def _watch_stale(self, feed: FeedOutput, stale_after: float) -> None:
        """Mark symbols stale after `stale_after` quiet seconds; restart a connection gone all quiet."""
        checker = self.source if isinstance(self.source, QuietChecker) else None
        while True:
            deadlines = [last + stale_after for symbol, last in feed.last_activity.items() if symbol not in feed.stale]
            if self._live_since is not None and len(feed.stale) == len(feed.last_activity):
                deadlines.append(self._live_since + stale_after)
            with trio.move_on_at(min(deadlines, default=float("inf"))):
                await _either(feed.freshened, self._wake)
            if feed.freshened.is_set():
                feed.freshened = trio.Event()
            if self._wake.is_set():
                self._wake = trio.Event()
            now = trio.current_time()
            for symbol, last in list(feed.last_activity.items()):
                if symbol in feed.stale or now < last + stale_after:
                    continue
                verdict = await checker.verify_quiet(symbol, feed) if checker else Verdict.STALE
                if verdict is Verdict.QUIET:
                    await feed.mark_active(symbol)
                elif feed.last_activity[symbol] == last:
                    log.info("event=symbol_stale source=%s symbol=%s", self.name, symbol)
                    await feed.mark_stale(symbol)
            live_since = self._live_since
            if (
                live_since is not None
                and self._attempt_scope is not None
                and len(feed.stale) == len(feed.last_activity)
                and now >= live_since + stale_after
            ):
                self._attempt_scope.cancel()
                self._live_since = None


async def _either(first: trio.Event, second: trio.Event) -> None:
    async with trio.open_nursery() as nursery:
        for event in (first, second):

            async def wait_then_cancel(event: trio.Event = event) -> None:
                await event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(wait_then_cancel)


def _is_unauthorized(group: BaseExceptionGroup[Exception]) -> bool:
    return any(
        isinstance(error, SourceUnauthorized) or getattr(error, "status_code", None) == 401 for error in leaves(group)
    )


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return redact_tokens(text)[:MAX_DETAIL_LENGTH]
