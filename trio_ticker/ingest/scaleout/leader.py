"""The ingest leader: win the lease, run the sources, publish what they send, step down when unsure.

Exactly one process holds the lease at a time; the publish script re-checks the fencing token on
every batch, so a leader that hung past its lease is refused instead of publishing twice. While leading
it reads the workers' on-demand interest and has its sources stream the union (`interest.InterestRouter`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence

import trio

from ...errors import leaves
from ...model import Ingest, PastTick, PriceUpdate, SymbolRejected, Tick
from ...sources.retry import Backoff, Jitter, RetryPolicy
from ...sources.supervise import Supervisor
from .interest import InterestRouter
from .store import OpenStore, ScaleOutStore, StoreUnavailable

log = logging.getLogger(__name__)

PUBLISH_BATCH = 256
"""At most this many queued items go to Redis in one script call (one round trip)."""
INTEREST_POLL = 0.5
"""Seconds between reads of the workers' interest (or a third of the lease, if shorter): how long a symbol
first subscribed on any worker waits before the leader subscribes it upstream."""


class LeadershipLost(Exception):
    """The lease was not renewed in time, or the store refused our fencing token."""


class IngestLeader:
    """A leader candidate: campaigns for the lease forever; while it holds it, the sources run here."""

    def __init__(
        self,
        open_store: OpenStore,
        sources: Sequence[Supervisor],
        *,
        lease: float,
        command_timeout: float,
        policy: RetryPolicy,
        ingest_buffer: int,
        jitter: Jitter | None = None,
        on_published: Callable[[PriceUpdate], None] | None = None,
    ) -> None:
        self._open_store = open_store
        self._sources = sources
        self.interest = InterestRouter(sources)
        self.lease = lease
        self._command_timeout = min(command_timeout, lease / 3)
        self._ingest_buffer = ingest_buffer
        self._backoff = Backoff(policy, jitter)
        self._on_published = on_published  # the ingest process's candles: told each price once Redis has it
        self.token: int | None = None  # the fencing token while leading
        self.leading_since: float | None = None  # trio time this term began
        self.terms = 0  # how many times this process became leader
        self.published = 0

    @property
    def leading(self) -> bool:
        return self.token is not None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        backoff = self._backoff
        while True:
            try:
                async with self._open_store() as store:
                    backoff.reset()
                    await self._campaign(store)
            except* (StoreUnavailable, trio.TooSlowError) as group:
                backoff.failed()
                log.warning("event=leader_store_unavailable error=%r failures=%d", leaves(group)[0], backoff.failures)
            await trio.sleep(backoff.delay())

    async def _campaign(self, store: ScaleOutStore) -> None:
        while True:
            with trio.fail_after(self._command_timeout):
                token = await store.try_acquire(self.lease)
            if token is None:
                await trio.sleep(self.lease / 3)
                continue
            try:
                await self._lead(store, token)
            except* LeadershipLost as group:
                log.warning("event=leadership_lost token=%d reason=%s", token, leaves(group)[0])

    async def _lead(self, store: ScaleOutStore, token: int) -> None:
        self.token = token
        self.leading_since = trio.current_time()
        self.terms += 1
        log.info("event=leading token=%d lease=%.1f", token, self.lease)
        try:
            send, receive = trio.open_memory_channel[Ingest](self._ingest_buffer)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keep_lease, store, token)
                nursery.start_soon(self._publish, store, token, receive)
                nursery.start_soon(self._follow_interest, store)
                async with send:
                    for source in self._sources:
                        await nursery.start(source.run, send.clone())
        finally:
            self.token = self.leading_since = None
            # No-op unless we still hold the lease; lets a successor in now instead of at expiry.
            with (
                trio.CancelScope(shield=True),
                trio.move_on_after(self._command_timeout),
                contextlib.suppress(StoreUnavailable),
            ):
                await store.release(token)

    async def _keep_lease(self, store: ScaleOutStore, token: int) -> None:
        # Renew every third of the lease; a renewal that takes longer than a third means we cannot be
        # sure we still hold it, so we stop publishing at the latest two thirds into the lease.
        while True:
            await trio.sleep(self.lease / 3)
            with trio.move_on_after(self.lease / 3) as scope:
                renewed = await store.renew(token, self.lease)
            if scope.cancelled_caught:
                raise LeadershipLost("lease renewal timed out")
            if not renewed:
                raise LeadershipLost("lease taken over")

    async def _follow_interest(self, store: ScaleOutStore) -> None:
        """A slow read only delays on-demand symbols until the next one: it is no reason to step down."""
        while True:
            with trio.move_on_after(self._command_timeout):
                self.interest.apply(await store.read_interest())
            await trio.sleep(min(INTEREST_POLL, self.lease / 3))

    async def _publish(self, store: ScaleOutStore, token: int, receive: trio.MemoryReceiveChannel[Ingest]) -> None:
        async with receive:
            async for item in receive:
                batch = [item]
                while len(batch) < PUBLISH_BATCH:
                    try:
                        batch.append(receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                for entry in batch:
                    if isinstance(entry, SymbolRejected):
                        self.interest.refused(entry.symbol)  # and every worker's clients of it are told
                publishable = [entry for entry in batch if not isinstance(entry, Tick | PastTick)]
                with trio.fail_after(self._command_timeout):
                    accepted = await store.publish(token, publishable)
                if not accepted:
                    raise LeadershipLost("fencing token refused")
                self.published += len(publishable)
                if self._on_published is not None:
                    for entry in publishable:
                        if isinstance(entry, PriceUpdate):
                            self._on_published(entry)
