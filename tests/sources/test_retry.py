"""The retry policy and one loop's backoff: full jitter under a doubling, capped ceiling; reset when healthy."""

from __future__ import annotations

from trio_ticker.sources.retry import Backoff, RetryPolicy


class Ceiling:
    """Jitter that always draws the top of the range, so a delay shows its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_the_ceiling_doubles_per_failure_up_to_the_maximum() -> None:
    policy = RetryPolicy(initial=0.5, maximum=3.0)
    assert [policy.delay(failures, Ceiling()) for failures in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_backoff_counts_failures_until_reset() -> None:
    backoff = Backoff(RetryPolicy(initial=1.0, maximum=60.0), Ceiling())
    for _ in range(3):
        backoff.failed()
    assert (backoff.failures, backoff.delay()) == (3, 4.0)
    backoff.reset()
    backoff.failed()
    assert (backoff.failures, backoff.delay()) == (1, 1.0)


def test_each_delay_is_a_fresh_draw_within_the_ceiling() -> None:
    backoff = Backoff(RetryPolicy(initial=8.0, maximum=8.0))
    backoff.failed()
    draws = {backoff.delay() for _ in range(50)}
    assert len(draws) > 1 and all(0.0 <= draw <= 8.0 for draw in draws)


def test_an_attempt_that_lived_healthy_after_starts_the_count_over() -> None:
    backoff = Backoff(RetryPolicy(initial=1.0, maximum=60.0, healthy_after=30.0), Ceiling())
    backoff.failed()
    backoff.failed()
    assert not backoff.ended_after(29.9) and backoff.failures == 2
    assert backoff.ended_after(30.0) and backoff.failures == 0
