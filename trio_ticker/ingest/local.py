"""Local ingest: the sources run in this process and send straight into the hub's channel.

What a single-process server runs (TICKER_REDIS_URL unset); each supervised source gets its own
clone of the hub's ingest channel, so the hub ends once every source has closed its end.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import trio

from ..model import Ingest
from ..sources.supervise import Supervisor

log = logging.getLogger(__name__)


class LocalIngest:
    def __init__(self, sources: Sequence[Supervisor]) -> None:
        self._sources = tuple(sources)

    async def run(
        self,
        updates: trio.MemorySendChannel[Ingest],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Started once every source has started (live, or its first attempt failed)."""
        async with trio.open_nursery() as nursery:
            async with updates:
                for source in self._sources:
                    await nursery.start(source.run, updates.clone())
                    log.info("event=source_started source=%s symbols=%s", source.name, ",".join(source.symbols))
            task_status.started()

    def symbol_streams(self) -> tuple[Supervisor, ...]:
        """On-demand symbols go straight to the sources in this process."""
        return self._sources

    def health(self) -> dict[str, Any]:
        return {}

    def leads(self) -> bool:
        return True
