"""Who subscribes to what: every connected client, and each served symbol's subscribers, one table per dialect.

A symbol is served while it has tables (a configured one always, one streamed on demand until the hub retires
it); `on_first` and `on_last` hear when a symbol gains its first subscriber or loses its last.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

import trio

from ..protocol.dialects import Dialect
from .outbox import ClientOutbox

SymbolSubscribers = tuple[Collection[ClientOutbox], Collection[ClientOutbox]]
"""A served symbol's subscribers: those of the full protocol, then those of the prototypes' dialect; each
table's fan-out shares one frame per tick."""

_FULL, _PROTOTYPE = 0, 1


def _table_index(outbox: ClientOutbox) -> int:
    return _PROTOTYPE if outbox.dialect is Dialect.PROTOTYPE else _FULL


class Subscriptions:
    def __init__(
        self,
        symbols: Iterable[str],
        *,
        on_first: Callable[[str], None] | None = None,
        on_last: Callable[[str], None] | None = None,
    ) -> None:
        self._tables: dict[str, tuple[dict[ClientOutbox, None], dict[ClientOutbox, None]]] = {
            symbol: ({}, {}) for symbol in symbols
        }
        self._clients: dict[ClientOutbox, None] = {}
        self._no_clients = trio.Event()
        self._no_clients.set()
        self._on_first = on_first
        self._on_last = on_last

    # -- clients ----------------------------------------------------------------------------------

    def add_client(self, outbox: ClientOutbox) -> None:
        self._clients[outbox] = None
        self._no_clients = trio.Event()

    def remove_client(self, outbox: ClientOutbox) -> bool:
        """Forget `outbox` and every subscription of its; False when it was not connected."""
        connected = self._clients.pop(outbox, False) is None
        if connected:
            index = _table_index(outbox)
            for symbol in outbox.subscriptions:
                self._tables[symbol][index].pop(outbox, None)
                self._lost_subscriber(symbol)
        if not self._clients:
            self._no_clients.set()
        return connected

    def clients(self) -> Collection[ClientOutbox]:
        return self._clients

    async def wait_no_clients(self) -> None:
        await self._no_clients.wait()

    # -- subscriptions ----------------------------------------------------------------------------

    def add(self, outbox: ClientOutbox, symbol: str) -> bool:
        """Subscribe `outbox` to `symbol`, which is served from now on; False when it already was subscribed."""
        if not outbox.add_subscription(symbol):
            return False
        tables = self._tables.get(symbol)
        if tables is None:
            tables = self._tables[symbol] = ({}, {})
        tables[_table_index(outbox)][outbox] = None
        if self._on_first is not None and self.count(symbol) == 1:
            self._on_first(symbol)
        return True

    def remove(self, outbox: ClientOutbox, symbol: str) -> None:
        if outbox.remove_subscription(symbol):
            self._tables[symbol][_table_index(outbox)].pop(outbox, None)
            self._lost_subscriber(symbol)

    def _lost_subscriber(self, symbol: str) -> None:
        if self._on_last is not None and not self.count(symbol):
            self._on_last(symbol)

    # -- symbols ----------------------------------------------------------------------------------

    def of(self, symbol: str) -> SymbolSubscribers | None:
        """The symbol's subscribers, or None when it is not served."""
        return self._tables.get(symbol)

    def serves(self, symbol: str) -> bool:
        return symbol in self._tables

    def drop_symbol(self, symbol: str) -> SymbolSubscribers:
        """Stop serving `symbol`: every subscriber loses it (`on_last` is not called); returns them."""
        tables = self._tables.pop(symbol, ({}, {}))
        for table in tables:
            for outbox in table:
                outbox.remove_subscription(symbol)
        return tables

    def count(self, symbol: str) -> int:
        tables = self._tables.get(symbol)
        return 0 if tables is None else len(tables[_FULL]) + len(tables[_PROTOTYPE])

    def total(self) -> int:
        """Subscriptions, over every symbol and dialect."""
        return sum(len(full) + len(prototype) for full, prototype in self._tables.values())
