"""Per-connection inbound limits: frame size, a token-bucket message rate, subscription counts.

`InboundGuard` is sans-I/O and O(1) per client frame (a few float operations, no allocation);
the session asks it about each frame and acts on its answer. docs/protocol.md lists the errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..protocol.errors import CloseCode, ErrorCode, ProtocolError, RequestId
from ..settings import Settings


class CloseConnection(Exception):
    """The client broke a limit that ends the connection with `code`."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SessionLimits:
    max_message_size: int
    burst: int
    per_second: float
    max_rejections: int
    max_subscriptions: int
    max_symbols_per_message: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionLimits:
        return cls(
            max_message_size=settings.ws_max_message_size,
            burst=settings.rate_limit_burst,
            per_second=settings.rate_limit_per_second,
            max_rejections=settings.rate_limit_max_rejections,
            max_subscriptions=settings.max_subscriptions_per_client,
            max_symbols_per_message=settings.max_symbols_per_message,
        )


def welcome_limits(limits: SessionLimits, settings: Settings) -> dict[str, int | float]:
    """The limits the `welcome` frame tells a full-protocol client (docs/protocol.md, "welcome")."""
    return {
        "max_message_size": limits.max_message_size,
        "max_subscriptions": limits.max_subscriptions,
        "max_symbols_per_message": limits.max_symbols_per_message,
        "messages_per_second": limits.per_second,
        "burst": limits.burst,
        "recovery_ticks": settings.recovery_ticks,
        "recovery_window": settings.recovery_window,
    }


@dataclass(slots=True)
class LimitCounters:
    """Process-wide rejection counts, read by `/metrics` at scrape time."""

    rate_limited: int = 0
    too_many_subscriptions: int = 0
    closed: dict[str, int] = field(default_factory=dict)  # reason -> connections closed by a limit
    handshakes_refused: dict[str, int] = field(default_factory=dict)  # reason -> handshakes refused

    def count_close(self, reason: str) -> None:
        self.closed[reason] = self.closed.get(reason, 0) + 1

    def count_refusal(self, reason: str) -> None:
        self.handshakes_refused[reason] = self.handshakes_refused.get(reason, 0) + 1


class TokenBucket:
    """`capacity` tokens, refilled continuously at `per_second`; one token per message."""

    __slots__ = ("_capacity", "_per_second", "_tokens", "_updated")

    def __init__(self, capacity: int, per_second: float, now: float) -> None:
        self._capacity = float(capacity)
        self._per_second = per_second
        self._tokens = float(capacity)
        self._updated = now

    def take(self, now: float) -> bool:
        """Spend a token if there is one; False means the message is over the rate."""
        tokens = min(self._capacity, self._tokens + (now - self._updated) * self._per_second)
        self._updated = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False

    def is_full(self, now: float) -> bool:
        return self._tokens + (now - self._updated) * self._per_second >= self._capacity


class InboundGuard:
    """One client's limits. `admit` raises `ProtocolError` (answer, keep going) or `CloseConnection`."""

    __slots__ = ("_bucket", "_counters", "_limits", "rejections")

    def __init__(self, limits: SessionLimits, counters: LimitCounters, now: float) -> None:
        self._limits = limits
        self._counters = counters
        self._bucket = TokenBucket(limits.burst, limits.per_second, now)
        self.rejections = 0  # rate-limited frames since the bucket was last full

    def admit(self, frame: str | bytes, now: float) -> None:
        """Check one inbound frame before it is decoded."""
        # Characters for text, bytes for binary: the unit Hypercorn's own limit counts.
        if len(frame) > self._limits.max_message_size:
            self._counters.count_close("message_too_big")
            raise CloseConnection(CloseCode.MESSAGE_TOO_BIG, "message too big")
        if self.rejections and self._bucket.is_full(now):
            self.rejections = 0  # the client paused long enough: its streak is forgiven
        if self._bucket.take(now):
            return
        self.rejections += 1
        self._counters.rate_limited += 1
        if self.rejections >= self._limits.max_rejections:
            self._counters.count_close("rate_limit")
            raise CloseConnection(CloseCode.POLICY_VIOLATION, "rate limit exceeded")
        raise ProtocolError(
            ErrorCode.RATE_LIMITED,
            f"more than {self._limits.per_second:g} messages per second (burst {self._limits.burst}); "
            "this message was ignored",
        )

    def check_subscriptions(self, current: Mapping[str, None], wanted: tuple[str, ...], request_id: RequestId) -> None:
        """Refuse a subscribe that would take the client past its subscription limit (all or nothing)."""
        limit = self._limits.max_subscriptions
        if len(current) + len(wanted) <= limit:
            return  # common case, no counting needed
        added = sum(1 for symbol in wanted if symbol not in current)
        if len(current) + added > limit:
            self._counters.too_many_subscriptions += 1
            raise ProtocolError(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"at most {limit} subscriptions per connection",
                request_id=request_id,
                limit=limit,
            )

    @property
    def max_symbols_per_message(self) -> int:
        return self._limits.max_symbols_per_message
