"""The flush pacer: a batching client gets at most one frame per interval, and a saturated loop
serves every client's writer round-robin, a few per scheduler pass.

After each flush a writer queues for its next turn: not before `interval` after that flush, and
behind every writer that queued before it and is due (never behind one whose interval still runs).
One pacer task releases the writers whose turn has come, in queue order, at most `group` of them
per scheduler pass. Small groups keep each pass short: a frame taken in one pass goes out in the
next (Hypercorn's send takes two), so a pass carrying thousands of writers would make every frame
wait for all of them (a latency of several rounds, and about a quarter fewer frames per second at
3000 clients in groups of ~190 than of ~12).
When the loop keeps up each client gets at most one frame per interval; when it is saturated the
round stretches to what the server can send and a tick waits about one round. With no writer
queued the pacer sleeps: an idle server does not wake up for it. Single-frame writers take a
turn per frame too, due at once (no interval): they are only spread over passes.

New connections take a turn too, before their handshake (`wait_admission`): an HTTP parse, the
WebSocket accept, a session, its subscription and snapshot cost a few frames' worth each. They fill
what the due writers leave of a pass's group, so an unsaturated loop admits a burst of them a group
per pass; while writers fill every group, one new connection starts per `admission_floor` seconds,
so a reconnect burst takes at most that from a saturated loop's rounds and a new client is never starved.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import trio

FLUSH_GROUP = 8
"""Writers released per scheduler pass when more are due. At 3000 x 20 on the 2-core machine groups of 4, 8 and 16
measure within the run-to-run noise (8: p99 219-275 ms over five runs), 32 worse, ~190 much worse."""
ADMISSION_FLOOR = 0.01
"""Seconds between new connections admitted while writers fill every group: up to 100 handshakes a second."""


@dataclass(frozen=True, slots=True)
class PacerStatistics:
    admitted: int  # new connections that waited for their turn to start (a running pacer)


@dataclass(slots=True)
class _Turn:
    due: float
    queued: int  # queue position: turns that are due go in this order
    task: trio.lowlevel.Task | None  # None once the wait was cancelled: the pacer skips it


class FlushPacer:
    def __init__(self, interval: float, group: int = FLUSH_GROUP, admission_floor: float = ADMISSION_FLOOR) -> None:
        self.interval = interval
        self.group = group
        self.admission_floor = admission_floor
        self._running = False
        # Two writers' queues, each in queue order: turns due when queued (single-frame writers, idle batching
        # ones, late ones) and turns waiting out an interval (batching writers that just flushed; one interval for
        # all, so nearly in due order). The first never waits behind the second's head until that is due.
        self._due_now: deque[_Turn] = deque()
        self._after_interval: deque[_Turn] = deque()
        self._admissions: deque[_Turn] = deque()  # and new connections waiting to start, in arrival order
        self._admitted = 0
        self._queued = itertools.count()
        self._wake_pacer = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Release queued writers in their turn until cancelled (nothing to do for an interval of 0)."""
        task_status.started()
        if self.interval <= 0:
            return
        self._running = True
        due_now, after_interval, admissions = self._due_now, self._after_interval, self._admissions
        group, admission_floor = self.group, self.admission_floor
        forced_admission_at = -math.inf  # when writers last filled a group and one new connection went in anyway
        try:
            while True:
                # Up to `group` writers: among the turns at the two heads that are due, the one queued first.
                now = trio.current_time()
                released = 0
                while released < group:
                    if (
                        after_interval
                        and after_interval[0].due <= now
                        and (not due_now or after_interval[0].queued < due_now[0].queued)
                    ):
                        released += _wake(after_interval.popleft())
                    elif due_now:
                        released += _wake(due_now.popleft())
                    else:
                        break
                if admissions:
                    if released < group:  # no more writers due: new connections fill the group
                        while released < group and admissions:
                            released += _wake(admissions.popleft())
                    elif now - forced_admission_at >= admission_floor:  # writers filled it: one, at most
                        while admissions:
                            if _wake(admissions.popleft()):
                                forced_admission_at = now
                                break
                if released:
                    await trio.lowlevel.checkpoint()  # the next group goes in the next scheduler pass
                else:
                    # Nothing due (so `due_now` is empty, and so is `admissions`, which filled the group):
                    # sleep until the first interval ends, or a turn due at once is queued.
                    self._wake_pacer = trio.Event()
                    wake_at = after_interval[0].due if after_interval else math.inf
                    if admissions:
                        wake_at = min(wake_at, forced_admission_at + admission_floor)
                    with trio.move_on_at(wake_at):
                        await self._wake_pacer.wait()
        finally:
            self._running = False
            for queue in (due_now, after_interval, admissions):  # nobody waits on a pacer that no longer runs
                while queue:
                    _wake(queue.popleft())

    async def wait_turn(self, last_flush: float | None) -> None:
        """Return once this writer may flush again: `interval` after `last_flush`, and in its turn.

        `None` (nothing flushed yet, or a writer without an interval): due at once, still in turn.

        Always through the queue, even when that time has passed: a saturated loop's passes outlast
        the interval, and writers that went straight on would all run in every pass (which keeps
        the passes that long). A turn due at once never waits for one that is not due yet. An idle
        client does not wait here: its writer waits for its next update after its turn. At once
        when the pacer is not running.
        """
        if not self._running:
            return
        # One wait per frame: the task is parked directly (no Event per turn), and a cancelled wait
        # leaves its entry behind, emptied, for the pacer to skip.
        due = -math.inf if last_flush is None else last_flush + self.interval
        turn = _Turn(due, next(self._queued), trio.lowlevel.current_task())
        if last_flush is None or due <= trio.current_time():
            self._due_now.append(turn)
            self._wake_pacer.set()
        else:
            if not self._after_interval:
                self._wake_pacer.set()  # the pacer may be asleep with nothing to wait for
            self._after_interval.append(turn)
        await _wait_for_release(turn)

    async def wait_admission(self) -> None:
        """Return once a new connection may start its handshake: in a pass the due writers leave room in,
        or `admission_floor` after the last one that started while they did not. At once when the pacer
        is not running."""
        if not self._running:
            return
        turn = _Turn(-math.inf, next(self._queued), trio.lowlevel.current_task())
        self._admissions.append(turn)
        self._wake_pacer.set()
        await _wait_for_release(turn)
        self._admitted += 1

    def statistics(self) -> PacerStatistics:
        return PacerStatistics(admitted=self._admitted)


async def _wait_for_release(turn: _Turn) -> None:
    """Park the current task until the pacer wakes `turn`; a cancelled wait empties the turn for the pacer to skip."""

    def abort(_: Any) -> trio.lowlevel.Abort:
        turn.task = None
        return trio.lowlevel.Abort.SUCCEEDED

    await trio.lowlevel.wait_task_rescheduled(abort)


def _wake(turn: _Turn) -> bool:
    """Wake the turn's writer; False when its wait was cancelled (nobody to wake)."""
    if turn.task is None:
        return False
    trio.lowlevel.reschedule(turn.task)
    return True
