"""A sliding-window rate limiter on Trio's clock, shared by every caller of one upstream API.

aiolimiter and pyrate-limiter wait with asyncio, and `limits` reads the wall clock, so none of
them runs under Trio's (mock) clock; this keeps the exact log of recent grants instead.
"""

from __future__ import annotations

from collections import deque

import trio


class SlidingWindowLimiter:
    """At most `count` grants in any `period` seconds, for every (count, period) given.

    Waiters are served in arrival order (a lock), so one caller cannot starve another.
    """

    def __init__(self, *limits: tuple[int, float]) -> None:
        if not limits or any(count < 1 or period <= 0 for count, period in limits):
            raise ValueError("each limit needs a count >= 1 and a period > 0")
        self._limits = limits
        self._grants: deque[float] = deque()
        self._longest = max(period for _, period in limits)
        self._lock = trio.Lock()
        self._paused_until = -float("inf")
        self.waited = 0  # grants that had to wait, for statistics

    def _next_free_at(self, now: float) -> float:
        while self._grants and self._grants[0] <= now - self._longest:
            self._grants.popleft()
        free_at = max(now, self._paused_until)
        for count, period in self._limits:
            in_window = [grant for grant in self._grants if grant > now - period]
            if len(in_window) >= count:
                free_at = max(free_at, in_window[-count] + period)
        return free_at

    async def acquire(self) -> None:
        """Wait (in turn) until one more call fits every limit, and record it."""
        async with self._lock:
            while True:
                now = trio.current_time()
                free_at = self._next_free_at(now)
                if free_at <= now:
                    break
                self.waited += 1
                await trio.sleep_until(free_at)
            self._grants.append(trio.current_time())

    def pause_until(self, deadline: float) -> None:
        """Block every caller until `deadline` (an upstream said `Retry-After`)."""
        self._paused_until = max(self._paused_until, deadline)

    def paused_for(self) -> float:
        """Seconds left of the upstream's pause (0 when there is none)."""
        return max(0.0, self._paused_until - trio.current_time())
