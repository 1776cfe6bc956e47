"""The flush clock that paces batching writers: under load, one frame per client per tick.

One shared timer instead of a timer per client: a batching writer that sent a frame in the current
tick parks on the clock (an Event, no exception) and sends everything queued at the next tick.
"""

from __future__ import annotations

import trio


class FlushClock:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.ticks = 0
        self._running = False
        self._next_tick = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Tick every `interval` seconds until cancelled (never, for an interval of 0)."""
        task_status.started()
        if self.interval <= 0:
            return
        self._running = True
        try:
            while True:
                await trio.sleep(self.interval)
                self.ticks += 1
                tick, self._next_tick = self._next_tick, trio.Event()
                tick.set()
        finally:
            self._running = False
            self._next_tick.set()  # nobody waits on a clock that no longer ticks

    async def wait_tick_after(self, tick: int) -> None:
        """Return once the clock has ticked past `tick` (at once if it already has or is not running)."""
        if self._running and self.ticks == tick:
            await self._next_tick.wait()
