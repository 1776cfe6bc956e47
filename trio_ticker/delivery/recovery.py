"""The recovery history: each symbol's last published tick frames, bounded in count and in age.

The hub records every tick it publishes (the full protocol's frame, encoded once anyway); a subscribe that
says which seq it saw last gets the frames after it, in order, when they are all still here (`frames_after`),
or None, and then the snapshot. docs/protocol.md ("Recovery") is the contract.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecoveryLimits:
    max_ticks: int  # per symbol (TICKER_RECOVERY_TICKS); 0 keeps none: recovery is off
    window: float  # seconds (TICKER_RECOVERY_WINDOW): an older tick is no longer replayed


class RecoveryHistory:
    def __init__(self, symbols: tuple[str, ...], limits: RecoveryLimits) -> None:
        self.limits = limits
        # Per symbol: (trio time recorded, seq, frame), oldest first, seqs increasing.
        self._ticks: dict[str, deque[tuple[float, int, str]]] = {
            symbol: deque(maxlen=limits.max_ticks or 1) for symbol in symbols
        }

    def record(self, symbol: str, seq: int, frame: str, now: float) -> None:
        """Keep a tick's frame, recorded at trio time `now`; a seq not above the last one kept is ignored (the
        same tick twice: a past tick read from a store, then the snapshot of it)."""
        ticks = self._ticks.get(symbol)
        if ticks is None:  # a symbol streamed on demand: kept while it streams
            ticks = self._ticks[symbol] = deque(maxlen=self.limits.max_ticks or 1)
        elif ticks and seq <= ticks[-1][1]:
            return
        ticks.append((now, seq, frame))

    def forget(self, symbol: str) -> None:
        """`symbol` no longer streams: its ticks go (a later stream of it is replayed from its own ticks only)."""
        self._ticks.pop(symbol, None)

    def clear(self) -> None:
        """Forget everything (the numbering restarted: no seq kept is comparable with a new one)."""
        for ticks in self._ticks.values():
            ticks.clear()

    def frames_after(self, symbol: str, since: int, latest_seq: int, now: float) -> list[str] | None:
        """The frames of seqs `since + 1 .. latest_seq`, in order; [] when `since` is the latest seq.

        None when they cannot all be given: `since` is in the future, or a seq after it is no longer kept
        (too many ticks since, older than the window, or never seen here: a scale-out follower that skipped)."""
        if not self.limits.max_ticks or since > latest_seq:
            return None
        if since == latest_seq:
            return []
        ticks = self._ticks.get(symbol)
        if ticks is None:
            return None
        cutoff = now - self.limits.window
        while ticks and ticks[0][0] < cutoff:
            ticks.popleft()
        missed = latest_seq - since
        if len(ticks) < missed:
            return None
        kept = list(ticks)[-missed:]
        # Seqs grow by one per tick; a hole (a follower that skipped ahead) means a missed tick is not here.
        if kept[0][1] != since + 1 or kept[-1][1] != latest_seq:
            return None
        return [frame for _, _, frame in kept]
