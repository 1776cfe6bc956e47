"""Upstream messages a source refuses: the kinds, the decoders' typed error, and the per-source count.

The sans-I/O decoders raise `UpstreamDecodeError` with a `RejectKind`; the feed hands it to the
source's `RejectedMessages`, which logs the first of each kind and counts them all (/metrics).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

SAMPLE_LENGTH = 120  # characters of a refused frame shown in its one log line


class RejectKind(enum.StrEnum):
    MALFORMED = "malformed"  # not JSON, not an object, a field missing or of the wrong type
    # A price or a 24 h statistic (open, high, low, volume) that is not an ASCII decimal string (Binance)
    # or not a JSON number (Finnhub); or a number outside [MIN_PRICE, MAX_PRICE) (a volume: [0, MAX_VOLUME)).
    INVALID_PRICE = "invalid_price"
    PRICE_OUT_OF_RANGE = "price_out_of_range"
    UNKNOWN_SYMBOL = "unknown_symbol"  # a symbol this source was not asked for
    INVALID_SYMBOL = "invalid_symbol"  # a catalogue entry whose symbol is not spelled as symbols are
    TOO_MANY = "too_many"  # catalogue entries past TICKER_CATALOGUE_MAX_LISTINGS


class UpstreamDecodeError(ValueError):
    """A frame or body that is not what the upstream documents; `kind` says how."""

    def __init__(self, message: str, kind: RejectKind = RejectKind.MALFORMED) -> None:
        super().__init__(message)
        self.kind = kind


class RejectedMessages:
    """How many upstream messages (or items in one) one source refused, by kind.

    Only the first of each kind is logged, so an upstream that sends garbage at full rate costs one
    log line, not one per message.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._counts: dict[RejectKind, int] = {}

    def note(self, kind: RejectKind, reason: str, sample: str | bytes) -> None:
        seen = self._counts.get(kind, 0)
        self._counts[kind] = seen + 1
        if not seen:
            log.warning(
                "event=upstream_rejected source=%s kind=%s error=%r sample=%r further=counted_only",
                self.source,
                kind.value,
                reason,
                sample[:SAMPLE_LENGTH],
            )

    def counts(self) -> dict[str, int]:
        return {kind.value: count for kind, count in self._counts.items()}


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused item inside a message the decoder otherwise accepted (e.g. one trade of a batch)."""

    kind: RejectKind
    reason: str
