"""The searchable set of listings, sans I/O: lookup by symbol, and search by prefix then substring.

Built once per catalogue change and never mutated, so a search reads it without a lock. A search costs
a binary search for the symbol prefixes and one `str.find` scan of a single upper-cased text (in C) for
the substrings, stopping at `limit`: tens of thousands of listings answer in well under a millisecond.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Iterator

from ..model import Listing

FIELD_SEPARATOR = "\t"  # never in a query (queries are spelled as symbols are), so no match spans two fields
ENTRY_SEPARATOR = "\n"


class ListingIndex:
    def __init__(self, listings: Iterable[Listing]) -> None:
        """The first listing of a symbol wins: pass the preferred sources first."""
        by_symbol: dict[str, Listing] = {}
        for listing in listings:
            by_symbol.setdefault(listing.symbol, listing)
        self._by_symbol = by_symbol
        self._symbols = sorted(by_symbol)
        texts = [f"{symbol}\t{by_symbol[symbol].name}\t{by_symbol[symbol].base}".upper() for symbol in self._symbols]
        self._starts: list[int] = []
        offset = 0
        for text in texts:
            self._starts.append(offset)
            offset += len(text) + len(ENTRY_SEPARATOR)
        self._text = ENTRY_SEPARATOR.join(texts)

    def __len__(self) -> int:
        return len(self._symbols)

    def lookup(self, symbol: str) -> Listing | None:
        return self._by_symbol.get(symbol)

    def listings(self) -> Iterator[Listing]:
        return iter(self._by_symbol.values())

    def search(self, query: str, limit: int) -> list[Listing]:
        """Up to `limit` listings: symbols starting with `query` (shortest first, then A-Z), then those whose
        symbol, name or base asset contains it (A-Z). `query` is upper-case, as `normalize_query` returns it."""
        prefixed = heapq.nsmallest(limit, self._prefixed(query), key=lambda symbol: (len(symbol), symbol))
        chosen = dict.fromkeys(prefixed)
        position = self._text.find(query)
        while position >= 0 and len(chosen) < limit:
            entry = bisect.bisect_right(self._starts, position) - 1
            chosen.setdefault(self._symbols[entry], None)
            next_entry = entry + 1
            if next_entry == len(self._starts):
                break
            position = self._text.find(query, self._starts[next_entry])
        return [self._by_symbol[symbol] for symbol in chosen]

    def _prefixed(self, prefix: str) -> list[str]:
        # Symbols are ASCII below DEL, so every one starting with `prefix` sorts before `prefix + DEL`.
        start = bisect.bisect_left(self._symbols, prefix)
        return self._symbols[start : bisect.bisect_left(self._symbols, prefix + "\x7f", start)]
