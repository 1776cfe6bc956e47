"""On-demand symbols across workers: each worker's interest in Redis under a lease, streamed by the leader.

A worker's `SymbolDemand` routes to `WorkerInterest` instead of local sources: it keeps the worker's
on-demand listings (watched and lingering) in Redis, renewed every third of the lease, so a worker that
dies stops counting within one lease. The ingest leader's `InterestRouter` streams the union from its
sources and leaves a symbol its upstream refused alone until no worker wants it any more.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence

import trio

from ...errors import leaves
from ...model import Listing
from ...sources.retry import Backoff, Jitter, RetryPolicy
from ...sources.supervise import Supervisor
from .store import OpenStore, StoreUnavailable

log = logging.getLogger(__name__)


class WorkerInterest:
    """This worker's on-demand symbols, published to the shared store until cancelled."""

    def __init__(
        self,
        open_store: OpenStore,
        *,
        lease: float,
        command_timeout: float,
        policy: RetryPolicy,
        jitter: Jitter | None = None,
    ) -> None:
        self.worker = secrets.token_hex(8)
        self._open_store = open_store
        self._lease = lease
        self._command_timeout = min(command_timeout, lease / 3)
        self._backoff = Backoff(policy, jitter)
        self._listings: dict[str, Listing] = {}
        self._changed = trio.Event()
        self.publishes = 0

    def streams(self, names: Sequence[str]) -> list[InterestStream]:
        """What the worker's demand owner routes to: one stream per source name, all kept here."""
        return [InterestStream(name, self) for name in names]

    def add(self, listing: Listing) -> None:
        self._listings[listing.symbol] = listing
        self._changed.set()

    def remove(self, symbol: str) -> None:
        if self._listings.pop(symbol, None) is not None:
            self._changed.set()

    def symbols(self) -> frozenset[str]:
        return frozenset(self._listings)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                async with self._open_store() as store:
                    self._backoff.reset()
                    while True:
                        self._changed = trio.Event()
                        with trio.fail_after(self._command_timeout):
                            await store.publish_interest(self.worker, dict(self._listings), self._lease)
                        self.publishes += 1
                        with trio.move_on_after(self._lease / 3):
                            await self._changed.wait()
            except* (StoreUnavailable, trio.TooSlowError) as group:
                self._backoff.failed()
                log.warning("event=interest_store_unavailable error=%r", leaves(group)[0])
            await trio.sleep(self._backoff.delay())


class InterestStream:
    """`SymbolStream` for one source name: the symbol goes to the worker's interest, for the leader to stream."""

    def __init__(self, name: str, interest: WorkerInterest) -> None:
        self.name = name
        self._interest = interest

    def stream_symbol(self, listing: Listing) -> None:
        self._interest.add(listing)

    def drop_symbol(self, symbol: str) -> None:
        self._interest.remove(symbol)


class InterestRouter:
    """The leader's side: what every worker wants, streamed by the source each listing names."""

    def __init__(self, sources: Sequence[Supervisor]) -> None:
        self._sources = {source.name: source for source in sources}
        self._streaming: dict[str, Listing] = {}
        self._refused: set[str] = set()

    def apply(self, wanted: Mapping[str, Listing]) -> None:
        for symbol in [symbol for symbol in self._streaming if symbol not in wanted]:
            listing = self._streaming.pop(symbol)
            self._sources[listing.source].drop_symbol(symbol)
        self._refused &= wanted.keys()
        for symbol, listing in wanted.items():
            if symbol in self._streaming or symbol in self._refused or listing.source not in self._sources:
                continue
            self._streaming[symbol] = listing
            self._sources[listing.source].stream_symbol(listing)

    def refused(self, symbol: str) -> None:
        """The upstream refused `symbol`: not asked again while some worker still wants it."""
        if self._streaming.pop(symbol, None) is not None:
            self._refused.add(symbol)

    def streaming(self) -> frozenset[str]:
        return frozenset(self._streaming)
