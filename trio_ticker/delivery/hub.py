"""The hub: where the ingest route and the client sessions meet, neither ever waiting on the other.

`Hub.run` hands each ingest item to its `FanOut` (which numbers it into the `TickBook` and offers its frames to
the `Subscriptions`); sessions connect and subscribe through it, and it evicts those the reaper reports.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from ..model import Ingest, PriceUpdate, SourceStatus, Tick
from ..protocol.dialects import Dialect
from ..protocol.errors import CloseCode, ProtocolError, RequestId, unknown_symbols_error
from .fanout import FanOut
from .outbox import ClientOutbox
from .recovery import RecoveryLimits
from .slow_clients import SlowClientReaper
from .subscriptions import Subscriptions
from .tick_book import TickBook

if TYPE_CHECKING:
    from ..history.candles import Interval
    from ..history.live import LiveCandles
    from .demand import SymbolDemand

log = logging.getLogger(__name__)


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
        on_published: Callable[[Tick], None] | None = None,
    ) -> None:
        """`symbols` are the configured ones; with `demand`, any symbol it admits is served too.
        `epoch` names the numbering (docs/protocol.md, "Recovery"); `recovery` bounds the replay history.
        A persisted numbering (history/numbering.py) gives the seq a symbol's first tick gets (`first_seq`,
        else 1) and says whether a seq may be given (`may_number`: it was stored as reserved). `on_published` is
        told every tick published, after its subscribers were offered it (the tick journal)."""
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.candles = candles  # history: every published tick goes into its candles
        self.demand = demand
        self._book = TickBook(
            self.symbols,
            epoch=epoch,
            recovery=recovery or RecoveryLimits(0, 0.0),
            first_seq=first_seq or (lambda symbol: 1),
        )
        # With demand, the tables grow and shrink with the clients: it hears of a symbol's first and last subscriber.
        self._subscriptions = Subscriptions(
            self.symbols,
            on_first=demand.watch if demand is not None else None,
            on_last=demand.unwatch if demand is not None else None,
        )
        self._fan_out = FanOut(
            self._book,
            self._subscriptions,
            configured=self.symbols,
            demand=demand,
            candles=candles,
            on_tick_sampled=on_tick_sampled,
            may_number=may_number,
            on_published=on_published,
        )
        self._reaper = reaper
        self._client_buffer = client_buffer
        self._client_ids = itertools.count(1)
        self._evicted = 0
        self._conflated_by_writers = 0

    @property
    def epoch(self) -> str:
        """The numbering's name: seqs are comparable only within one epoch."""
        return self._book.epoch

    # -- ingest -----------------------------------------------------------------------------------

    async def run(
        self,
        ingest: trio.MemoryReceiveChannel[Ingest],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Consume the ingest channel until every sender has closed its end."""
        task_status.started()
        fan_out_item = self._fan_out.ingest
        async with ingest:
            async for item in ingest:
                fan_out_item(item)
                # Drain what else is queued now: each `receive` is a checkpoint, and under load one
                # checkpoint costs a whole scheduler pass, which would cap ingest at one item per pass.
                while True:
                    try:
                        fan_out_item(ingest.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break

    def ingest(self, item: Ingest) -> None:
        self._fan_out.ingest(item)

    def publish(self, update: PriceUpdate) -> Tick | None:
        """Number one update (`seq` = the symbol's previous + 1) and publish it; None when it was dropped or
        waits for its seq to be stored."""
        return self._fan_out.update(update)

    def publish_tick(self, tick: Tick) -> Tick | None:
        """Publish a numbered tick (scale-out feeds ticks Redis numbered); None for an unknown symbol, or a tick
        not newer than the symbol's latest (a replay after a Redis reconnect): a seq never goes backwards."""
        return self._fan_out.tick(tick)

    def retire(self, symbol: str) -> None:
        """`symbol` no longer streams (demand dropped it): forget its tables and last price, unless configured."""
        self._fan_out.retire(symbol)

    def set_epoch(self, epoch: str) -> None:
        """The numbering restarted (scale-out: Redis came back empty): nothing kept can be replayed into it."""
        self._book.set_epoch(epoch)

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
        self._subscriptions.add_client(outbox)
        return outbox

    def disconnect(self, outbox: ClientOutbox) -> None:
        """Forget a client entirely; safe to call more than once."""
        if self._subscriptions.remove_client(outbox):
            outbox.close()
            self._reaper.forget(outbox)
            if self.candles is not None:
                self.candles.forget(outbox)

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
        recovered: dict[str, bool] = {}
        for symbol in symbols:
            if self._subscriptions.add(outbox, symbol):
                asked = since.get(symbol) if since is not None else None
                if (replayed := self._fan_out.first_frames(outbox, symbol, asked, epoch)) is not None:
                    recovered[symbol] = replayed
        if candles is not None and self.candles is not None:
            self.candles.subscribe(outbox, symbols, candles)
        return recovered

    def recoverable(self, since: Mapping[str, int], epoch: str | None) -> dict[str, bool]:
        """Whether each position could be recovered now (what the `subscribed` ack says, before `subscribe`)."""
        return {symbol: self._book.replay_frames(symbol, seq, epoch) is not None for symbol, seq in since.items()}

    def unsubscribe(self, outbox: ClientOutbox, symbols: tuple[str, ...], candles: Interval | None = None) -> None:
        """Drop `symbols` (ticks and candles); with `candles`, only their candles of that interval."""
        if self.candles is not None:
            self.candles.unsubscribe(outbox, symbols, candles)
        if candles is not None:
            return
        for symbol in symbols:
            self._subscriptions.remove(outbox, symbol)
        outbox.discard_pending(symbols)

    def unknown(self, symbols: tuple[str, ...]) -> list[str]:
        """The symbols no source lists (without demand: those not configured)."""
        if self.demand is not None:
            return self.demand.unknown(symbols)
        return [symbol for symbol in symbols if not self._subscriptions.serves(symbol)]

    def refusal(self, symbols: tuple[str, ...], request_id: RequestId) -> ProtocolError | None:
        """Why a subscribe to `symbols` cannot be served now (unknown, or past the active-symbol cap), or None."""
        if self.demand is not None:
            return self.demand.refusal(symbols, request_id)
        if unknown := self.unknown(symbols):
            return unknown_symbols_error(unknown, request_id)
        return None

    def count_conflated(self, skipped: int) -> None:
        """Ticks a session's writer skipped because a newer one of the same symbol superseded them."""
        self._conflated_by_writers += skipped

    def evict(self, outbox: ClientOutbox, code: int, reason: str) -> None:
        """Stop serving a client that cannot keep up; its session sends the close frame."""
        self._evicted += 1
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
        for outbox in list(self._subscriptions.clients()):
            outbox.request_close(code, reason)

    async def wait_no_clients(self) -> None:
        await self._subscriptions.wait_no_clients()

    # -- reading state ------------------------------------------------------------------------------

    def latest(self, symbol: str) -> Tick | None:
        return self._book.latest(symbol)

    def latest_price(self, symbol: str) -> float | None:
        tick = self._book.latest(symbol)
        return tick.price if tick else None

    def all_latest(self) -> dict[str, Tick]:
        return self._book.all_latest()

    def source_statuses(self) -> dict[str, SourceStatus]:
        return self._fan_out.source_statuses()

    def subscriber_count(self, symbol: str) -> int:
        return self._subscriptions.count(symbol)

    def statistics(self) -> HubStatistics:
        fan_out = self._fan_out
        return HubStatistics(
            clients=len(self._subscriptions.clients()),
            subscriptions=self._subscriptions.total(),
            symbols_with_data=self._book.symbols_with_data(),
            ticks_in=fan_out.ticks_in,
            encodes=self._book.encodes,
            messages_out=fan_out.messages_out,
            conflated=fan_out.conflated + self._conflated_by_writers,
            evicted=self._evicted,
            unknown_symbol_updates=fan_out.unknown_symbol_updates,
            unusable_prices=fan_out.unusable_prices,
            unreserved_seqs=fan_out.unreserved_seqs,
        )
