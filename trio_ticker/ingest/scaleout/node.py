"""One process's part in a scale-out deployment, wired from Settings.

An HTTP worker runs a `TickFollower` feeding its hub, its `WorkerInterest` (the symbols its clients
want, for the leader) and, unless TICKER_ROLE=fanout, an `IngestLeader` candidate; `python -m trio_ticker
ingest` (trio_ticker/process/ingest_service.py) runs only the candidate, with the candle writer.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import trio

from ...model import Ingest, PriceUpdate, Tick
from ...settings import Settings
from ...sources.retry import RetryPolicy
from ...sources.supervise import Supervisor
from .follower import TickFollower
from .interest import InterestStream, WorkerInterest
from .leader import IngestLeader
from .redis_store import open_redis_store
from .store import OpenStore


def store_opener(settings: Settings) -> OpenStore:
    assert settings.redis_url is not None
    return partial(
        open_redis_store,
        settings.redis_url.get_secret_value(),
        prefix=settings.redis_prefix,
        stream_maxlen=settings.redis_stream_maxlen,
        connect_timeout=settings.redis_command_timeout,
    )


def redis_retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        initial=settings.redis_reconnect_initial_delay,
        maximum=settings.redis_reconnect_max_delay,
    )


def build_leader(
    settings: Settings,
    sources: Sequence[Supervisor],
    open_store: OpenStore | None = None,
    *,
    on_published: Callable[[PriceUpdate], None] | None = None,
) -> IngestLeader:
    """`on_published`: told each price the leader has published (the ingest process's candles)."""
    return IngestLeader(
        open_store or store_opener(settings),
        sources,
        lease=settings.redis_lease,
        command_timeout=settings.redis_command_timeout,
        policy=redis_retry_policy(settings),
        ingest_buffer=settings.ingest_buffer,
        jitter=random.Random(),
        on_published=on_published,
    )


class ScaleOutNode:
    """The follower (and the leader candidate) of one HTTP worker: the ingest route with TICKER_REDIS_URL.

    `latest_ticks` reads what the hub has shown its clients (the follower compares it with Redis); `on_epoch`
    gives the hub the epoch stored in Redis.
    """

    def __init__(
        self,
        settings: Settings,
        sources: Sequence[Supervisor],
        *,
        latest_ticks: Callable[[], dict[str, Tick]],
        on_epoch: Callable[[str], None] = lambda epoch: None,
    ) -> None:
        self.role = settings.role
        open_store = store_opener(settings)
        self.follower = TickFollower(
            open_store,
            latest_ticks,
            command_timeout=settings.redis_command_timeout,
            policy=redis_retry_policy(settings),
            on_epoch=on_epoch,
            recovery_window=settings.recovery_window if settings.recovery_ticks else None,
        )
        self.leader = build_leader(settings, sources, open_store) if settings.role == "both" else None
        self.interest = WorkerInterest(
            open_store,
            lease=settings.redis_lease,
            command_timeout=settings.redis_command_timeout,
            policy=redis_retry_policy(settings),
        )
        self._source_names = tuple(source.name for source in sources)

    def symbol_streams(self) -> list[InterestStream]:
        """On-demand symbols go to this worker's interest in Redis; the leader streams them."""
        return self.interest.streams(self._source_names)

    async def run(
        self, ingest: trio.MemorySendChannel[Ingest], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Started once the hub holds the shared snapshot (or Redis was found unreachable)."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.follower.run, ingest)
            await nursery.start(self.interest.run)
            if self.leader is not None:
                await nursery.start(self.leader.run)
            task_status.started()

    def leads(self) -> bool:
        """While this process holds the ingest lease (a fan-out-only worker never does)."""
        return self.leader is not None and self.leader.leading

    def health(self) -> dict[str, Any]:
        """/healthz's `redis` block."""
        follower = self.follower
        redis = {
            "pid": os.getpid(),  # which worker answered: its leader flag is this process's
            "state": "connected" if follower.connected else "disconnected",
            "role": self.role,
            "leader": self.leader is not None and self.leader.leading,
            "fencing_token": self.leader.token if self.leader is not None else None,
            "reconnects": follower.reconnects,
            "entries": follower.entries,
            "bad_entries": follower.bad_entries,
            **({"error": follower.last_error} if not follower.connected else {}),
        }
        return {"redis": redis}
