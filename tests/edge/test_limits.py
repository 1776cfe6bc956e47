"""The inbound guard, sans I/O: token bucket arithmetic at exact times, streaks, sizes, subscriptions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_ticker.edge.limits import CloseConnection, InboundGuard, LimitCounters, SessionLimits, TokenBucket
from trio_ticker.protocol.errors import CloseCode, ErrorCode, ProtocolError

LIMITS = SessionLimits(
    max_message_size=100,
    burst=3,
    per_second=2.0,
    max_rejections=4,
    max_subscriptions=3,
    max_symbols_per_message=10,
)


def test_a_bucket_gives_its_burst_then_one_token_per_interval() -> None:
    bucket = TokenBucket(3, 2.0, now=10.0)
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(10.49) is False  # 0.98 of a token
    assert bucket.take(10.5) is True
    assert bucket.take(10.5) is False
    assert bucket.is_full(12.0) is True  # 3 tokens back after 1.5 s
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # never more than the burst


@given(
    st.integers(min_value=1, max_value=50),
    st.floats(min_value=0.1, max_value=100),
    st.lists(st.floats(min_value=0, max_value=10), min_size=1, max_size=200),
)
def test_a_bucket_never_admits_more_than_burst_plus_rate_times_elapsed(
    burst: int, per_second: float, gaps: list[float]
) -> None:
    bucket = TokenBucket(burst, per_second, now=0.0)
    now, admitted = 0.0, 0
    for gap in gaps:
        now += gap
        admitted += bucket.take(now)
    assert admitted <= burst + per_second * now + 1e-6


def test_the_guard_refuses_over_the_rate_then_closes_on_a_sustained_streak() -> None:
    counters = LimitCounters()
    guard = InboundGuard(LIMITS, counters, now=0.0)
    for _ in range(3):
        guard.admit("{}", 0.0)
    for _ in range(3):
        with pytest.raises(ProtocolError) as refused:
            guard.admit("{}", 0.0)
        assert refused.value.code is ErrorCode.RATE_LIMITED
    with pytest.raises(CloseConnection) as closed:
        guard.admit("{}", 0.0)
    assert (closed.value.code, closed.value.reason) == (CloseCode.POLICY_VIOLATION, "rate limit exceeded")
    assert counters.rate_limited == 4
    assert counters.closed == {"rate_limit": 1}


def test_a_streak_is_forgiven_once_the_bucket_has_refilled() -> None:
    guard = InboundGuard(LIMITS, LimitCounters(), now=0.0)
    for _ in range(3):
        guard.admit("{}", 0.0)
    for _ in range(2):
        with pytest.raises(ProtocolError):
            guard.admit("{}", 0.0)
    guard.admit("{}", 1.0)  # two tokens back, not a full bucket: the streak stands
    guard.admit("{}", 1.0)
    with pytest.raises(ProtocolError):
        guard.admit("{}", 1.0)
    assert guard.rejections == 3  # one refusal away from the close
    guard.admit("{}", 2.5)  # full again (3 tokens after 1.5 s): forgiven
    assert guard.rejections == 0


def test_frame_size_counts_characters_of_text_and_bytes_of_binary() -> None:
    guard = InboundGuard(LIMITS, LimitCounters(), now=0.0)
    guard.admit("é" * 100, 0.0)  # 100 characters (200 UTF-8 bytes), as Hypercorn counts them
    for frame in ("x" * 101, b"x" * 101):
        with pytest.raises(CloseConnection) as closed:
            guard.admit(frame, 0.0)
        assert (closed.value.code, closed.value.reason) == (CloseCode.MESSAGE_TOO_BIG, "message too big")


def test_subscriptions_past_the_limit_are_refused_all_or_nothing() -> None:
    counters = LimitCounters()
    guard = InboundGuard(LIMITS, counters, now=0.0)
    held = dict.fromkeys(["AAPL", "MSFT"])
    guard.check_subscriptions(held, ("AAPL", "MSFT", "GOOGL"), request_id=None)  # one new: 3 in all
    with pytest.raises(ProtocolError) as refused:
        guard.check_subscriptions(held, ("GOOGL", "AMZN"), request_id=9)
    assert (refused.value.code, refused.value.request_id, refused.value.details) == (
        ErrorCode.TOO_MANY_SUBSCRIPTIONS,
        9,
        {"limit": 3},
    )
    assert counters.too_many_subscriptions == 1
