"""Each symbol's latest tick, as the hub publishes it: the tick, its frames, and the seq the next one gets.

Each frame is encoded once per tick (the prototypes' only when asked for); a tick not newer than the latest is
refused. The book names its numbering with an epoch and keeps the recovery history a reconnecting client replays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import trio

from ..model import StaleChange, Tick
from ..protocol import prototype as prototype_dialect
from ..protocol.frames import encode_tick, snapshot_frame
from .recovery import RecoveryHistory, RecoveryLimits


class TickBook:
    def __init__(
        self,
        symbols: Iterable[str],
        *,
        epoch: str,
        recovery: RecoveryLimits,
        first_seq: Callable[[str], int],
    ) -> None:
        """`first_seq(symbol)` is the seq a symbol's first tick gets; `recovery` bounds the replay history."""
        self.epoch = epoch
        self.encodes = 0  # frames encoded: one per tick and dialect in use, and one per stale change
        self._first_seq = first_seq
        self._recovery = RecoveryHistory(tuple(symbols), recovery)
        self._recording = recovery.max_ticks > 0
        self._latest: dict[str, Tick] = {}
        self._latest_frames: dict[str, str] = {}
        self._previous_prices: dict[str, float] = {}  # the price of the tick before the latest: the prototypes' change
        self._prototype_frames: dict[str, tuple[Tick, str]] = {}  # encoded when first wanted, for that tick

    def next_seq(self, symbol: str) -> int:
        """The seq the symbol's next update gets: its latest's + 1, or its first seq."""
        previous = self._latest.get(symbol)
        return previous.seq + 1 if previous else self._first_seq(symbol)

    def store(self, tick: Tick) -> str | None:
        """Keep `tick` as its symbol's latest and return its frame, once encoded and recorded for recovery.

        None for a tick not newer than the symbol's latest (a replay after a Redis reconnect), so a client
        never sees a symbol's seq go backwards."""
        previous = self._latest.get(tick.symbol)
        if previous is not None and tick.seq <= previous.seq:
            return None
        frame = encode_tick(tick)
        self.encodes += 1
        self._latest[tick.symbol] = tick
        self._latest_frames[tick.symbol] = frame
        self._previous_prices[tick.symbol] = tick.price if previous is None else previous.price
        if self._recording:
            self._recovery.record(tick.symbol, tick.seq, frame, trio.current_time())
        return frame

    def remember(self, tick: Tick, age: float) -> None:
        """Record a tick published `age` seconds ago in the recovery history only (a past tick this hub never
        served): it is not the latest and no client gets it live. One not newer than what is recorded is ignored."""
        if self._recording:
            self._recovery.record(tick.symbol, tick.seq, encode_tick(tick), trio.current_time() - max(0.0, age))
            self.encodes += 1

    def mark_stale(self, change: StaleChange) -> Tick | None:
        """The symbol's latest tick marked as `change` says, or None when it has none or already was."""
        tick = self._latest.get(change.symbol)
        if tick is None or tick.stale == change.stale:
            return None
        tick = dataclasses.replace(tick, stale=change.stale)
        self._latest[change.symbol] = tick
        self._latest_frames[change.symbol] = encode_tick(tick)
        self.encodes += 1
        return tick

    def prototype_frame(self, tick: Tick) -> str:
        """The prototypes' frame of the symbol's latest tick `tick`, encoded once."""
        cached = self._prototype_frames.get(tick.symbol)
        if cached is not None and cached[0] is tick:
            return cached[1]
        frame = prototype_dialect.encode_price(tick, self._previous_prices[tick.symbol])
        self.encodes += 1
        self._prototype_frames[tick.symbol] = (tick, frame)
        return frame

    def snapshot(self, symbol: str, *, recovered: bool | None = None) -> str | None:
        """The snapshot frame of the symbol's latest tick in this epoch (`recovered` as `snapshot_frame` takes
        it), or None before its first tick."""
        frame = self._latest_frames.get(symbol)
        return None if frame is None else snapshot_frame(frame, self.epoch, recovered=recovered)

    def replay_frames(self, symbol: str, since: int, epoch: str | None) -> list[str] | None:
        """The frames after seq `since` of `epoch`, when the recovery history still has them all, or None."""
        if epoch != self.epoch:
            return None  # another numbering: its seqs say nothing about this one's
        latest = self._latest.get(symbol)
        if latest is None:
            return None
        return self._recovery.frames_after(symbol, since, latest.seq, trio.current_time())

    def set_epoch(self, epoch: str) -> None:
        """The numbering restarted (scale-out: Redis came back empty): nothing kept can be replayed into it."""
        if epoch != self.epoch:
            self.epoch = epoch
            self._recovery.clear()

    def forget(self, symbol: str) -> None:
        """`symbol` no longer streams: its next tick starts afresh."""
        for cache in (self._latest, self._latest_frames, self._previous_prices, self._prototype_frames):
            cache.pop(symbol, None)
        self._recovery.forget(symbol)

    def latest(self, symbol: str) -> Tick | None:
        return self._latest.get(symbol)

    def all_latest(self) -> dict[str, Tick]:
        return dict(self._latest)

    def symbols_with_data(self) -> int:
        return len(self._latest)
