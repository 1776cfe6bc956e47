"""The slow-client reaper: one task that evicts every client behind for longer than the timeout.

An outbox that overflows tells the reaper (`watch`) when it fell behind. The timeout is the same
for every client, so deadlines come in the order clients fell behind: they are kept in one
insertion-ordered dict (at most one entry per client, moved to the end when it falls behind
again), and the task sleeps until the first. At a deadline a client that is still behind has been
behind since exactly then (falling behind again would have replaced its entry), so it is evicted;
one that caught up is dropped. One task for all clients, not a timer task per client: an idle
connection then holds no task and no events for it.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from .outbox import ClientOutbox, ClientState


class SlowClientReaper:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._deadlines: dict[ClientOutbox, float] = {}
        self._deadline_added = trio.Event()

    def watch(self, outbox: ClientOutbox, behind_since: float) -> None:
        """`outbox` fell behind at `behind_since`: evict it `timeout` later unless it has caught up by then."""
        self._deadlines.pop(outbox, None)  # re-inserted at the end: deadlines stay in order
        self._deadlines[outbox] = behind_since + self.timeout
        self._deadline_added.set()

    def forget(self, outbox: ClientOutbox) -> None:
        """A client that left: nothing to evict."""
        self._deadlines.pop(outbox, None)

    def watched(self) -> int:
        return len(self._deadlines)

    async def run(
        self,
        evict: Callable[[ClientOutbox], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Call `evict` for each client still behind at its deadline, until cancelled; sleeps while none is behind."""
        task_status.started()
        deadlines = self._deadlines
        while True:
            if not deadlines:
                self._deadline_added = trio.Event()
                await self._deadline_added.wait()
                continue
            outbox, deadline = next(iter(deadlines.items()))
            if deadline > trio.current_time():
                await trio.sleep_until(deadline)  # a deadline added meanwhile is later: it can wait
                continue
            del deadlines[outbox]
            if outbox.state is ClientState.BEHIND:
                evict(outbox)
