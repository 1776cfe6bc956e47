"""The one retry policy: capped, fully jittered exponential backoff, for the sources and for scale-out.

`RetryPolicy` is the numbers (from Settings); `Backoff` counts one retry loop's consecutive failures
and draws the delay before its next attempt. The source supervisor, the scale-out leader and
follower, and the `--workers` supervisor all retry through it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol


class Jitter(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial: float = 1.0
    maximum: float = 60.0
    healthy_after: float = 60.0  # a connection that lived this long resets the backoff
    unauthorized_delay: float = 300.0

    def delay(self, failures: int, jitter: Jitter) -> float:
        """Full jitter: uniform in [0, min(maximum, initial * 2**(failures-1))]."""
        ceiling = min(self.maximum, self.initial * 2.0 ** min(failures - 1, 64))
        return jitter.uniform(0.0, ceiling)


class Backoff:
    """One retry loop's consecutive failures, and the full-jitter delay they call for."""

    def __init__(self, policy: RetryPolicy, jitter: Jitter | None = None) -> None:
        self.policy = policy
        self._jitter = jitter or random.Random()
        self.failures = 0

    def failed(self) -> None:
        self.failures += 1

    def reset(self) -> None:
        """The connection proved healthy: the next failure waits the shortest delay again."""
        self.failures = 0

    def ended_after(self, seconds: float) -> bool:
        """An attempt ended after `seconds`: True, and the count starts over, when it lived `healthy_after`."""
        healthy = seconds >= self.policy.healthy_after
        if healthy:
            self.reset()
        return healthy

    def delay(self) -> float:
        """How long to wait before the next attempt (a fresh draw each call)."""
        return self.policy.delay(self.failures, self._jitter)
