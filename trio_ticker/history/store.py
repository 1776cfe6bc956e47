"""What the history needs from a candle store, as a Protocol, and the one error every backend raises.

Two real backends implement it: `sqlite_store` (the default: one file, stdlib sqlite3 in a worker
thread) and `redis_store` (shared by every worker). Writes are applied in order and atomically.
The same store keeps each source's symbol catalogue, so a restart serves the last one at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ..model import Listing
from .candles import Candle, Interval, merge_stored


class CandleStoreUnavailable(Exception):
    """The store cannot be opened, read or written (a corrupt or locked file, a full disk, Redis down)."""


@dataclass(frozen=True, slots=True)
class CandleWrite:
    """One candle to store. `merge_from` None: it replaces what is stored (a closed kline, the writer's
    own open candle). Otherwise it is merged with what is stored (`candles.merge_stored`): it holds only
    the ticks since epoch-ms `merge_from`, and the store may have an earlier part of the interval."""

    candle: Candle
    merge_from: int | None = None

    def applied_to(self, stored: Candle | None) -> Candle:
        if self.merge_from is None:
            return self.candle
        return merge_stored(stored, self.candle, self.merge_from)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each interval's candles are kept (None: for ever), and a hard cap per series."""

    keep_ms: Mapping[Interval, int | None]
    max_per_series: int

    def cutoff(self, interval: Interval, now_ms: int) -> int | None:
        """Candles opened before this are deleted (None: none by age)."""
        keep = self.keep_ms.get(interval)
        return None if keep is None else now_ms - keep


@dataclass(frozen=True, slots=True)
class StoredListings:
    """One source's catalogue as it was last saved."""

    listings: tuple[Listing, ...]
    saved_ms: int  # epoch ms


class CandleStore(Protocol):
    name: str  # "sqlite" or "redis", for /healthz and the logs

    async def write(self, writes: Sequence[CandleWrite]) -> list[Candle]:
        """Apply `writes` in order; returns what each one stored (merges resolved). After a failure the
        same batch may be sent again: a merge already applied is not applied twice."""

    async def read(
        self, symbol: str, interval: Interval, *, start: int | None, end: int | None, limit: int
    ) -> list[Candle]:
        """Up to `limit` candles with `start <= open_time <= end`, oldest first: the first ones from
        `start` when it is given, else the newest ones."""

    async def prune(self, symbols: Sequence[str], retention: Retention, now_ms: int) -> int:
        """Delete what retention no longer keeps; returns how many candles went."""

    async def check(self) -> None:
        """Raise `CandleStoreUnavailable` unless the store answers (a cheap round trip)."""

    async def save_listings(self, source: str, listings: Sequence[Listing], saved_ms: int) -> None:
        """Replace `source`'s stored catalogue with `listings`, atomically."""

    async def load_listings(self, source: str) -> StoredListings | None:
        """`source`'s last saved catalogue, or None if none was saved."""


OpenCandleStore = Callable[[], AbstractAsyncContextManager[CandleStore]]
"""Opens the store (a file, a connection pool); leaving the block closes it."""
