"""One client's writer: it takes what the client's outbox holds and sends it, each frame at its turn
of the flush pacer, one frame per send (`write_single_frames`) or one batch per flush (`write_batches`).

`send` is the transport's; whatever it raises (the peer left) ends the writer and is the session's to
handle. A writer returns once its outbox is closed (a close was requested: the session is ending).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from .outbox import ClientOutbox, Entry, newest_per_key
from .pacing import FlushPacer

Send = Callable[[str], Awaitable[None]]


async def write_single_frames(
    outbox: ClientOutbox, send: Send, pacer: FlushPacer, count_conflated: Callable[[int], None]
) -> None:
    """Every tick in order while the client keeps up; once it lags, the newest per symbol (counted as conflated)."""
    # Each frame takes a turn at the flush pacer (due at once: no interval), so a saturated loop serves
    # the writers round-robin a few per scheduler pass, and what a writer sends is taken right after its
    # turn comes. Whatever is queued is taken at once into a local backlog (no receive checkpoint, which
    # under load costs a whole scheduler pass). While the backlog's oldest entry can be at most two flush
    # intervals old the client gets every tick in order; past that (a saturated server, a slow client)
    # ticks a newer backlog tick of the same symbol supersedes are skipped, so it gets current prices
    # rather than old ones (the seq gap says so).
    lag_limit = 2 * pacer.interval
    backlog: list[Entry] = []
    # A new client has nothing to send before its first reply: no turn until then (one wake-up less per
    # handshake, which a reconnect storm has thousands of).
    if not await _wait_for_update(outbox, pacer, backlog):
        return  # close requested: the session is being cancelled
    taken_at = oldest_possible = trio.current_time()  # nothing in the backlog arrived before this
    while True:
        await send(backlog.pop(0)[1])
        await pacer.wait_turn(None)
        now = trio.current_time()
        if not backlog:
            oldest_possible = taken_at  # whatever is queued now arrived since the previous take
        outbox.take_nowait(backlog)
        if not backlog:
            if not await _wait_for_update(outbox, pacer, backlog):
                return
            now = oldest_possible = trio.current_time()
        elif now - oldest_possible > lag_limit and len(backlog) > 1:
            queued = len(backlog)
            backlog = newest_per_key(backlog)
            count_conflated(queued - len(backlog))
            oldest_possible = taken_at
        taken_at = now


async def write_batches(outbox: ClientOutbox, send: Send, pacer: FlushPacer) -> None:
    """Everything queued as one JSON array frame, at most one per flush interval."""
    # Frames, not updates, cost server CPU: at most one frame per flush interval, so load makes
    # frames fuller rather than more. Waiting for the turn *before* taking what is queued costs one
    # wake-up per frame under load; an idle client's first update goes out at its next turn, which is
    # due at once (within a scheduler pass when nobody else is queued).
    # A client whose last update came after its interval had run out (a few ticks a second, say) and
    # has nothing queued after a flush waits for its next update first and then for its turn (due at
    # once by then): no wake-up at the end of an interval that brings nothing, one in four of its wake-ups.
    entries: list[Entry] = []
    if not await _wait_for_update(outbox, pacer, entries):  # a new client: no turn before its first reply
        return  # close requested: the session is being cancelled
    sparse = True  # its updates come further apart than its interval
    while True:
        flushed_at = trio.current_time()
        await send("[" + ",".join([frame for _, frame in entries]) + "]")
        entries = []
        if sparse:
            outbox.take_nowait(entries)
            if not entries:
                entry = await outbox.wait_entry()
                if entry is None:
                    return  # close requested: the session is being cancelled
                entries.append(entry)
                sparse = trio.current_time() > flushed_at + pacer.interval
        await pacer.wait_turn(flushed_at)
        outbox.take_nowait(entries)
        if not entries:
            if not await _wait_for_update(outbox, pacer, entries):
                return
            sparse = True


async def _wait_for_update(outbox: ClientOutbox, pacer: FlushPacer, backlog: list[Entry]) -> bool:
    """An idle writer: wait for the next entry, take a turn (a tick that wakes thousands of idle writers
    then costs a few per scheduler pass, not one pass with all of them), and take what is queued by then.
    False once the outbox is closed."""
    entry = await outbox.wait_entry()
    if entry is None:
        return False
    backlog.append(entry)
    await pacer.wait_turn(None)
    outbox.take_nowait(backlog)
    return True
