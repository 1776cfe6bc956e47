"""An in-memory `ScaleOutStore` with the Lua scripts' semantics, for the autojump-clock tests.

Leases expire on trio's clock, and stream ids are made from it as Redis makes them from its own ("ms-n"). The
whole store can go down (every call and every open raises `StoreUnavailable`, like a dead Redis), one node can
be cut off (the same, for that node only: its connection dropped) and one node can be partitioned (its calls hang).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial

import trio

from trio_ticker.ingest.scaleout.codec import TICK, Publishable, Snapshot, decode_snapshot, encode_item
from trio_ticker.ingest.scaleout.store import StoreUnavailable, StreamEntry
from trio_ticker.model import Listing


class FakeRedis:
    def __init__(self) -> None:
        self.down = False
        self.opened_at: list[float] = []  # when each client connection was attempted
        self.partitioned: set[str] = set()  # nodes whose calls hang
        self.cut_off: set[str] = set()  # nodes whose calls and opens fail
        self._holders = itertools.count(1)
        self.clear()

    def clear(self) -> None:
        """Lose every key, like a Redis restarted without persistence."""
        self.lease: tuple[str, float] | None = None  # (value, expires at)
        self.fence = 0
        self.seq: dict[str, int] = {}
        self.epoch: str | None = None
        self.latest: dict[str, str] = {}
        self.stale: dict[str, str] = {}
        self.sources: dict[str, str] = {}
        self.stream: list[StreamEntry] = []
        self.stream_ids: list[tuple[int, int]] = []  # the stream's ids as numbers, for bisecting
        self.appended = trio.Event()
        self.interest: dict[str, tuple[float, dict[str, Listing]]] = {}  # worker -> (expires at, listings)

    def set_down(self, down: bool) -> None:
        """Take the store down (blocked reads fail at once, as on a reset connection) or bring it back."""
        self.down = down
        self.appended.set()
        self.appended = trio.Event()

    def set_cut_off(self, node: str, cut_off: bool) -> None:
        """Drop `node`'s connection (its blocked read fails at once) and refuse it until it is let back."""
        (self.cut_off.add if cut_off else self.cut_off.discard)(node)
        self.appended.set()
        self.appended = trio.Event()

    def now_ms(self) -> int:
        """The store's clock: trio's, in milliseconds."""
        return int(trio.current_time() * 1000)

    def append(self, fields: dict[str, str]) -> None:
        """XADD with an automatic id: this millisecond's next."""
        ms = self.now_ms()
        last = self.stream_ids[-1] if self.stream_ids else (0, -1)
        number = (last[0], last[1] + 1) if last[0] >= ms else (ms, 0)
        self.stream_ids.append(number)
        self.stream.append((f"{number[0]}-{number[1]}", fields))

    def entries_after(self, entry_id: str) -> int:
        """The index of the first entry with an id above `entry_id`."""
        return bisect.bisect_right(self.stream_ids, _id_number(entry_id))

    def lease_value(self) -> str | None:
        if self.lease is None or trio.current_time() >= self.lease[1]:
            return None
        return self.lease[0]

    def opener(self, node: str) -> Callable[[], AbstractAsyncContextManager[FakeStore]]:
        return partial(self.open, node)

    @asynccontextmanager
    async def open(self, node: str = "") -> AsyncIterator[FakeStore]:
        self.opened_at.append(trio.current_time())
        if node in self.partitioned:
            await trio.sleep_forever()
        if self.down or node in self.cut_off:
            raise StoreUnavailable("ConnectionError: refused")
        yield FakeStore(self, node, f"holder{next(self._holders)}")


class FakeStore:
    def __init__(self, redis: FakeRedis, node: str, holder: str) -> None:
        self._redis = redis
        self.node = node
        self.holder = holder

    async def _reach(self) -> FakeRedis:
        await trio.lowlevel.checkpoint()
        if self.node in self._redis.partitioned:
            await trio.sleep_forever()
        if self._redis.down or self.node in self._redis.cut_off:
            raise StoreUnavailable("ConnectionError: connection reset")
        return self._redis

    async def try_acquire(self, lease: float) -> int | None:
        redis = await self._reach()
        if redis.lease_value() is not None:
            return None
        redis.fence += 1
        redis.lease = (f"{redis.fence}:{self.holder}", trio.current_time() + lease)
        return redis.fence

    async def renew(self, token: int, lease: float) -> bool:
        redis = await self._reach()
        if redis.lease_value() != f"{token}:{self.holder}":
            return False
        redis.lease = (f"{token}:{self.holder}", trio.current_time() + lease)
        return True

    async def release(self, token: int) -> None:
        redis = await self._reach()
        if redis.lease_value() == f"{token}:{self.holder}":
            redis.lease = None

    async def publish(self, token: int, items: Sequence[Publishable]) -> bool:
        redis = await self._reach()
        if redis.lease_value() != f"{token}:{self.holder}":
            return False
        for item in items:
            kind, key, raw = encode_item(item)
            body = raw.decode()
            fields = {"kind": kind, "key": key, "body": body}
            if kind == TICK:
                seq = redis.seq[key] = redis.seq.get(key, 0) + 1
                redis.latest[key] = f"{seq}:{body}"
                redis.stale.pop(key, None)
                fields["seq"] = str(seq)
            elif kind != "rejected":  # a refusal is in the stream only
                (redis.stale if kind == "stale" else redis.sources)[key] = body
            redis.append(fields)
        redis.appended.set()
        redis.appended = trio.Event()
        return True

    async def load_snapshot(self) -> Snapshot:
        redis = await self._reach()
        cursor = redis.stream[-1][0] if redis.stream else "0-0"
        return decode_snapshot(cursor, redis.latest, redis.stale, redis.sources, now_ms=redis.now_ms())

    async def read(self, cursor: str, block: float) -> list[StreamEntry]:
        redis = await self._reach()
        if redis.entries_after(cursor) >= len(redis.stream):
            with trio.move_on_after(block):
                await redis.appended.wait()
            redis = await self._reach()
        return redis.stream[redis.entries_after(cursor) :]

    async def read_range(self, after: str, until: str, count: int) -> list[StreamEntry]:
        redis = await self._reach()
        start, end = redis.entries_after(after), redis.entries_after(until)
        return redis.stream[start : min(end, start + count)]

    async def stream_epoch(self) -> str:
        redis = await self._reach()
        if redis.epoch is None:
            redis.epoch = f"epoch-{id(redis)}-{len(redis.stream)}"
        return redis.epoch

    async def raise_seq_floor(self, seqs: Mapping[str, int]) -> None:
        redis = await self._reach()
        for symbol, seq in seqs.items():
            redis.seq[symbol] = max(redis.seq.get(symbol, 0), seq)

    async def publish_interest(self, worker: str, listings: Mapping[str, Listing], lease: float) -> None:
        redis = await self._reach()
        redis.interest[worker] = (trio.current_time() + lease, dict(listings))

    async def read_interest(self) -> dict[str, Listing]:
        redis = await self._reach()
        now = trio.current_time()
        wanted: dict[str, Listing] = {}
        for expires_at, listings in redis.interest.values():
            if expires_at > now:
                wanted |= listings
        return wanted


def _id_number(entry_id: str) -> tuple[int, int]:
    ms, _, number = entry_id.partition("-")
    return int(ms), int(number or 0)
