"""The flush clock that paces batching writers: under load, one frame per client per interval.

One shared clock instead of a timer per client. Clients are spread over `phases` groups and the
clock releases one group every interval/phases, so each scheduler pass carries only a slice of
the writers. Each wait is re-armed from when the clock really ran: when the event loop is
saturated the cycle stretches to the time the writers actually take, instead of every writer
running back to back in passes that hold all of them (what made latency several rounds long).
"""

from __future__ import annotations

import trio

FLUSH_PHASES = 16
"""Groups of writers released one after another; a frame waits at most about 1/FLUSH_PHASES of a cycle extra."""


class FlushClock:
    def __init__(self, interval: float, phases: int = FLUSH_PHASES) -> None:
        self.interval = interval
        self.phases = phases
        self._running = False
        self._phase_ticks = [0] * phases
        self._phase_released = [trio.Event() for _ in range(phases)]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Release one phase every `interval / phases` seconds until cancelled (never, for an interval of 0)."""
        task_status.started()
        if self.interval <= 0:
            return
        self._running = True
        step = self.interval / self.phases
        try:
            while True:
                for phase in range(self.phases):
                    await trio.sleep(step)
                    self._release(phase)
        finally:
            self._running = False
            for released in self._phase_released:
                released.set()  # nobody waits on a clock that no longer ticks

    def _release(self, phase: int) -> None:
        self._phase_ticks[phase] += 1
        released, self._phase_released[phase] = self._phase_released[phase], trio.Event()
        released.set()

    def phase_of(self, client_id: int) -> int:
        return client_id % self.phases

    def ticks(self, phase: int) -> int:
        """How many times `phase` has been released."""
        return self._phase_ticks[phase]

    async def wait_tick_after(self, phase: int, tick: int) -> None:
        """Return once `phase` has been released past `tick` (at once if it already has or the clock is not running)."""
        if self._running and self._phase_ticks[phase] == tick:
            await self._phase_released[phase].wait()
