"""The hub: latest tick per symbol, who subscribes to what, and fan-out into client outboxes.

The ingest route feeds one bounded channel; `Hub.run` numbers each update (per-symbol `seq`), encodes
it once (and once in the prototypes' dialect while that has subscribers), and offers the frame to
each subscriber's outbox without ever waiting. A symbol nobody subscribes to costs a dict lookup per dialect.
The slow-client reaper it is built with watches the outboxes that fall behind and calls back `evict_slow_client`.
It names its numbering with an epoch and keeps the recent frames a reconnecting client may ask to be replayed.
With a `SymbolDemand` the tables grow and shrink with the clients: the hub tells it when a symbol gains its
first subscriber or loses its last, and it calls `retire` once a symbol no longer streams.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from ..model import (
    Ingest,
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
from ..protocol.errors import CloseCode, ProtocolError, RequestId, unknown_symbols_error, upstream_rejected_error
from ..protocol.frames import encode_source_status, encode_symbol_status, encode_tick, snapshot_frame
from .outbox import ClientOutbox, status_key
from .recovery import RecoveryHistory, RecoveryLimits
from .slow_clients import SlowClientReaper

if TYPE_CHECKING:
    from ..history.candles import Interval
    from ..history.live import LiveCandles
    from .demand import SymbolDemand

log = logging.getLogger(__name__)

TICK_SAMPLE_MASK = 31
"""Every 32nd tick is offered to `on_tick_sampled` (metrics' tick age): one AND per tick, no clock read."""


@dataclass(frozen=True, slots=True)
class HubStatistics:
    clients: int
    subscriptions: int
    symbols_with_data: int
    ticks_in: int
    encodes: int
    messages_out: int
    conflated: int
    evicted: int
    unknown_symbol_updates: int  # dropped: a symbol this hub does not serve
    unusable_prices: int  # dropped: a price or reference outside the model's price range
    unreserved_seqs: int  # held: the persisted numbering had not stored the seq it would get (the latest retried)


@dataclass(slots=True)
class _Counters:
    ticks_in: int = 0
    encodes: int = 0
    messages_out: int = 0
    conflated: int = 0
    evicted: int = 0
    unknown_symbol_updates: int = 0
    unusable_prices: int = 0
    unreserved_seqs: int = 0


class Hub:
    def __init__(
        self,
        symbols: Iterable[str],
        *,
        client_buffer: int,
        reaper: SlowClientReaper,
        on_tick_sampled: Callable[[Tick], None] | None = None,
        candles: LiveCandles | None = None,
        epoch: str = "",
        recovery: RecoveryLimits | None = None,
        first_seq: Callable[[str], int] | None = None,
        may_number: Callable[[str, int], bool] | None = None,
        demand: SymbolDemand | None = None,
    ) -> None:
        """`symbols` are the configured ones; with `demand`, any symbol it admits is served too.
        `epoch` names the numbering (docs/protocol.md, "Recovery"); `recovery` bounds the replay history.
        A persisted numbering (history/numbering.py) gives the seq a symbol's first tick gets (`first_seq`,
        else 1) and says whether a seq may be given (`may_number`: it was stored as reserved)."""
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.epoch = epoch
        self._first_seq = first_seq or (lambda symbol: 1)
        self._may_number = may_number
        self._recovery = RecoveryHistory(self.symbols, recovery or RecoveryLimits(0, 0.0))
        self._recording = self._recovery.limits.max_ticks > 0
        self.candles = candles  # history: every published tick goes into its candles
        self.demand = demand
        self._reaper = reaper
        self._client_buffer = client_buffer
        # Subscribers per symbol, one table per dialect: each table's fan-out shares one frame per tick.
        self._subscribers: dict[str, dict[ClientOutbox, None]] = {symbol: {} for symbol in self.symbols}
        self._prototype_subscribers: dict[str, dict[ClientOutbox, None]] = {symbol: {} for symbol in self.symbols}
        self._clients: dict[ClientOutbox, None] = {}
        self._latest: dict[str, Tick] = {}
        self._latest_frames: dict[str, str] = {}
        self._previous_prices: dict[str, float] = {}  # the price of the tick before the latest: the prototypes' change
        self._prototype_frames: dict[str, tuple[Tick, str]] = {}  # encoded when first wanted, for that tick
        self._sources: dict[str, SourceStatus] = {}
        self._counters = _Counters()
        self._client_ids = itertools.count(1)
        self._no_clients = trio.Event()
        self._no_clients.set()
        self._on_tick_sampled = on_tick_sampled
        self._unnumbered: dict[str, PriceUpdate] = {}  # per symbol: the latest update refused a seq, retried

    # -- ingest -----------------------------------------------------------------------------------

    async def run(
        self,
        ingest: trio.MemoryReceiveChannel[Ingest],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Consume the ingest channel until every sender has closed its end."""
        task_status.started()
        async with ingest:
            async for item in ingest:
                self.ingest(item)
                # Drain what else is queued now: each `receive` is a checkpoint, and under load one
                # checkpoint costs a whole scheduler pass, which would cap ingest at one item per pass.
                while True:
                    try:
                        self.ingest(ingest.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break

    def ingest(self, item: Ingest) -> None:
        if self._unnumbered:
            self._publish_unnumbered()
        if isinstance(item, PriceUpdate):
            self.publish(item)
        elif isinstance(item, Tick):
            self.publish_tick(item)
        elif isinstance(item, StaleChange):
            self._set_stale(item)
        elif isinstance(item, SymbolRejected):
            self._reject_symbol(item)
        else:
            self._set_source_status(item)

    def publish(self, update: PriceUpdate) -> Tick | None:
        """Number one update (`seq` = the symbol's previous + 1) and publish it.

        The sources' decoders refuse unusable prices; this is the last line, so no client ever gets one."""
        if not (is_usable_price(update.price) and is_usable_price(update.reference)):
            self._counters.unusable_prices += 1
            if self._counters.unusable_prices == 1:
                log.warning(
                    "event=unusable_price symbol=%s source=%s further=counted_only", update.symbol, update.source
                )
            return None
        previous = self._latest.get(update.symbol)
        seq = previous.seq + 1 if previous else self._first_seq(update.symbol)
        may_number = self._may_number
        if may_number is not None and update.symbol in self._subscribers and not may_number(update.symbol, seq):
            self._counters.unreserved_seqs += 1
            self._unnumbered[update.symbol] = update  # its latest waits, tried again with the next ingest item
            return None
        return self.publish_tick(tick_from_update(update, seq=seq))

    def _publish_unnumbered(self) -> None:
        """Updates that waited for their seqs to be stored (a symbol just streamed on demand), oldest first."""
        waiting, self._unnumbered = self._unnumbered, {}
        for update in waiting.values():
            self.publish(update)

    def publish_tick(self, tick: Tick) -> Tick | None:
        """Store, encode once per dialect in use, and fan out a numbered tick (scale-out feeds ticks Redis numbered).

        Unknown symbols are dropped (counted; the first one logged), and so is a tick not newer than the
        symbol's latest (a replay after a Redis reconnect), so a client never sees a symbol's seq go backwards.
        """
        subscribers = self._subscribers.get(tick.symbol)
        if subscribers is None:
            self._counters.unknown_symbol_updates += 1
            if self._counters.unknown_symbol_updates == 1:
                log.warning(
                    "event=unknown_symbol_update symbol=%s source=%s further=counted_only", tick.symbol, tick.source
                )
            return None
        previous = self._latest.get(tick.symbol)
        if previous is not None and tick.seq <= previous.seq:
            return None
        frame = encode_tick(tick)
        counters = self._counters
        counters.ticks_in += 1
        counters.encodes += 1
        self._latest[tick.symbol] = tick
        self._latest_frames[tick.symbol] = frame
        self._previous_prices[tick.symbol] = tick.price if previous is None else previous.price
        if self._recording:
            self._recovery.record(tick.symbol, tick.seq, frame, trio.current_time())
        entry = (tick.symbol, frame)
        conflated = 0
        for outbox in subscribers:
            conflated += outbox.offer_entry(entry)
        prototype_subscribers = self._prototype_subscribers[tick.symbol]
        if prototype_subscribers:
            entry = (tick.symbol, self._prototype_frame(tick))
            for outbox in prototype_subscribers:
                conflated += outbox.offer_entry(entry)
        counters.conflated += conflated
        counters.messages_out += len(subscribers) + len(prototype_subscribers)
        if self.candles is not None:
            self.candles.record(tick)
        if not counters.ticks_in & TICK_SAMPLE_MASK and self._on_tick_sampled is not None:
            self._on_tick_sampled(tick)
        return tick

    def _set_stale(self, change: StaleChange) -> None:
        tick = self._latest.get(change.symbol)
        if tick is None or tick.stale == change.stale:
            return
        tick = dataclasses.replace(tick, stale=change.stale)
        self._latest[change.symbol] = tick
        self._latest_frames[change.symbol] = encode_tick(tick)
        self._counters.encodes += 1
        frame = encode_symbol_status(change.symbol, stale=change.stale, ts=change.ts)
        for outbox in self._subscribers.get(change.symbol, ()):
            outbox.offer(status_key(change.symbol, "stale"), frame)
        # The prototypes' dialect has no status frames: its clients get the price object again, marked.
        if prototype_subscribers := self._prototype_subscribers.get(change.symbol):
            frame = self._prototype_frame(tick)
            for outbox in prototype_subscribers:
                outbox.offer(change.symbol, frame)

    def _reject_symbol(self, rejection: SymbolRejected) -> None:
        """The upstream refused a symbol: each subscriber gets `upstream_rejected` and loses the subscription."""
        if rejection.symbol in self.symbols:
            return  # a configured symbol stays; its source reports the trouble in its state
        log.warning(
            "event=upstream_rejected symbol=%s source=%s reason=%r",
            rejection.symbol,
            rejection.source,
            rejection.reason,
        )
        error = upstream_rejected_error(rejection.symbol, rejection.reason)
        key = status_key(rejection.symbol, "rejected")
        for table in (self._subscribers, self._prototype_subscribers):
            for outbox in table.get(rejection.symbol, ()):
                outbox.remove_subscription(rejection.symbol)
                outbox.discard_pending((rejection.symbol,))
                frame = (
                    prototype_dialect.encode_error(error) if outbox.dialect is Dialect.PROTOTYPE else error.to_frame()
                )
                outbox.offer(key, frame)
            table.pop(rejection.symbol, None)
        if self.demand is not None:
            self.demand.rejected(rejection.symbol)
        self.retire(rejection.symbol)

    def retire(self, symbol: str) -> None:
        """`symbol` no longer streams (demand dropped it): forget its tables and last price, unless configured."""
        if symbol in self.symbols or self.subscriber_count(symbol):
            return
        for table in (self._subscribers, self._prototype_subscribers):
            table.pop(symbol, None)
        for cache in (self._latest, self._latest_frames, self._previous_prices, self._prototype_frames):
            cache.pop(symbol, None)
        self._recovery.forget(symbol)

    def _set_source_status(self, status: SourceStatus) -> None:
        self._sources[status.source] = status
        frame = encode_source_status(status)
        key = status_key("", f"source:{status.source}")
        for outbox in self._clients:
            if outbox.dialect is Dialect.FULL:
                outbox.offer(key, frame)

    def _prototype_frame(self, tick: Tick) -> str:
        """The prototypes' frame of the symbol's latest tick `tick`, encoded once."""
        cached = self._prototype_frames.get(tick.symbol)
        if cached is not None and cached[0] is tick:
            return cached[1]
        frame = prototype_dialect.encode_price(tick, self._previous_prices[tick.symbol])
        self._counters.encodes += 1
        self._prototype_frames[tick.symbol] = (tick, frame)
        return frame

    def _subscriber_table(self, outbox: ClientOutbox) -> dict[str, dict[ClientOutbox, None]]:
        return self._prototype_subscribers if outbox.dialect is Dialect.PROTOTYPE else self._subscribers

    # -- clients ----------------------------------------------------------------------------------

    def connect(
        self,
        *,
        peer: str = "",
        capacity: int | None = None,
        dialect: Dialect = Dialect.FULL,
        on_close_request: Callable[[], None] | None = None,
    ) -> ClientOutbox:
        """Register a client speaking `dialect` with an outbox of `capacity` frames (default: the hub's client
        buffer); `on_close_request` is called when the hub or a limit asks for the connection to close."""
        outbox = ClientOutbox(
            next(self._client_ids),
            capacity or self._client_buffer,
            peer=peer,
            on_behind=self._reaper.watch,
            on_close_request=on_close_request,
            dialect=dialect,
        )
        self._clients[outbox] = None
        self._no_clients = trio.Event()
        return outbox

    def disconnect(self, outbox: ClientOutbox) -> None:
        """Forget a client entirely; safe to call more than once."""
        if self._clients.pop(outbox, False) is None:
            table = self._subscriber_table(outbox)
            for symbol in outbox.subscriptions:
                table[symbol].pop(outbox, None)
                self._lost_subscriber(symbol)
            outbox.close()
            self._reaper.forget(outbox)
            if self.candles is not None:
                self.candles.forget(outbox)
        if not self._clients:
            self._no_clients.set()

    def subscribe(
        self,
        outbox: ClientOutbox,
        symbols: tuple[str, ...],
        candles: Interval | None = None,
        *,
        since: Mapping[str, int] | None = None,
        epoch: str | None = None,
    ) -> dict[str, bool]:
        """Register `symbols` and queue each one's latest tick, atomically (no live tick in between);
        with `candles`, their candles of that interval too (the open candle follows the ticks).

        A symbol in `since` (the last seq its client saw in `epoch`) gets the ticks it missed instead of the
        snapshot when the recovery history still has them all, or else the snapshot marked `recovered: false`.
        Returns whether each symbol of `since` was recovered."""
        table = self._subscriber_table(outbox)
        prototype = outbox.dialect is Dialect.PROTOTYPE
        recovered: dict[str, bool] = {}
        for symbol in symbols:
            if not outbox.add_subscription(symbol):
                continue
            if symbol not in table:
                self._subscribers[symbol], self._prototype_subscribers[symbol] = {}, {}
            table[symbol][outbox] = None
            if self.demand is not None and self.subscriber_count(symbol) == 1:
                self.demand.watch(symbol)
            tick = self._latest.get(symbol)
            if prototype:
                if tick is not None:
                    outbox.offer(symbol, self._prototype_frame(tick))
                continue
            asked = since.get(symbol) if since is not None else None
            if asked is None:
                if tick is not None:
                    outbox.offer(symbol, snapshot_frame(self._latest_frames[symbol], self.epoch))
                continue
            frames = self._replay_frames(symbol, asked, epoch)
            recovered[symbol] = frames is not None
            if frames is not None:
                outbox.begin_replay(frames)
            elif tick is not None:
                outbox.offer(symbol, snapshot_frame(self._latest_frames[symbol], self.epoch, recovered=False))
        if candles is not None and self.candles is not None:
            self.candles.subscribe(outbox, symbols, candles)
        return recovered

    def recoverable(self, since: Mapping[str, int], epoch: str | None) -> dict[str, bool]:
        """Whether each position could be recovered now (what the `subscribed` ack says, before `subscribe`)."""
        return {symbol: self._replay_frames(symbol, seq, epoch) is not None for symbol, seq in since.items()}

    def _replay_frames(self, symbol: str, since: int, epoch: str | None) -> list[str] | None:
        if epoch != self.epoch:
            return None  # another numbering: its seqs say nothing about this one's
        latest = self._latest.get(symbol)
        if latest is None:
            return None
        return self._recovery.frames_after(symbol, since, latest.seq, trio.current_time())

    def set_epoch(self, epoch: str) -> None:
        """The numbering restarted (scale-out: Redis came back empty): nothing kept can be replayed into it."""
        if epoch != self.epoch:
            self.epoch = epoch
            self._recovery.clear()

    def unsubscribe(self, outbox: ClientOutbox, symbols: tuple[str, ...], candles: Interval | None = None) -> None:
        """Drop `symbols` (ticks and candles); with `candles`, only their candles of that interval."""
        if self.candles is not None:
            self.candles.unsubscribe(outbox, symbols, candles)
        if candles is not None:
            return
        table = self._subscriber_table(outbox)
        for symbol in symbols:
            if outbox.remove_subscription(symbol):
                table[symbol].pop(outbox, None)
                self._lost_subscriber(symbol)
        outbox.discard_pending(symbols)

    def _lost_subscriber(self, symbol: str) -> None:
        if self.demand is not None and not self.subscriber_count(symbol):
            self.demand.unwatch(symbol)

    def unknown(self, symbols: tuple[str, ...]) -> list[str]:
        """The symbols no source lists (without demand: those not configured)."""
        if self.demand is not None:
            return self.demand.unknown(symbols)
        return [symbol for symbol in symbols if symbol not in self._subscribers]

    def refusal(self, symbols: tuple[str, ...], request_id: RequestId) -> ProtocolError | None:
        """Why a subscribe to `symbols` cannot be served now (unknown, or past the active-symbol cap), or None."""
        if self.demand is not None:
            return self.demand.refusal(symbols, request_id)
        if unknown := self.unknown(symbols):
            return unknown_symbols_error(unknown, request_id)
        return None

    def count_conflated(self, skipped: int) -> None:
        """Ticks a session's writer skipped because a newer one of the same symbol superseded them."""
        self._counters.conflated += skipped

    def evict(self, outbox: ClientOutbox, code: int, reason: str) -> None:
        """Stop serving a client that cannot keep up; its session sends the close frame."""
        self._counters.evicted += 1
        outbox.request_close(code, reason)
        self.disconnect(outbox)

    def evict_slow_client(self, outbox: ClientOutbox) -> None:
        """The reaper's verdict: `outbox` stayed behind past the timeout."""
        log.warning(
            "event=client_evicted client=%d peer=%s reason=slow_consumer pending=%d",
            outbox.client_id,
            outbox.peer,
            outbox.pending_count(),
        )
        self.evict(outbox, CloseCode.SLOW_CONSUMER, "slow consumer")

    def close_all(self, code: int, reason: str) -> None:
        """Ask every session to close (server shutdown)."""
        for outbox in list(self._clients):
            outbox.request_close(code, reason)

    async def wait_no_clients(self) -> None:
        await self._no_clients.wait()

    # -- reading state ------------------------------------------------------------------------------

    def latest(self, symbol: str) -> Tick | None:
        return self._latest.get(symbol)

    def latest_price(self, symbol: str) -> float | None:
        tick = self._latest.get(symbol)
        return tick.price if tick else None

    def all_latest(self) -> dict[str, Tick]:
        return dict(self._latest)

    def source_statuses(self) -> dict[str, SourceStatus]:
        return dict(self._sources)

    def subscriber_count(self, symbol: str) -> int:
        return len(self._subscribers.get(symbol, ())) + len(self._prototype_subscribers.get(symbol, ()))

    def statistics(self) -> HubStatistics:
        counters = self._counters
        return HubStatistics(
            clients=len(self._clients),
            subscriptions=sum(
                len(table[symbol]) for table in (self._subscribers, self._prototype_subscribers) for symbol in table
            ),
            symbols_with_data=len(self._latest),
            ticks_in=counters.ticks_in,
            encodes=counters.encodes,
            messages_out=counters.messages_out,
            conflated=counters.conflated,
            evicted=counters.evicted,
            unknown_symbol_updates=counters.unknown_symbol_updates,
            unusable_prices=counters.unusable_prices,
            unreserved_seqs=counters.unreserved_seqs,
        )
