"""What the leader and the followers need from the shared store, as a Protocol.

`redis_store.RedisStore` is the real one (Lua scripts, one round trip per call); tests drive the
same leader and follower logic over an in-memory fake on the autojump clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ...model import Listing
from .codec import Publishable, Snapshot

StreamEntry = tuple[str, Mapping[str, str]]
"""A stream entry's id and its fields."""


class StoreUnavailable(Exception):
    """The store could not be reached or failed mid-command: back off and reconnect."""


class ScaleOutStore(Protocol):
    async def try_acquire(self, lease: float) -> int | None:
        """Take the free leader lease for `lease` seconds; returns a new fencing token, or None if held."""

    async def renew(self, token: int, lease: float) -> bool:
        """Extend the lease if `token` still holds it."""

    async def release(self, token: int) -> None:
        """Give the lease up at once if `token` still holds it (clean shutdown: fast takeover)."""

    async def publish(self, token: int, items: Sequence[Publishable]) -> bool:
        """Number and append `items` atomically, only while `token` holds the lease (False: fenced out)."""

    async def load_snapshot(self) -> Snapshot:
        """The latest tick per symbol, source states, the stream position and the store's clock, read atomically."""

    async def read(self, cursor: str, block: float) -> list[StreamEntry]:
        """Entries after `cursor`, waiting up to `block` seconds for the first one."""

    async def read_range(self, after: str, until: str, count: int) -> list[StreamEntry]:
        """The first `count` entries with an id above `after` and at most `until`, oldest first, without waiting
        (fewer than `count`: the range is read to its end; a part already trimmed from the stream is not there)."""

    async def raise_seq_floor(self, seqs: Mapping[str, int]) -> None:
        """Make the next seq of each symbol larger than `seqs[symbol]` (Redis lost its data)."""

    async def stream_epoch(self) -> str:
        """The epoch of the numbering: made by the first worker that asks, and kept while the store keeps the
        seq counters (a store that lost its data makes a new one)."""

    async def publish_interest(self, worker: str, listings: Mapping[str, Listing], lease: float) -> None:
        """Replace `worker`'s on-demand listings, which count for `lease` seconds unless published again."""

    async def read_interest(self) -> dict[str, Listing]:
        """The union of every live worker's on-demand listings."""


OpenStore = Callable[[], AbstractAsyncContextManager[ScaleOutStore]]
"""Opens one connection (pool) to the store; leaving the block closes it."""
