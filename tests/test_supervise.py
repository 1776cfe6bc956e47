"""The supervisor on the autojump clock: exact backoff times, healthy reset, unauthorized, cancellation,
and the states an attempt reports itself: rate limited (startup does not wait for it) and degraded."""

from __future__ import annotations

import trio

from trio_ticker.model import Ingest, PriceUpdate, SourceState, SourceStatus
from trio_ticker.sources.supervise import FeedOutput, RetryPolicy, SourceUnauthorized, Supervisor

POLICY = RetryPolicy(initial=1.0, maximum=8.0, healthy_after=60.0, unauthorized_delay=300.0)


class MaxJitter:
    """Always the top of the jitter range, so delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


class ScriptedSource:
    """Attempt i stays live for lives[i] seconds (None: fails before going live), then raises `error`."""

    name = "scripted"
    symbols = ("X",)

    def __init__(self, lives: list[float | None], error: Exception | None = None, end_cleanly: bool = False) -> None:
        self.lives = lives
        self.error = error or ConnectionError("refused")
        self.end_cleanly = end_cleanly
        self.attempts: list[float] = []

    async def run_connection(
        self, feed: FeedOutput, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        index = len(self.attempts)
        self.attempts.append(trio.current_time())
        life = self.lives[min(index, len(self.lives) - 1)]
        if life is None:
            raise self.error
        task_status.started()
        await feed.publish(PriceUpdate("X", 1.0 + index, 1.0, index, mode="live", source=self.name))  # type: ignore[arg-type]
        await trio.sleep(life)
        if not self.end_cleanly:
            raise self.error


async def run_for(
    seconds: float, *sources: Supervisor, started_at: list[float] | None = None
) -> list[tuple[float, Ingest]]:
    """Run supervisors for `seconds` of virtual time; return every item they sent, with its time (and note in
    `started_at` when each reported started)."""
    received: list[tuple[float, Ingest]] = []
    send, receive = trio.open_memory_channel[Ingest](100)

    async def collect() -> None:
        async for item in receive:
            received.append((trio.current_time(), item))

    with trio.fail_after(seconds + 60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect)
            with trio.move_on_after(seconds):
                async with trio.open_nursery() as sources_nursery, send:
                    for supervisor in sources:
                        await sources_nursery.start(supervisor.run, send.clone())
                        if started_at is not None:
                            started_at.append(trio.current_time())
    return received


def states(received: list[tuple[float, Ingest]]) -> list[tuple[float, SourceState, int]]:
    return [(at, item.state, item.reconnects) for at, item in received if isinstance(item, SourceStatus)]


async def test_failures_back_off_exponentially_up_to_the_cap(autojump_clock: trio.abc.Clock) -> None:
    source = ScriptedSource([None])
    received = await run_for(40, Supervisor(source, stale_after=None, policy=POLICY, jitter=MaxJitter()))
    assert source.attempts == [0, 1, 3, 7, 15, 23, 31, 39]
    assert states(received)[:3] == [
        (0, SourceState.CONNECTING, 0),
        (0, SourceState.RECONNECTING, 1),
        (1, SourceState.RECONNECTING, 2),
    ]
    assert states(received)[-1][1] is SourceState.STOPPED
    detail = next(item.detail for _, item in received if isinstance(item, SourceStatus) and item.detail)
    assert detail == "ConnectionError: refused"


async def test_jitter_is_full_between_zero_and_the_ceiling(autojump_clock: trio.abc.Clock) -> None:
    class HalfJitter:
        def uniform(self, a: float, b: float) -> float:
            return (a + b) / 2

    source = ScriptedSource([None])
    await run_for(10, Supervisor(source, stale_after=None, policy=POLICY, jitter=HalfJitter()))
    assert source.attempts == [0, 0.5, 1.5, 3.5, 7.5]


async def test_a_healthy_period_resets_the_backoff(autojump_clock: trio.abc.Clock) -> None:
    source = ScriptedSource([None, None, 70.0, None])
    received = await run_for(80, Supervisor(source, stale_after=None, policy=POLICY, jitter=MaxJitter()))
    assert source.attempts == [0, 1, 3, 74, 76]
    assert (3, SourceState.LIVE, 2) in states(received)


async def test_a_planned_end_after_a_healthy_period_reconnects_at_once(autojump_clock: trio.abc.Clock) -> None:
    source = ScriptedSource([100.0, 5.0], end_cleanly=True)
    await run_for(120, Supervisor(source, stale_after=None, policy=POLICY, jitter=MaxJitter()))
    # The 100 s connection ends as planned: straight back; the 5 s one was too short: backoff.
    assert source.attempts == [0, 100, 106, 113]


async def test_unauthorized_retries_slowly(autojump_clock: trio.abc.Clock) -> None:
    source = ScriptedSource([None], error=SourceUnauthorized("HTTP 401"))
    received = await run_for(700, Supervisor(source, stale_after=None, policy=POLICY, jitter=MaxJitter()))
    assert source.attempts == [0, 300, 600]
    assert (300, SourceState.UNAUTHORIZED, 2) in states(received)


async def test_a_401_from_any_client_library_means_unauthorized(autojump_clock: trio.abc.Clock) -> None:
    class Rejected(Exception):
        status_code = 401

    source = ScriptedSource([None], error=Rejected("handshake rejected"))
    received = await run_for(1, Supervisor(source, stale_after=None, policy=POLICY, jitter=MaxJitter()))
    assert states(received)[1] == (0, SourceState.UNAUTHORIZED, 1)


async def test_cancellation_is_never_swallowed(autojump_clock: trio.abc.Clock) -> None:
    live_forever = ScriptedSource([1e9])
    backing_off = ScriptedSource([None])
    received = await run_for(
        5,
        Supervisor(live_forever, stale_after=None, policy=POLICY, jitter=MaxJitter()),
        Supervisor(backing_off, stale_after=None, policy=POLICY, jitter=MaxJitter()),
    )
    stopped = [(at, item.source) for at, item in received if isinstance(item, SourceStatus) and item.state == "stopped"]
    assert sorted(stopped) == [(5, "scripted"), (5, "scripted")]


async def test_a_failing_source_does_not_stop_another(autojump_clock: trio.abc.Clock) -> None:
    class Steady(ScriptedSource):
        name = "steady"

    steady = Steady([1e9])
    received = await run_for(
        50,
        Supervisor(ScriptedSource([None]), stale_after=None, policy=POLICY, jitter=MaxJitter()),
        Supervisor(steady, stale_after=None, policy=POLICY, jitter=MaxJitter()),
    )
    assert steady.attempts == [0]
    assert [item.state for _, item in received if isinstance(item, SourceStatus) and item.source == "steady"] == [
        "connecting",
        "live",
        "stopped",
    ]


class WaitsOutARateLimit:
    """Each attempt first waits out an upstream's hour-long pause, then goes live."""

    name = "limited"
    symbols = ("X",)

    async def run_connection(
        self, feed: FeedOutput, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with feed.waiting_out_rate_limit("HTTP 429: waiting 3600s"):
            await trio.sleep(3600)
        task_status.started()
        await trio.sleep_forever()


async def test_a_source_waiting_out_a_rate_limit_does_not_hold_up_startup(autojump_clock: trio.abc.Clock) -> None:
    started_at: list[float] = []
    supervisor = Supervisor(WaitsOutARateLimit(), stale_after=None, policy=POLICY, jitter=MaxJitter())
    received = await run_for(4000, supervisor, started_at=started_at)
    assert started_at == [0]
    assert states(received) == [
        (0, SourceState.CONNECTING, 0),
        (0, SourceState.RATE_LIMITED, 0),
        (3600, SourceState.CONNECTING, 0),  # the wait is over; the attempt goes on
        (3600, SourceState.LIVE, 0),
        (4000, SourceState.STOPPED, 0),
    ]
    rate_limited = [item for _, item in received if isinstance(item, SourceStatus) and item.state == "rate_limited"]
    assert rate_limited[0].detail == "HTTP 429: waiting 3600s"


class LacksAPrice:
    """Goes live with symbol Y unpriced, and gets Y's price 5 s later."""

    name = "partial"
    symbols = ("X", "Y")

    async def run_connection(
        self, feed: FeedOutput, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await feed.mark_unpriced("Y", "no data")
        task_status.started()
        await trio.sleep(5)
        await feed.mark_priced("Y")
        await trio.sleep_forever()


async def test_a_source_without_a_usable_price_is_degraded_not_live(autojump_clock: trio.abc.Clock) -> None:
    received = await run_for(10, Supervisor(LacksAPrice(), stale_after=None, policy=POLICY, jitter=MaxJitter()))
    shown = [(at, item.state, item.detail) for at, item in received if isinstance(item, SourceStatus)]
    assert shown == [
        (0, SourceState.CONNECTING, ""),
        (0, SourceState.DEGRADED, "no usable price for Y (no data)"),
        (5, SourceState.LIVE, ""),
        (10, SourceState.STOPPED, ""),
    ]
