"""The flush pacer: a batching client gets at most one frame per interval, and a saturated loop
serves every client's writer round-robin, a few per scheduler pass.

After each flush a writer queues for its next turn: not before `interval` after that flush, and
behind every writer that queued before it. One pacer task releases the writers whose turn has
come, in queue order, at most `group` of them per scheduler pass. Small groups keep each pass
short: a frame taken in one pass goes out in the next (Hypercorn's send takes two), so a pass
carrying thousands of writers made every frame wait for all of them (measured: latency of several
rounds, and ~25 % fewer frames per second at 3000 clients with 16 groups of ~190 than with ~12).
When the loop keeps up each client gets at most one frame per interval; when it is saturated the
round stretches to what the server can send and a tick waits about one round. With no writer
queued the pacer sleeps: an idle server does not wake up for it. Single-frame writers take a
turn per frame too, due at once (no interval): they are only spread over passes.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import trio

FLUSH_GROUP = 8
"""Writers released per scheduler pass when more are due. At 3000 x 20 on the 2-core machine 4, 8 and 16
measured within the run-to-run noise (8: p99 219-275 ms over five runs), 32 worse, 190 (the old phases) much worse."""


@dataclass(slots=True)
class _Turn:
    due: float
    task: trio.lowlevel.Task | None  # None once the wait was cancelled: the pacer skips it


class FlushPacer:
    def __init__(self, interval: float, group: int = FLUSH_GROUP) -> None:
        self.interval = interval
        self.group = group
        self._running = False
        self._queue: deque[_Turn] = deque()
        self._writer_queued = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Release queued writers in their turn until cancelled (nothing to do for an interval of 0)."""
        task_status.started()
        if self.interval <= 0:
            return
        self._running = True
        queue = self._queue
        try:
            while True:
                if not queue:
                    self._writer_queued = trio.Event()
                    await self._writer_queued.wait()
                due = queue[0].due
                now = trio.current_time()
                if due > now:
                    await trio.sleep_until(due)
                    continue
                released = 0
                while released < self.group and queue and queue[0].due <= now:
                    released += self._wake_first()
                await trio.lowlevel.checkpoint()  # the next group goes in the next scheduler pass
        finally:
            self._running = False
            while queue:
                self._wake_first()  # nobody waits on a pacer that no longer runs

    def _wake_first(self) -> bool:
        """Wake the first queued writer; False when its wait was cancelled (nobody to wake)."""
        task = self._queue.popleft().task
        if task is None:
            return False
        trio.lowlevel.reschedule(task)
        return True

    async def wait_turn(self, last_flush: float | None) -> None:
        """Return once this writer may flush again: `interval` after `last_flush`, and in its turn.

        `None` (nothing flushed yet, or a writer without an interval): due at once, still in turn.

        Always through the queue, even when that time has passed: a saturated loop's passes outlast
        the interval, and writers that went straight on would all run in every pass (which keeps
        the passes that long). An idle client does not wait here: its writer waits for its next
        update after its turn. At once when the pacer is not running.
        """
        if not self._running:
            return
        # One wait per frame: the task is parked directly (no Event per turn), and a cancelled wait
        # leaves its entry behind, emptied, for the pacer to skip.
        turn = _Turn(-math.inf if last_flush is None else last_flush + self.interval, trio.lowlevel.current_task())
        self._queue.append(turn)
        self._writer_queued.set()

        def abort(_: Any) -> trio.lowlevel.Abort:
            turn.task = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
