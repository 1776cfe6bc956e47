"""The slow-client reaper, with outboxes and no sessions, on the autojump clock: one task evicts each
client exactly the timeout after it fell behind, unless it caught up (even before the reaper ran)."""

from __future__ import annotations

import trio
import trio.testing

from trio_ticker.delivery.outbox import ClientOutbox
from trio_ticker.delivery.slow_clients import SlowClientReaper

TIMEOUT = 5.0


class Reaped:
    """A reaper whose evictions are recorded (client id, time) and close the outbox like the hub's do."""

    def __init__(self) -> None:
        self.evictions: list[tuple[int, float]] = []
        self.reaper = SlowClientReaper(TIMEOUT)

    def evict(self, outbox: ClientOutbox) -> None:
        self.evictions.append((outbox.client_id, trio.current_time()))
        outbox.request_close(4008, "slow consumer")

    def outbox(self, client_id: int) -> ClientOutbox:
        return ClientOutbox(client_id, capacity=1, on_behind=self.reaper.watch)


def fall_behind(outbox: ClientOutbox) -> None:
    outbox.offer("AAPL", "tick")
    outbox.offer("AAPL", "tick")  # the channel (capacity 1) is full: behind
    assert outbox.behind_since is not None


def catch_up(outbox: ClientOutbox) -> None:
    """What a writer does: take what the channel holds, then the conflated rest."""
    taken: list[tuple[str | None, str]] = []
    outbox.take_nowait(taken)
    assert taken
    assert outbox.behind_since is None


async def test_a_client_that_caught_up_before_the_reaper_ran_is_kept_until_it_falls_behind_again(
    autojump_clock: trio.abc.Clock,
) -> None:
    reaped = Reaped()
    outbox = reaped.outbox(1)
    async with trio.open_nursery() as nursery:
        await nursery.start(reaped.reaper.run, reaped.evict)
        fall_behind(outbox)
        catch_up(outbox)  # before the reaper had a chance to run
        await trio.sleep(3 * TIMEOUT)
        assert reaped.evictions == []
        assert reaped.reaper.watched() == 0  # the caught-up client's deadline was dropped
        start = trio.current_time()
        fall_behind(outbox)  # and this time for good
        await trio.sleep(3 * TIMEOUT)
        assert reaped.evictions == [(1, start + TIMEOUT)]
        nursery.cancel_scope.cancel()


async def test_each_client_is_evicted_at_its_own_deadline_counted_from_its_latest_fall(
    autojump_clock: trio.abc.Clock,
) -> None:
    reaped = Reaped()
    first, second, third, leaving = (reaped.outbox(client_id) for client_id in (1, 2, 3, 4))
    async with trio.open_nursery() as nursery:
        await nursery.start(reaped.reaper.run, reaped.evict)
        start = trio.current_time()
        fall_behind(first)
        fall_behind(leaving)
        await trio.sleep(1)
        fall_behind(second)
        await trio.sleep(1)
        fall_behind(third)
        catch_up(first)  # it falls behind again later: its deadline moves behind the others'
        reaped.reaper.forget(leaving)  # a client that disconnected
        await trio.sleep(1)
        fall_behind(first)
        await trio.sleep(3 * TIMEOUT)
        assert reaped.evictions == [(2, start + 1 + TIMEOUT), (3, start + 2 + TIMEOUT), (1, start + 3 + TIMEOUT)]
        assert reaped.reaper.watched() == 0
        nursery.cancel_scope.cancel()


async def test_a_client_already_closing_is_not_evicted_again(autojump_clock: trio.abc.Clock) -> None:
    reaped = Reaped()
    outbox = reaped.outbox(1)
    async with trio.open_nursery() as nursery:
        await nursery.start(reaped.reaper.run, reaped.evict)
        fall_behind(outbox)
        outbox.request_close(1001, "server shutting down")  # e.g. a shutdown reached it first
        await trio.sleep(3 * TIMEOUT)
        assert reaped.evictions == []
        assert outbox.close_code == 1001
        nursery.cancel_scope.cancel()
