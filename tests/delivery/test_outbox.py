"""One client's outbox on its own: the conflation rule, queueing in order, falling behind and catching
up, and the client's states (normal, behind, closing, closed). No hub, no session, no sockets."""

from __future__ import annotations

import trio
import trio.testing

from trio_ticker.delivery.outbox import ClientOutbox, ClientState, Entry, newest_per_key, status_key

STALE = status_key("AAPL", "stale")
SOURCE = status_key("", "source:demo")


def take(outbox: ClientOutbox) -> list[Entry]:
    taken: list[Entry] = []
    outbox.take_nowait(taken)
    return taken


class Watcher:
    """Records what the outbox reports: when it fell behind, and close requests."""

    def __init__(self) -> None:
        self.behind: list[tuple[int, float]] = []
        self.close_requests = 0

    def outbox(self, capacity: int, *symbols: str) -> ClientOutbox:
        outbox = ClientOutbox(
            7, capacity, on_behind=self.on_behind, on_close_request=self.on_close_request, peer="127.0.0.1:1"
        )
        for symbol in symbols:
            assert outbox.add_subscription(symbol)
        return outbox

    def on_behind(self, outbox: ClientOutbox, since: float) -> None:
        self.behind.append((outbox.client_id, since))

    def on_close_request(self) -> None:
        self.close_requests += 1


def test_the_conflation_rule_keeps_the_newest_per_key_where_it_stands_and_every_reply() -> None:
    entries: list[Entry] = [
        ("AAPL", "a1"),
        (None, "ack"),
        ("MSFT", "m1"),
        ("AAPL", "a2"),
        (STALE, "stale"),
        (None, "pong"),
        ("AAPL", "a3"),
    ]
    assert newest_per_key(entries) == [(None, "ack"), ("MSFT", "m1"), (STALE, "stale"), (None, "pong"), ("AAPL", "a3")]
    assert newest_per_key([]) == []


async def test_a_client_that_keeps_up_gets_every_frame_in_order() -> None:
    watcher = Watcher()
    outbox = watcher.outbox(4, "AAPL", "MSFT")
    assert [outbox.offer("AAPL", "a1"), outbox.offer("MSFT", "m1"), outbox.offer("AAPL", "a2")] == [0, 0, 0]
    await outbox.send_control("ack")
    assert outbox.pending_count() == 4
    assert take(outbox) == [("AAPL", "a1"), ("MSFT", "m1"), ("AAPL", "a2"), (None, "ack")]
    assert (outbox.state, outbox.behind_since, watcher.behind) == (ClientState.NORMAL, None, [])


async def test_overflow_collapses_the_queue_into_the_newest_per_key_and_replies_go_first(
    autojump_clock: trio.abc.Clock,
) -> None:
    watcher = Watcher()
    outbox = watcher.outbox(4, "AAPL", "MSFT")
    await trio.sleep(3)
    outbox.offer("AAPL", "a1")
    await outbox.send_control("ack")
    outbox.offer("MSFT", "m1")
    outbox.offer("AAPL", "a2")
    assert outbox.offer("AAPL", "a3") == 2  # the channel was full: a1 and a2 are superseded by a3
    assert (outbox.state, outbox.behind_since, watcher.behind) == (ClientState.BEHIND, 3.0, [(7, 3.0)])
    assert outbox.pending_count() == 3  # the reply in the channel, MSFT and AAPL kept aside
    assert outbox.offer("MSFT", "m2") == 1  # while behind each newer frame replaces its key's unsent one
    assert outbox.offer(SOURCE, "live") == 0
    assert take(outbox) == [(None, "ack"), ("AAPL", "a3"), ("MSFT", "m2"), (SOURCE, "live")]
    assert (outbox.state, outbox.behind_since) == (ClientState.NORMAL, None)
    assert outbox.offer("AAPL", "a4") == 0 and take(outbox) == [("AAPL", "a4")]  # queued in order again
    assert watcher.behind == [(7, 3.0)]


async def test_falling_behind_drops_queued_ticks_of_a_symbol_no_longer_subscribed() -> None:
    outbox = Watcher().outbox(2, "AAPL", "MSFT")
    outbox.offer("MSFT", "m1")
    outbox.offer(status_key("MSFT", "stale"), "stale")
    assert outbox.remove_subscription("MSFT") and not outbox.remove_subscription("MSFT")
    assert outbox.offer("AAPL", "a1") == 0  # the overflow: nothing of MSFT is kept, nothing counted
    assert take(outbox) == [("AAPL", "a1")]


async def test_discarding_the_last_pending_frames_catches_the_client_up() -> None:
    outbox = Watcher().outbox(1, "AAPL", "MSFT")
    outbox.offer("AAPL", "a1")
    outbox.offer(STALE, "stale")  # the overflow: both wait aside
    outbox.offer("MSFT", "m1")
    outbox.discard_pending(("MSFT",))
    assert (outbox.state, outbox.pending_count()) == (ClientState.BEHIND, 2)
    outbox.discard_pending(("AAPL",))  # the unsubscribe: its tick and its stale mark go
    assert (outbox.state, outbox.behind_since) == (ClientState.NORMAL, None)
    assert take(outbox) == []


async def test_a_close_request_stops_queueing_and_the_first_code_wins() -> None:
    watcher = Watcher()
    outbox = watcher.outbox(4, "AAPL")
    outbox.offer("AAPL", "a1")
    outbox.request_close(4008, "slow consumer")
    outbox.request_close(1001, "server shutting down")
    assert (outbox.state, outbox.close_code, outbox.close_reason) == (ClientState.CLOSING, 4008, "slow consumer")
    assert watcher.close_requests == 2  # the session's cancel is idempotent
    assert outbox.offer("AAPL", "a2") == 0
    assert await outbox.wait_entry() == ("AAPL", "a1")  # what was queued before can still be taken
    assert await outbox.wait_entry() is None


async def test_a_closed_outbox_drops_everything_and_takes_nothing() -> None:
    outbox = Watcher().outbox(1, "AAPL")
    outbox.offer("AAPL", "a1")
    outbox.offer("AAPL", "a2")  # behind: a2 waits aside, the channel is empty
    outbox.close()
    assert (outbox.state, dict(outbox.subscriptions)) == (ClientState.CLOSED, {})
    assert outbox.offer("AAPL", "a3") == 0
    assert outbox.pending_count() == 0 and take(outbox) == []
    outbox.request_close(1001, "server shutting down")  # too late to close anything: the state stays
    assert outbox.state is ClientState.CLOSED


async def test_an_idle_writer_waits_for_the_next_entry() -> None:
    outbox = Watcher().outbox(4, "AAPL")
    received: list[Entry | None] = []

    async def wait() -> None:
        received.append(await outbox.wait_entry())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        assert received == []
        outbox.offer("AAPL", "a1")
    assert received == [("AAPL", "a1")]
