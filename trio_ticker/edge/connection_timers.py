"""One task for the timers of every Hypercorn connection: its keep-alive timeout and its WebSocket pings.

Hypercorn 0.18 gives each connection a task for its keep-alive timer (started as the connection opens and
cancelled when the request arrives) and each WebSocket a task for its pings: two of a handshake's five tasks,
each spawned, stepped and cancelled while a reconnect storm waits. Here a timer is an entry in one heap, and
arming or disarming it takes no scheduler step; what falls due is started in the connection's own task group.
Hypercorn's connections belong to no nursery of ours, so the task serving the heap is a trio system task,
one per run (`connection_timers()`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable
from typing import Protocol

import trio
from trio.lowlevel import RunVar

log = logging.getLogger(__name__)


class Waitable(Protocol):
    """An event (trio's, or Hypercorn's `EventWrapper`)."""

    async def wait(self) -> None: ...

    def is_set(self) -> bool: ...


class Timer:
    """A pending call; `cancel()` before it is due and it never runs."""

    __slots__ = ("action", "early")

    def __init__(self, action: Callable[[], None] | None, early: set[Timer] | None = None) -> None:
        self.action = action
        self.early = early  # the timers that an event calls early, this one among them

    def cancel(self) -> None:
        self.action = None  # the heap drops the entry when it reaches it; nothing it referenced is kept
        if self.early is not None:
            self.early.discard(self)
            self.early = None

    def call(self) -> None:
        action = self.action
        self.cancel()
        if action is not None:
            try:
                action()
            except Exception:  # a bug there must not end every connection's timers (nor the run)
                log.exception("event=connection_timer_failed")


class ConnectionTimers:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()  # ties go in arming order (and Timers are never compared)
        self._wake = trio.Event()
        self._sleeping_until = math.inf
        self._early: dict[Waitable, set[Timer]] = {}  # per event: the timers it calls early (one task each)

    def call_at(self, deadline: float, action: Callable[[], None], *, or_when: Waitable | None = None) -> Timer:
        """Call `action()` (synchronous; it should not raise) at `deadline`, or once `or_when` is set if that
        comes first (at once if it is set already), unless the timer is cancelled before."""
        if or_when is not None and or_when.is_set():
            timer = Timer(action)
            timer.call()
            return timer
        early = None
        if or_when is not None:
            early = self._early.get(or_when)
            if early is None:
                early = self._early[or_when] = set()
                trio.lowlevel.spawn_system_task(self._call_when_set, or_when, early, name=f"{__name__}.early")
        timer = Timer(action, early)
        if early is not None:
            early.add(timer)
        heapq.heappush(self._heap, (deadline, next(self._order), timer))
        if deadline < self._sleeping_until:
            self._wake.set()
        return timer

    async def _call_when_set(self, event: Waitable, early: set[Timer]) -> None:
        try:
            await event.wait()
        finally:
            del self._early[event]
        for timer in list(early):
            timer.call()

    def pending(self) -> int:
        """Timers not yet due and not cancelled."""
        return sum(1 for _, _, timer in self._heap if timer.action is not None)

    async def run(self) -> None:
        heap = self._heap
        while True:
            now = trio.current_time()
            # Cancelled entries at the head go at once, whatever their deadline: the next sleep is a live one's.
            while heap and (heap[0][0] <= now or heap[0][2].action is None):
                heapq.heappop(heap)[2].call()
            self._wake = trio.Event()
            self._sleeping_until = heap[0][0] if heap else math.inf
            with trio.move_on_at(self._sleeping_until):
                await self._wake.wait()


_TIMERS: RunVar[ConnectionTimers] = RunVar("trio_ticker.connection_timers")


def connection_timers() -> ConnectionTimers:
    """This trio run's timers, started on first use."""
    try:
        return _TIMERS.get()
    except LookupError:
        timers = ConnectionTimers()
        trio.lowlevel.spawn_system_task(timers.run, name="trio_ticker.connection_timers")
        _TIMERS.set(timers)
        return timers
