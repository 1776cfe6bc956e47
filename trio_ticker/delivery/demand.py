"""Which symbols stream upstream: the configured ones always, any other listed one while clients want it.

`SymbolDemand` hears from the hub when a symbol gains its first subscriber or loses its last, checks
symbols against the `SymbolDirectory` it is given, holds the cap (TICKER_MAX_ACTIVE_SYMBOLS), keeps an
unwatched symbol streaming for the linger (TICKER_SYMBOL_LINGER) and tells the source that streams it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import trio

from ..catalogue.directory import SymbolDirectory
from ..model import Listing
from ..protocol.errors import ProtocolError, RequestId, symbol_limit_error, unknown_symbols_error

log = logging.getLogger(__name__)


class SymbolStream(Protocol):
    """What a source offers: start or stop streaming one symbol, at once (the source paces its upstream)."""

    name: str

    def stream_symbol(self, listing: Listing) -> None: ...

    def drop_symbol(self, symbol: str) -> None: ...


@dataclass(frozen=True, slots=True)
class DemandStatistics:
    always_on: int
    watched: int  # symbols with a subscriber, beyond the configured ones
    lingering: int
    added: int  # upstream subscriptions started on demand
    dropped: int  # ... and dropped (after the linger, to make room, or refused upstream)
    refused_limit: int  # subscribes answered symbol_limit


class SymbolDemand:
    def __init__(
        self,
        directory: SymbolDirectory,
        *,
        always_on: Iterable[str],
        linger: float,
        max_active: int,
        streams: Iterable[SymbolStream],
        on_retired: Callable[[str], None] = lambda symbol: None,
    ) -> None:
        """`on_retired(symbol)` is called once a symbol no longer streams (the hub forgets its last price)."""
        self._directory = directory
        self._always_on = frozenset(always_on)
        self._linger = linger
        self._max_active = max_active
        self._streams: Mapping[str, SymbolStream] = {stream.name: stream for stream in streams}
        self._on_retired = on_retired
        self._streaming: dict[str, Listing] = {}  # started on demand, watched or lingering
        self._watched: set[str] = set()
        self._lingering: dict[str, float] = {}  # symbol -> when its upstream subscription is dropped (insertion order)
        self._changed = trio.Event()
        self._added = self._dropped = self._refused_limit = 0

    # -- what a subscribe may ask -----------------------------------------------------------------------

    def unknown(self, symbols: Iterable[str]) -> list[str]:
        return [symbol for symbol in symbols if symbol not in self._always_on and self._listing(symbol) is None]

    def refusal(self, symbols: tuple[str, ...], request_id: RequestId) -> ProtocolError | None:
        """Why a subscribe to `symbols` cannot be served (unknown symbols, or past the cap), or None."""
        if unknown := self.unknown(symbols):
            return unknown_symbols_error(unknown, request_id)
        new = [symbol for symbol in dict.fromkeys(symbols) if not self._wanted(symbol)]
        if len(self._always_on) + len(self._watched) + len(new) > self._max_active:
            self._refused_limit += 1
            return symbol_limit_error(new, self._max_active, request_id)
        return None

    # -- what the hub reports ---------------------------------------------------------------------------

    def watch(self, symbol: str) -> None:
        """`symbol` has its first subscriber."""
        if symbol in self._always_on:
            return
        self._watched.add(symbol)
        if self._lingering.pop(symbol, None) is not None:
            return  # still streaming: the drop is cancelled
        if symbol in self._streaming:
            return
        listing = self._listing(symbol)
        stream = self._streams.get(listing.source) if listing is not None else None
        if listing is None or stream is None:
            log.warning("event=demand_unroutable symbol=%s", symbol)
            return
        while self._lingering and len(self._always_on) + len(self._streaming) >= self._max_active:
            self._drop(next(iter(self._lingering)))  # the longest lingering makes room
        self._streaming[symbol] = listing
        self._added += 1
        log.info("event=symbol_demanded symbol=%s source=%s", symbol, listing.source)
        stream.stream_symbol(listing)

    def unwatch(self, symbol: str) -> None:
        """`symbol` lost its last subscriber: it streams on for the linger."""
        self._watched.discard(symbol)
        if symbol not in self._streaming:
            return
        if self._linger <= 0:
            self._drop(symbol)
            return
        self._lingering[symbol] = trio.current_time() + self._linger
        self._changed.set()

    def rejected(self, symbol: str) -> None:
        """The upstream refused `symbol` (its subscribers were told): it is no longer wanted."""
        self._watched.discard(symbol)
        if symbol in self._streaming:
            self._drop(symbol)

    # -- reading state ---------------------------------------------------------------------------------

    def active(self) -> frozenset[str]:
        """Every symbol that streams upstream now: configured, watched and lingering."""
        return self._always_on | self._streaming.keys()

    def lingering(self) -> frozenset[str]:
        return frozenset(self._lingering)

    def statistics(self) -> DemandStatistics:
        return DemandStatistics(
            always_on=len(self._always_on),
            watched=len(self._watched),
            lingering=len(self._lingering),
            added=self._added,
            dropped=self._dropped,
            refused_limit=self._refused_limit,
        )

    # -- the linger ------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drop each lingering symbol when its linger ends."""
        task_status.started()
        while True:
            deadline = min(self._lingering.values(), default=float("inf"))
            with trio.move_on_at(deadline):
                await self._changed.wait()
            self._changed = trio.Event()
            now = trio.current_time()
            for symbol, due in list(self._lingering.items()):
                if due <= now:
                    self._drop(symbol)

    def _drop(self, symbol: str) -> None:
        self._lingering.pop(symbol, None)
        listing = self._streaming.pop(symbol)
        self._dropped += 1
        log.info("event=symbol_dropped symbol=%s source=%s", symbol, listing.source)
        self._streams[listing.source].drop_symbol(symbol)
        self._on_retired(symbol)

    def _wanted(self, symbol: str) -> bool:
        return symbol in self._always_on or symbol in self._watched

    def _listing(self, symbol: str) -> Listing | None:
        return self._directory.lookup(symbol)
