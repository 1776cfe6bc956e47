"""The follower: every worker's hub gets its ticks from the store, never from its own sources.

On each (re)connect it loads the snapshot (so `GET /price` and snapshot-on-subscribe match the other workers
at once), then reads the stream from where that snapshot stands. Before it applies the snapshot it reads the
stream up to it: on a reconnect in the same epoch, the entries after the last one its hub got (news its clients
missed while it was away, sent as they are); on its first connect, the ticks within the recovery window, sent as
`PastTick`s for the hub's recovery history only. When the store is unreachable it marks every symbol stale,
keeps serving what it has, and reconnects with backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial

import trio

from ...errors import leaves
from ...model import Ingest, PastTick, SourceState, SourceStatus, StaleChange, SymbolRejected, Tick
from ...sources.retry import Backoff, Jitter, RetryPolicy
from ...tick_codec import EntryError
from .codec import TICK, Snapshot, decode_entry, last_id_of_ms, stream_id_ms
from .store import OpenStore, ScaleOutStore, StoreUnavailable

log = logging.getLogger(__name__)

STATUS_SOURCE = "redis"
"""The name the follower's own connection state has among the sources (/healthz, status messages)."""

READ_BLOCK_SECONDS = 1.0
RANGE_PAGE = 1000
"""Entries per read when the follower reads a range of the stream (recent ticks, or what a reconnect missed)."""

EntryHandler = Callable[[str, Mapping[str, str]], Awaitable[None]]


class TickFollower:
    def __init__(
        self,
        open_store: OpenStore,
        latest_ticks: Callable[[], dict[str, Tick]],
        *,
        command_timeout: float,
        policy: RetryPolicy,
        jitter: Jitter | None = None,
        read_block: float = READ_BLOCK_SECONDS,
        wall_clock: Callable[[], float] = time.time,
        on_epoch: Callable[[str], None] = lambda epoch: None,
        recovery_window: float | None = None,
        range_page: int = RANGE_PAGE,
    ) -> None:
        """`recovery_window`: how many seconds of recent ticks a fresh start reads (TICKER_RECOVERY_WINDOW);
        None when recovery is off."""
        self._open_store = open_store
        self._recovery_window = recovery_window
        self._range_page = range_page
        self._on_epoch = on_epoch  # the hub's: every worker names the stream with the epoch stored in Redis
        self._latest_ticks = latest_ticks  # what this worker's hub has shown its clients
        self._command_timeout = command_timeout
        self._backoff = Backoff(policy, jitter)
        self._read_block = read_block
        self._wall_clock = wall_clock
        self.connected = False
        self.reconnects = 0
        self.entries = 0
        self.bad_entries = 0
        self.last_error = ""
        self._marked_stale: set[str] = set()  # by us, while disconnected: fresh again with their next tick
        self._cursor: str | None = None  # the last entry the hub got, kept across reconnects
        self._epoch: str | None = None  # the numbering `_cursor` belongs to

    async def run(
        self, ingest: trio.MemorySendChannel[Ingest], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Report started after the first snapshot is in the hub, or after the first failed attempt."""
        started = False
        backoff = self._backoff
        async with ingest:
            while True:
                try:
                    async with self._open_store() as store:
                        with trio.fail_after(self._command_timeout):
                            snapshot = await store.load_snapshot()
                            epoch = await store.stream_epoch()
                        self._on_epoch(epoch)
                        await self._read_up_to(store, snapshot, epoch, ingest)
                        await self._apply_snapshot(store, snapshot, ingest)
                        self._cursor, self._epoch = snapshot.cursor, epoch
                        backoff.reset()
                        if not started:
                            started = True
                            task_status.started()
                        await self._follow(store, snapshot.cursor, ingest)
                except* (StoreUnavailable, trio.TooSlowError) as group:
                    backoff.failed()
                    self.last_error = str(leaves(group)[0])
                    log.warning(
                        "event=follower_store_unavailable error=%s failures=%d", self.last_error, backoff.failures
                    )
                await self._mark_disconnected(ingest)
                if not started:
                    started = True
                    task_status.started()
                await trio.sleep(backoff.delay())

    async def _read_up_to(
        self, store: ScaleOutStore, snapshot: Snapshot, epoch: str, ingest: trio.MemorySendChannel[Ingest]
    ) -> None:
        """What the stream has up to the snapshot that the hub should have before it: what it missed after its last
        entry (a reconnect in the same numbering), or else the ticks within the recovery window (a fresh start,
        or the numbering restarted: the hub forgot its history and the old cursor means nothing)."""
        if self._cursor is not None and epoch == self._epoch:
            missed = await self._read_range(store, self._cursor, snapshot.cursor, partial(self._deliver, ingest))
            if missed:
                log.info("event=follower_caught_up entries=%d cursor=%s", missed, snapshot.cursor)
        elif self._recovery_window is not None:
            cutoff_ms = snapshot.now_ms - round(self._recovery_window * 1000)
            remember = partial(self._remember, ingest, snapshot.now_ms)
            recent = await self._read_range(store, last_id_of_ms(cutoff_ms), snapshot.cursor, remember)
            log.info("event=follower_read_recent entries=%d cursor=%s", recent, snapshot.cursor)

    async def _read_range(self, store: ScaleOutStore, after: str, until: str, handle: EntryHandler) -> int:
        """Hand each entry in (`after`, `until`] to `handle`, a page at a time; the number read. Bounded by the
        stream's length: every page starts after the last, and nothing added after `until` is in the range."""
        read = 0
        while True:
            with trio.fail_after(self._command_timeout):
                page = await store.read_range(after, until, self._range_page)
            for entry_id, fields in page:
                await handle(entry_id, fields)
            read += len(page)
            if len(page) < self._range_page or page[-1][0] == until:
                return read
            after = page[-1][0]

    async def _remember(
        self, ingest: trio.MemorySendChannel[Ingest], now_ms: int, entry_id: str, fields: Mapping[str, str]
    ) -> None:
        """A recent tick for the recovery history, by its age on the store's clock. Other entries are skipped:
        the snapshot has the current statuses and stale flags."""
        if fields.get("kind") != TICK:
            return
        item = self._decoded(entry_id, fields)
        if isinstance(item, Tick):
            await ingest.send(PastTick(item, max(0, now_ms - stream_id_ms(entry_id)) / 1000))

    async def _apply_snapshot(
        self, store: ScaleOutStore, snapshot: Snapshot, ingest: trio.MemorySendChannel[Ingest]
    ) -> None:
        # Redis lost its data (restarted without persistence) if it is behind what this hub has shown:
        # raise its counters so the next leader numbers above what clients have already seen.
        in_store = {tick.symbol: tick.seq for tick in snapshot.ticks}
        ahead = {s: t.seq for s, t in self._latest_ticks().items() if t.seq > in_store.get(s, 0)}
        if ahead:
            with trio.fail_after(self._command_timeout):
                await store.raise_seq_floor(ahead)
            log.warning("event=store_behind_hub symbols=%s", ",".join(sorted(ahead)))
        for status in snapshot.statuses:
            await ingest.send(status)
        for tick in snapshot.ticks:
            await ingest.send(tick)  # the hub drops it unless it is newer than what it has
            await ingest.send(StaleChange(tick.symbol, tick.stale, tick.ts))
            self._marked_stale.discard(tick.symbol)
        if not self.connected:
            self.connected = True
            await ingest.send(self._status(SourceState.LIVE))
            log.info("event=follower_connected cursor=%s symbols=%d", snapshot.cursor, len(snapshot.ticks))

    async def _follow(self, store: ScaleOutStore, cursor: str, ingest: trio.MemorySendChannel[Ingest]) -> None:
        while True:
            with trio.fail_after(self._read_block + self._command_timeout):
                entries = await store.read(cursor, self._read_block)
            for entry_id, fields in entries:
                cursor = entry_id
                await self._deliver(ingest, entry_id, fields)

    async def _deliver(self, ingest: trio.MemorySendChannel[Ingest], entry_id: str, fields: Mapping[str, str]) -> None:
        """One entry to the hub as the news it is; its id becomes the cursor a reconnect goes on from."""
        self.entries += 1
        item = self._decoded(entry_id, fields)
        if item is not None:
            if isinstance(item, Tick) and item.symbol in self._marked_stale:
                self._marked_stale.discard(item.symbol)
                await ingest.send(StaleChange(item.symbol, False, item.ts))
            await ingest.send(item)
        self._cursor = entry_id

    def _decoded(
        self, entry_id: str, fields: Mapping[str, str]
    ) -> Tick | StaleChange | SourceStatus | SymbolRejected | None:
        try:
            return decode_entry(fields)
        except EntryError as error:
            self.bad_entries += 1
            log.warning("event=bad_stream_entry id=%s error=%s", entry_id, error)
            return None

    async def _mark_disconnected(self, ingest: trio.MemorySendChannel[Ingest]) -> None:
        if self.connected:
            self.reconnects += 1
        self.connected = False
        now = self._now_ms()
        await ingest.send(self._status(SourceState.RECONNECTING))
        for symbol in self._latest_ticks():
            self._marked_stale.add(symbol)
            await ingest.send(StaleChange(symbol, True, now))

    def _status(self, state: SourceState) -> SourceStatus:
        detail = "" if self.connected else self.last_error
        return SourceStatus(STATUS_SOURCE, state, self._now_ms(), detail=detail, reconnects=self.reconnects)

    def _now_ms(self) -> int:
        return int(self._wall_clock() * 1000)
