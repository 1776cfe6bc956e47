"""Supervised sources on the autojump clock: a retry policy with exact numbers, jitter that always draws the
top of its range (so delays are exact), and a run that collects everything the supervisors send, with its time."""

from __future__ import annotations

import trio

from trio_ticker.model import Ingest
from trio_ticker.sources.retry import RetryPolicy
from trio_ticker.sources.supervise import Supervisor

POLICY = RetryPolicy(initial=1.0, maximum=8.0, healthy_after=60.0, unauthorized_delay=300.0)


class MaxJitter:
    """Always the top of the jitter range, so delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


async def run_for(
    seconds: float, *sources: Supervisor, started_at: list[float] | None = None
) -> list[tuple[float, Ingest]]:
    """Run supervisors for `seconds` of virtual time; return every item they sent, with its time (and note in
    `started_at` when each reported started)."""
    received: list[tuple[float, Ingest]] = []
    send, receive = trio.open_memory_channel[Ingest](100)

    async def collect() -> None:
        async for item in receive:
            received.append((trio.current_time(), item))

    with trio.fail_after(seconds + 60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect)
            with trio.move_on_after(seconds):
                async with trio.open_nursery() as sources_nursery, send:
                    for supervisor in sources:
                        await sources_nursery.start(supervisor.run, send.clone())
                        if started_at is not None:
                            started_at.append(trio.current_time())
    return received
