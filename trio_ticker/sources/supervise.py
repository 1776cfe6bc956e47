"""Supervision shared by every source: restarts with capped, fully jittered exponential backoff,
the per-symbol stale watchdog, and the source's state as the hub and /healthz see it.

A source implements one connection attempt (`run_connection`); `Supervisor` runs it forever. The
attempt reports through its `FeedOutput` when it waits out a rate limit or lacks a usable price.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import trio

from ..model import Ingest, PriceUpdate, SourceState, SourceStatus, StaleChange
from .finnhub import redact_token
from .rejects import RejectedMessages, RejectKind

MAX_DETAIL_LENGTH = 200

log = logging.getLogger(__name__)


class SourceUnauthorized(Exception):
    """The upstream refused our credentials: retry slowly, never in a tight loop."""


class SourceStalled(Exception):
    """The connection is open but no symbol has had data for the stale threshold."""


class HubGone(Exception):
    """The hub's ingest channel is closed: the service is stopping, so the source stops too."""


class Verdict(enum.Enum):
    STALE = "stale"
    QUIET = "quiet"  # no update, but the upstream confirms the last price is current


class LiveSource(Protocol):
    name: str
    symbols: tuple[str, ...]

    async def run_connection(self, feed: FeedOutput, *, task_status: trio.TaskStatus[None] = ...) -> None:
        """Connect, report started once live, stream until failure (raise) or a planned end (return)."""


@runtime_checkable
class QuietChecker(Protocol):
    async def verify_quiet(self, symbol: str, feed: FeedOutput) -> Verdict:
        """Asked before a quiet symbol is marked stale (e.g. stocks outside market hours)."""


class Jitter(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial: float = 1.0
    maximum: float = 60.0
    healthy_after: float = 60.0  # a connection that lived this long resets the backoff
    unauthorized_delay: float = 300.0

    def delay(self, failures: int, jitter: Jitter) -> float:
        """Full jitter: uniform in [0, min(maximum, initial * 2**(failures-1))]."""
        ceiling = min(self.maximum, self.initial * 2.0 ** min(failures - 1, 64))
        return jitter.uniform(0.0, ceiling)


@dataclass(frozen=True, slots=True)
class SourceStatistics:
    state: SourceState
    reconnects: int
    rejected: Mapping[str, int]  # upstream messages refused, by `RejectKind` value


async def _no_report() -> None:
    pass


class FeedOutput:
    """What a connection attempt may do: publish prices, report activity, note messages, refuse
    messages, and say that it waits out a rate limit or that a symbol has no usable price."""

    def __init__(
        self,
        source: str,
        symbols: tuple[str, ...],
        updates: trio.MemorySendChannel[Ingest],
        *,
        wall_clock: Callable[[], float],
        rejected: RejectedMessages | None = None,
        on_condition: Callable[[], Awaitable[None]] = _no_report,
    ) -> None:
        self.source = source
        self._updates = updates
        self._wall_clock = wall_clock
        self._on_condition = on_condition
        now = trio.current_time()
        self.last_activity: dict[str, float] = dict.fromkeys(symbols, now)
        self.stale: set[str] = set()
        self.last_message_ts: int | None = None
        self.freshened = trio.Event()
        self.rejected = rejected or RejectedMessages(source)
        self.unpriced: dict[str, str] = {}  # symbol -> why it has no usable price on this connection
        self.rate_limit_detail: str | None = None
        self._rate_limit_waits = 0

    def accepts(self, symbol: str, sample: str | bytes) -> bool:
        """Whether `symbol` is one of this source's; a message for any other is refused and counted."""
        if symbol in self.last_activity:
            return True
        self.rejected.note(RejectKind.UNKNOWN_SYMBOL, f"unknown symbol {symbol[:40]!r}", sample)
        return False

    @contextlib.asynccontextmanager
    async def waiting_out_rate_limit(self, detail: str) -> AsyncIterator[None]:
        """While the body waits out an upstream's Retry-After, the source shows `rate_limited` (with `detail`)."""
        self._rate_limit_waits += 1
        self.rate_limit_detail = detail
        await self._on_condition()
        try:
            yield
        finally:
            self._rate_limit_waits -= 1
            if not self._rate_limit_waits:
                self.rate_limit_detail = None
        await self._on_condition()

    async def mark_unpriced(self, symbol: str, reason: str) -> None:
        """`symbol` has no usable price on this connection: the source is `degraded`, not `live`."""
        if self.unpriced.get(symbol) != reason:
            self.unpriced[symbol] = reason
            await self._on_condition()

    async def mark_priced(self, symbol: str) -> None:
        if self.unpriced.pop(symbol, None) is not None:
            await self._on_condition()

    def end_connection(self) -> None:
        """What an attempt said about its symbols ends with it; the next attempt reports afresh."""
        self.unpriced.clear()

    def now_ms(self) -> int:
        return int(self._wall_clock() * 1000)

    def note_message(self) -> None:
        """Any frame arrived (shown as the source's last message time)."""
        self.last_message_ts = self.now_ms()

    async def publish(self, update: PriceUpdate) -> None:
        await self.mark_active(update.symbol)
        await self.send(update)

    async def publish_or_mark_active(self, update: PriceUpdate | None, symbol: str) -> None:
        """A live message's outcome: its update, or (its book made none: the price did not move) only news that
        `symbol` is alive."""
        if update is not None:
            await self.publish(update)
        else:
            await self.mark_active(symbol)

    async def mark_active(self, symbol: str) -> None:
        """The symbol has current data; a stale symbol is announced fresh before its next tick."""
        if symbol not in self.last_activity:
            return
        self.last_activity[symbol] = trio.current_time()
        if symbol in self.stale:
            self.stale.discard(symbol)
            self.freshened.set()
            await self.send(StaleChange(symbol, False, self.now_ms()))

    async def mark_stale(self, symbol: str) -> None:
        if symbol not in self.stale:
            self.stale.add(symbol)
            await self.send(StaleChange(symbol, True, self.now_ms()))

    async def send(self, item: Ingest) -> None:
        try:
            try:  # no checkpoint while the hub keeps up: under load each one costs a whole scheduler pass
                self._updates.send_nowait(item)
            except trio.WouldBlock:
                await self._updates.send(item)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise HubGone(self.source) from error


class Supervisor:
    """Runs one source forever: restart with backoff, watch for stale symbols, report state."""

    def __init__(
        self,
        source: LiveSource,
        *,
        stale_after: float | None,
        policy: RetryPolicy,
        jitter: Jitter | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.name = source.name
        self.symbols = source.symbols
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
        failures = 0
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
                error = _leaves(group)[0]
                unauthorized = _is_unauthorized(group)
            finally:
                self._attempt_scope, self._live_since = None, None
                feed.end_connection()
            healthy = trio.current_time() - began >= self._policy.healthy_after
            if healthy:
                failures = 0
            if error is None and healthy:
                delay, detail = 0.0, "planned reconnect"
            else:
                failures += 1
                delay = self._policy.delay(failures, self._jitter)
                detail = "connection ended" if error is None else _describe(error)
            if unauthorized:
                delay = max(delay, self._policy.unauthorized_delay)
            self.reconnects += 1
            log.log(
                logging.INFO if error is None and healthy else logging.WARNING,
                "event=source_disconnected source=%s error=%r failures=%d retry_in=%.3f",
                self.name,
                detail,
                failures,
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
                state, detail = SourceState.DEGRADED, redact_token(f"no usable price for {missing}")[:MAX_DETAIL_LENGTH]
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


def _leaves(group: BaseExceptionGroup[Exception]) -> list[Exception]:
    found: list[Exception] = []
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            found.extend(_leaves(error))
        else:
            found.append(error)
    return found


def _is_unauthorized(group: BaseExceptionGroup[Exception]) -> bool:
    return any(
        isinstance(error, SourceUnauthorized) or getattr(error, "status_code", None) == 401 for error in _leaves(group)
    )


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return redact_token(text)[:MAX_DETAIL_LENGTH]
