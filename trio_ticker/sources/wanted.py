"""What a live source streams: its configured symbols always, and those demand adds and drops at runtime.

`WantedSymbols` holds them: `add` and `drop` return at once and wake the connection task, which brings
the upstream subscriptions in line when it next runs. `FollowsDemand` is a live source's `OnDemandSource`
side, over its `WantedSymbols`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, KeysView

import trio

from ..model import Listing


class WantedSymbols:
    def __init__(self, configured: Iterable[str]) -> None:
        self._listings: dict[str, Listing | None] = dict.fromkeys(configured)  # None: configured
        self.configured = frozenset(self._listings)
        self._changed = trio.Event()

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._listings

    def __iter__(self) -> Iterator[str]:
        return iter(self._listings)

    def keys(self) -> KeysView[str]:
        return self._listings.keys()

    def symbols(self) -> tuple[str, ...]:
        return tuple(self._listings)

    def add(self, listing: Listing) -> None:
        if listing.symbol not in self._listings:
            self._listings[listing.symbol] = listing
            self._changed.set()

    def drop(self, symbol: str) -> bool:
        """Stop wanting an on-demand `symbol` (a configured one stays); whether it was wanted."""
        if symbol in self.configured or symbol not in self._listings:
            return False
        del self._listings[symbol]
        self._changed.set()
        return True

    async def wait_changed(self) -> None:
        """Until the set changes after the last wake-up (a change made meanwhile wakes at once)."""
        await self._changed.wait()
        self._changed = trio.Event()


class FollowsDemand:
    """`symbols`, `stream_symbol` and `drop_symbol` of a live source that keeps a `WantedSymbols`."""

    _wanted: WantedSymbols

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._wanted.symbols()

    def stream_symbol(self, listing: Listing) -> None:
        self._wanted.add(listing)

    def drop_symbol(self, symbol: str) -> None:
        if self._wanted.drop(symbol):
            self._forget(symbol)

    def _forget(self, symbol: str) -> None:
        """Whatever the source kept about a symbol no longer wanted."""
