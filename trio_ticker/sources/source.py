"""The one Source contract: what a price source implements, and what it may do while connected.

A source (demo, Binance, Finnhub) implements one connection attempt, `run_connection(feed)`, and
publishes through the `FeedOutput` it is given; `supervise.Supervisor` runs it forever.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, runtime_checkable

import trio

from ..model import Ingest, Listing, PriceUpdate, StaleChange, SymbolRejected
from .rejects import RejectedMessages, RejectKind


class SourceUnauthorized(Exception):
    """The upstream refused our credentials: retry slowly, never in a tight loop."""


class HubGone(Exception):
    """The hub's ingest channel is closed: the service is stopping, so the source stops too."""


class Verdict(enum.Enum):
    STALE = "stale"
    QUIET = "quiet"  # no update, but the upstream confirms the last price is current


class Source(Protocol):
    name: str

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols it streams now."""

    async def run_connection(self, feed: FeedOutput, *, task_status: trio.TaskStatus[None] = ...) -> None:
        """Connect, report started once live, stream until failure (raise) or a planned end (return)."""


@runtime_checkable
class OnDemandSource(Protocol):
    """A source whose symbols follow demand: each call returns at once; the source paces its upstream."""

    def stream_symbol(self, listing: Listing) -> None:
        """Stream `listing.symbol` too (on the open connection, and on every reconnect)."""

    def drop_symbol(self, symbol: str) -> None:
        """Stop streaming `symbol`."""


@runtime_checkable
class QuietChecker(Protocol):
    async def verify_quiet(self, symbol: str, feed: FeedOutput) -> Verdict:
        """Asked before a quiet symbol is marked stale (e.g. stocks outside market hours)."""


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

    def track(self, symbol: str) -> None:
        """`symbol` streams from now on: its messages are accepted and the stale watchdog watches it."""
        self.last_activity.setdefault(symbol, trio.current_time())

    def untrack(self, symbol: str) -> None:
        self.last_activity.pop(symbol, None)
        self.stale.discard(symbol)
        self.unpriced.pop(symbol, None)

    async def reject_symbol(self, symbol: str, reason: str) -> None:
        """The upstream refused `symbol`: the hub tells its subscribers, and demand drops it."""
        self.untrack(symbol)
        await self.send(SymbolRejected(symbol, self.source, reason))

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
