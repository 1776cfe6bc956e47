"""`python -m trio_ticker ingest`: the ingest leader candidate and the deployment's one candle writer, no HTTP.

While it holds the lease its sources run here, and every price it publishes to Redis is folded into
its candles, which it writes to the candle store (Redis, or the store TICKER_HISTORY names). Fan-out
workers (TICKER_ROLE=fanout) read those candles and build the open ones from the same stream.
"""

from __future__ import annotations

import logging
import signal

import trio

from ..history.build import build_history
from ..history.writer import FINAL_FLUSH_TIMEOUT
from ..ingest.scaleout.leader import IngestLeader
from ..ingest.scaleout.node import build_leader
from ..model import PriceUpdate, tick_from_update
from ..settings import Settings
from ..sources.build import build_supervised_sources

log = logging.getLogger("trio_ticker.ingest")


async def run_ingest_process(
    settings: Settings, *, task_status: trio.TaskStatus[IngestLeader] = trio.TASK_STATUS_IGNORED
) -> None:
    """Campaign for the lease and, while leading, write candles; until SIGTERM/SIGINT."""
    history = build_history(settings, writing=lambda: leader.leading)  # None with TICKER_HISTORY=off

    def record(update: PriceUpdate) -> None:
        if history is not None:  # the tick exactly as the workers decode it from the stream (seq aside)
            history.live.record(tick_from_update(update, seq=0))

    leader = build_leader(settings, build_supervised_sources(settings), on_published=record)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(leader.run)
            async with trio.open_nursery() as history_nursery:
                if history is not None:
                    await history_nursery.start(history.run)
                log.info(
                    "event=ingest_started prefix=%s lease=%.1f history=%s",
                    settings.redis_prefix,
                    settings.redis_lease,
                    settings.history_store,
                )
                task_status.started(leader)
                async for signum in signals:
                    log.info("event=shutdown signal=%s leading=%s", signal.Signals(signum).name, leader.leading)
                    break
                if history is not None:  # the last write first, while this process still holds the lease
                    history.writer.finish()
                    with trio.move_on_after(FINAL_FLUSH_TIMEOUT + settings.redis_command_timeout):
                        await history.writer.wait_finished()
                history_nursery.cancel_scope.cancel()
            nursery.cancel_scope.cancel()  # a leader releases its lease on the way out
