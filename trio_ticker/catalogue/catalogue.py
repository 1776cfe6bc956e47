"""The `Catalogue`: every source's listings in one searchable `SymbolDirectory`, kept fresh.

The configured symbols are always in it, so they work before and without any upstream catalogue. Its
task loads the last saved catalogues from the history store (bounded by a timeout), reports started, then
fetches each live upstream's catalogue, every TICKER_CATALOGUE_REFRESH, saving each one it gets. A failed
fetch keeps what was served before and retries (Retry-After, or the sources' backoff); /healthz says why.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import httpx
import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..history.store import CandleStoreUnavailable, OpenCandleStore
from ..model import Listing
from ..sources.retry import Backoff, Jitter, RetryPolicy
from .fetch import CatalogueFetchFailed, UpstreamCatalogue
from .index import ListingIndex

log = logging.getLogger(__name__)

THREAD_INDEX_LISTINGS = 5_000
"""An index of more listings than this is built in a worker thread (it takes tens of milliseconds)."""
STORE_TIMEOUT = 5.0
"""Seconds a load from, or a save to, the history store may take (startup waits for the load this long at most)."""
MIN_RETRY_DELAY = 1.0


class CatalogueState(enum.StrEnum):
    PENDING = "pending"  # no fetch has finished yet (a stored catalogue may be served meanwhile)
    OK = "ok"  # the last fetch succeeded
    FAILED = "failed"  # the last fetch failed: what was served before still is
    FIXED = "fixed"  # not fetched: the demo's table, or TICKER_STOCK_CATALOGUE


@dataclass(frozen=True, slots=True)
class CatalogueStatus:
    state: CatalogueState
    count: int = 0
    detail: str = ""
    updated_ms: int | None = None  # epoch ms of the listings served (fetched, or saved before a restart)
    fetches: int = 0
    failures: int = 0


class Catalogue(Collector):
    def __init__(
        self,
        *,
        configured: Sequence[Listing],
        fixed: Mapping[str, Sequence[Listing]],
        upstreams: Sequence[UpstreamCatalogue],
        refresh: float,
        policy: RetryPolicy,
        http_timeout: float,
        open_store: OpenCandleStore | None = None,
        jitter: Jitter | None = None,
        wall_clock: Callable[[], float] = time.time,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._configured = tuple(configured)
        self._upstreams = tuple(upstreams)
        self._refresh = refresh
        self._policy = policy
        self._http_timeout = http_timeout
        self._open_store = open_store
        self._jitter = jitter or random.Random()
        self._wall_clock = wall_clock
        self._transport = http_transport
        self._listings: dict[str, tuple[Listing, ...]] = {source: tuple(items) for source, items in fixed.items()}
        self._status: dict[str, CatalogueStatus] = {
            source: CatalogueStatus(CatalogueState.FIXED, len(items)) for source, items in self._listings.items()
        }
        for upstream in self._upstreams:
            self._listings[upstream.source] = ()
            self._status[upstream.source] = CatalogueStatus(CatalogueState.PENDING)
        self.store_failures = 0
        self._index = self._build_index()

    # -- what the other wings ask ------------------------------------------------------------------

    def lookup(self, symbol: str) -> Listing | None:
        return self._index.lookup(symbol)

    def search(self, query: str, limit: int) -> list[Listing]:
        """`query` as `protocol.commands.normalize_query` returns it; see `ListingIndex.search`."""
        return self._index.search(query, limit)

    def configured(self) -> list[Listing]:
        """The always-on symbols, in the configured order, as the catalogue lists them."""
        return [self._index.lookup(listing.symbol) or listing for listing in self._configured]

    def statuses(self) -> dict[str, CatalogueStatus]:
        return dict(self._status)

    # -- the task ------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the stored catalogues, report started, then keep every upstream's catalogue fresh."""
        if not self._upstreams:
            task_status.started()
            return
        await self._load_stored()
        async with (
            httpx.AsyncClient(timeout=self._http_timeout, transport=self._transport) as client,
            trio.open_nursery() as nursery,
        ):
            for upstream in self._upstreams:
                nursery.start_soon(self._keep_fresh, client, upstream)
            task_status.started()

    async def _load_stored(self) -> None:
        if self._open_store is None:
            return
        try:
            with trio.fail_after(STORE_TIMEOUT):
                async with self._open_store() as store:
                    for upstream in self._upstreams:
                        stored = await store.load_listings(upstream.source)
                        if stored is not None:
                            detail = f"serving the catalogue saved at {stored.saved_ms}"
                            await self._serve(upstream.source, stored.listings, stored.saved_ms)
                            self._status[upstream.source] = replace(self._status[upstream.source], detail=detail)
        except (CandleStoreUnavailable, trio.TooSlowError) as error:
            self.store_failures += 1
            log.warning("event=catalogue_load_failed error=%r", str(error) or "timed out")

    async def _keep_fresh(self, client: httpx.AsyncClient, upstream: UpstreamCatalogue) -> None:
        backoff = Backoff(self._policy, self._jitter)
        source = upstream.source
        while True:
            try:
                listings = await upstream.fetch(client)
            except CatalogueFetchFailed as failure:
                backoff.failed()
                status = self._status[source]
                self._status[source] = replace(
                    status, state=CatalogueState.FAILED, detail=failure.detail, failures=status.failures + 1
                )
                delay = self._retry_delay(failure, backoff)
                log.warning(
                    "event=catalogue_fetch_failed source=%s error=%r serving=%d retry_in=%.1f",
                    source,
                    failure.detail,
                    status.count,
                    delay,
                )
                await trio.sleep(delay)
                continue
            backoff.reset()
            now_ms = int(self._wall_clock() * 1000)
            await self._serve(source, tuple(listings), now_ms)
            status = self._status[source]
            self._status[source] = replace(status, state=CatalogueState.OK, detail="", fetches=status.fetches + 1)
            log.info("event=catalogue_fetched source=%s listings=%d", source, len(listings))
            await self._save(source, listings, now_ms)
            await trio.sleep(self._refresh)

    def _retry_delay(self, failure: CatalogueFetchFailed, backoff: Backoff) -> float:
        if failure.retry_after is not None:
            return failure.retry_after
        if failure.unauthorized:
            return self._policy.unauthorized_delay
        return max(MIN_RETRY_DELAY, backoff.delay())

    async def _save(self, source: str, listings: Sequence[Listing], now_ms: int) -> None:
        if self._open_store is None:
            return
        try:
            with trio.fail_after(STORE_TIMEOUT):
                async with self._open_store() as store:
                    await store.save_listings(source, listings, now_ms)
        except (CandleStoreUnavailable, trio.TooSlowError) as error:
            self.store_failures += 1  # served all the same; only a restart's first minutes miss it
            log.warning("event=catalogue_save_failed source=%s error=%r", source, str(error) or "timed out")

    async def _serve(self, source: str, listings: tuple[Listing, ...], updated_ms: int) -> None:
        """Swap in a new index holding `listings` as `source`'s (searches in between read the old one)."""
        wanted = {**self._listings, source: listings}
        if sum(map(len, wanted.values())) > THREAD_INDEX_LISTINGS:
            index = await trio.to_thread.run_sync(self._build_index, wanted)
        else:
            index = self._build_index(wanted)
        self._listings, self._index = wanted, index
        self._status[source] = replace(self._status[source], count=len(listings), updated_ms=updated_ms)

    def _build_index(self, by_source: Mapping[str, Sequence[Listing]] | None = None) -> ListingIndex:
        # Each source's own entry first (it has the name and precision), then the configured symbols.
        everything = [listing for listings in (by_source or self._listings).values() for listing in listings]
        return ListingIndex([*everything, *self._configured])

    # -- reporting -----------------------------------------------------------------------------------

    def health(self) -> dict[str, dict[str, object]]:
        return {
            source: {"state": status.state.value, "count": status.count, "detail": status.detail}
            | {"updated": status.updated_ms, "fetches": status.fetches, "failures": status.failures}
            for source, status in self._status.items()
        }

    def collect(self) -> Iterator[Metric]:
        listings = GaugeMetricFamily("ticker_catalogue_listings", "Symbols each catalogue lists", labels=["source"])
        state = GaugeMetricFamily("ticker_catalogue_state", "1 for each catalogue's state", labels=["source", "state"])
        fetches = CounterMetricFamily(
            "ticker_catalogue_fetches", "Catalogue fetches, by result", labels=["source", "result"]
        )
        for source, status in self._status.items():
            listings.add_metric([source], status.count)
            for each in CatalogueState:
                state.add_metric([source, each.value], 1.0 if each is status.state else 0.0)
            fetches.add_metric([source, "ok"], status.fetches)
            fetches.add_metric([source, "failed"], status.failures)
        rejected = CounterMetricFamily(
            "ticker_catalogue_rejected", "Catalogue entries refused, by kind", labels=["source", "kind"]
        )
        for upstream in self._upstreams:
            for kind, count in upstream.rejected.counts().items():
                rejected.add_metric([upstream.source, kind], count)
        yield from (listings, state, fetches, rejected)
        yield CounterMetricFamily(
            "ticker_catalogue_store_failures", "Failed loads and saves of catalogues", value=self.store_failures
        )
