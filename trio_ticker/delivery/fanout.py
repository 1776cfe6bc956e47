"""The fan-out: each ingest item turned into frames and offered to the outboxes that want it, never waiting.

An update is numbered into a tick, stored and encoded once per dialect in use (`TickBook`), and that one frame
offered to each subscriber; stale marks, refusals, source states and a new subscriber's first frames alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..model import (
    Ingest,
    PastTick,
    PriceUpdate,
    SourceStatus,
    StaleChange,
    SymbolRejected,
    Tick,
    is_usable_price,
    tick_from_update,
)
from ..protocol import prototype as prototype_dialect
from ..protocol.dialects import Dialect
from ..protocol.errors import upstream_rejected_error
from ..protocol.frames import encode_source_status, encode_symbol_status
from .outbox import ClientOutbox, status_key
from .subscriptions import Subscriptions
from .tick_book import TickBook

if TYPE_CHECKING:
    from ..history.live import LiveCandles
    from .demand import SymbolDemand

log = logging.getLogger(__name__)

TICK_SAMPLE_MASK = 31
"""Every 32nd tick is offered to `on_tick_sampled` (metrics' tick age): one AND per tick, no clock read."""


class FanOut:
    def __init__(
        self,
        book: TickBook,
        subscriptions: Subscriptions,
        *,
        configured: tuple[str, ...],
        demand: SymbolDemand | None,
        candles: LiveCandles | None,
        on_tick_sampled: Callable[[Tick], None] | None,
        may_number: Callable[[str, int], bool] | None,
        on_published: Callable[[Tick], None] | None = None,
    ) -> None:
        """`may_number(symbol, seq)` says whether a persisted numbering stored that seq as reserved;
        `on_published` is told every tick published (the tick journal)."""
        self._book = book
        self._subscriptions = subscriptions
        self._configured = configured
        self._demand = demand
        self._candles = candles
        self._on_tick_sampled = on_tick_sampled
        self._may_number = may_number
        self._on_published = on_published
        self._unnumbered: dict[str, PriceUpdate] = {}  # per symbol: the latest update refused a seq, retried
        self._sources: dict[str, SourceStatus] = {}  # each source's latest state
        self.ticks_in = 0
        self.messages_out = 0
        self.conflated = 0  # unsent ticks an outbox dropped for a newer one of the same symbol
        self.unknown_symbol_updates = 0
        self.unusable_prices = 0
        self.unreserved_seqs = 0

    def ingest(self, item: Ingest) -> None:
        if self._unnumbered:
            self._publish_unnumbered()
        if isinstance(item, PriceUpdate):
            self.update(item)
        elif isinstance(item, Tick):
            self.tick(item)
        elif isinstance(item, PastTick):
            self._book.remember(item.tick, item.age)
        elif isinstance(item, StaleChange):
            self._stale(item)
        elif isinstance(item, SymbolRejected):
            self._rejected(item)
        else:
            self._source_status(item)

    def update(self, update: PriceUpdate) -> Tick | None:
        """Number one update (`seq` = the symbol's previous + 1) and publish it.

        The sources' decoders refuse unusable prices; this is the last line, so no client ever gets one."""
        if not (is_usable_price(update.price) and is_usable_price(update.reference)):
            self.unusable_prices += 1
            if self.unusable_prices == 1:
                log.warning(
                    "event=unusable_price symbol=%s source=%s further=counted_only", update.symbol, update.source
                )
            return None
        seq = self._book.next_seq(update.symbol)
        may_number = self._may_number
        if may_number is not None and self._subscriptions.serves(update.symbol) and not may_number(update.symbol, seq):
            self.unreserved_seqs += 1
            self._unnumbered[update.symbol] = update  # its latest waits, tried again with the next ingest item
            return None
        return self.tick(tick_from_update(update, seq=seq))

    def _publish_unnumbered(self) -> None:
        """Updates that waited for their seqs to be stored (a symbol just streamed on demand), oldest first."""
        waiting, self._unnumbered = self._unnumbered, {}
        for update in waiting.values():
            self.update(update)

    def tick(self, tick: Tick) -> Tick | None:
        """Store, encode once per dialect in use, and fan out a numbered tick.

        Unknown symbols are dropped (counted; the first one logged), and so is a tick the book refuses as not
        newer than the symbol's latest. A symbol nobody subscribes to costs a dict lookup."""
        subscribers = self._subscriptions.of(tick.symbol)
        if subscribers is None:
            self.unknown_symbol_updates += 1
            if self.unknown_symbol_updates == 1:
                log.warning(
                    "event=unknown_symbol_update symbol=%s source=%s further=counted_only", tick.symbol, tick.source
                )
            return None
        frame = self._book.store(tick)
        if frame is None:
            return None
        self.ticks_in += 1
        full_subscribers, prototype_subscribers = subscribers
        entry = (tick.symbol, frame)
        conflated = 0
        for outbox in full_subscribers:
            conflated += outbox.offer_entry(entry)
        if prototype_subscribers:
            entry = (tick.symbol, self._book.prototype_frame(tick))
            for outbox in prototype_subscribers:
                conflated += outbox.offer_entry(entry)
        self.conflated += conflated
        self.messages_out += len(full_subscribers) + len(prototype_subscribers)
        if self._candles is not None:
            self._candles.record(tick)
        if self._on_published is not None:
            self._on_published(tick)
        if not self.ticks_in & TICK_SAMPLE_MASK and self._on_tick_sampled is not None:
            self._on_tick_sampled(tick)
        return tick

    def _stale(self, change: StaleChange) -> None:
        tick = self._book.mark_stale(change)
        subscribers = self._subscriptions.of(change.symbol)
        if tick is None or subscribers is None:
            return
        full_subscribers, prototype_subscribers = subscribers
        frame = encode_symbol_status(change.symbol, stale=change.stale, ts=change.ts)
        for outbox in full_subscribers:
            outbox.offer(status_key(change.symbol, "stale"), frame)
        # The prototypes' dialect has no status frames: its clients get the price object again, marked.
        if prototype_subscribers:
            frame = self._book.prototype_frame(tick)
            for outbox in prototype_subscribers:
                outbox.offer(change.symbol, frame)

    def _rejected(self, rejection: SymbolRejected) -> None:
        """The upstream refused a symbol: each subscriber gets `upstream_rejected` and loses the subscription."""
        symbol = rejection.symbol
        if symbol in self._configured:
            return  # a configured symbol stays; its source reports the trouble in its state
        log.warning("event=upstream_rejected symbol=%s source=%s reason=%r", symbol, rejection.source, rejection.reason)
        error = upstream_rejected_error(symbol, rejection.reason)
        key = status_key(symbol, "rejected")
        for subscribers in self._subscriptions.drop_symbol(symbol):
            for outbox in subscribers:
                outbox.discard_pending((symbol,))
                frame = (
                    prototype_dialect.encode_error(error) if outbox.dialect is Dialect.PROTOTYPE else error.to_frame()
                )
                outbox.offer(key, frame)
        if self._demand is not None:
            self._demand.rejected(symbol)
        self.retire(symbol)

    def retire(self, symbol: str) -> None:
        """`symbol` no longer streams (demand dropped it): forget its tables and last price, unless configured."""
        if symbol in self._configured or self._subscriptions.count(symbol):
            return
        self._subscriptions.drop_symbol(symbol)
        self._book.forget(symbol)

    def _source_status(self, status: SourceStatus) -> None:
        self._sources[status.source] = status
        frame = encode_source_status(status)
        key = status_key("", f"source:{status.source}")
        for outbox in self._subscriptions.clients():
            if outbox.dialect is Dialect.FULL:
                outbox.offer(key, frame)

    def source_statuses(self) -> dict[str, SourceStatus]:
        return dict(self._sources)

    def first_frames(self, outbox: ClientOutbox, symbol: str, since: int | None, epoch: str | None) -> bool | None:
        """Queue a new subscriber's first frames of `symbol`: the ticks after `since` (the last seq it saw in
        `epoch`) when the recovery history still has them all, or else the latest tick (marked
        `recovered: false` when recovery was asked for). Whether it was recovered; None when not asked."""
        book = self._book
        if outbox.dialect is Dialect.PROTOTYPE:
            if (tick := book.latest(symbol)) is not None:
                outbox.offer(symbol, book.prototype_frame(tick))
            return None
        if since is None:
            if (snapshot := book.snapshot(symbol)) is not None:
                outbox.offer(symbol, snapshot)
            return None
        frames = book.replay_frames(symbol, since, epoch)
        if frames is not None:
            outbox.begin_replay(frames)
        elif (snapshot := book.snapshot(symbol, recovered=False)) is not None:
            outbox.offer(symbol, snapshot)
        return frames is not None
