"""The follower: every worker's hub gets its ticks from the store, never from its own sources.

On each (re)connect it loads the snapshot (so `GET /price` and snapshot-on-subscribe match the
other workers at once), then reads the stream from where that snapshot stands. When the store is
unreachable it marks every symbol stale, keeps serving what it has, and reconnects with backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import trio

from ...errors import leaves
from ...model import Ingest, SourceState, SourceStatus, StaleChange, Tick
from ...sources.retry import Backoff, Jitter, RetryPolicy
from .codec import EntryError, Snapshot, decode_entry
from .store import OpenStore, ScaleOutStore, StoreUnavailable

log = logging.getLogger(__name__)

STATUS_SOURCE = "redis"
"""The name the follower's own connection state has among the sources (/healthz, status messages)."""

READ_BLOCK_SECONDS = 1.0


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
    ) -> None:
        self._open_store = open_store
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
                            self._on_epoch(await store.stream_epoch())
                        await self._apply_snapshot(store, snapshot, ingest)
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
                self.entries += 1
                try:
                    item = decode_entry(fields)
                except EntryError as error:
                    self.bad_entries += 1
                    log.warning("event=bad_stream_entry id=%s error=%s", entry_id, error)
                    continue
                if isinstance(item, Tick) and item.symbol in self._marked_stale:
                    self._marked_stale.discard(item.symbol)
                    await ingest.send(StaleChange(item.symbol, False, item.ts))
                await ingest.send(item)

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
