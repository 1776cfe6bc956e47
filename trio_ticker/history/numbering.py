"""The persisted numbering of a single-process server: its epoch, and per symbol the seqs it may give.

Seqs are reserved ahead in blocks and the reservation is stored before a seq in it is used, so a restart,
even after a crash between a publish and any write, starts above every seq any client saw, in the same
epoch. A clean stop stores the last seq given instead, so the next start continues with no jump.
docs/architecture.md ("Epoch and seq across restarts") has the reasoning.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

import trio

from .store import CandleStoreUnavailable

log = logging.getLogger(__name__)

SEQ_BLOCK = 1000
"""Seqs reserved per symbol per write; a new block is asked for when half of one is left."""
RETRY_DELAY = 1.0
SAVE_AT_STOP_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class StoredNumbering:
    epoch: str
    ceilings: Mapping[str, int]  # per symbol: no seq above this was given (reserved, or the last at a clean stop)


class NumberingStore(Protocol):
    async def load(self) -> StoredNumbering | None:
        """What was stored, or None for a store that never held a numbering."""

    async def save(self, numbering: StoredNumbering) -> None:
        """Replace what is stored, atomically."""


OpenNumberingStore = Callable[[], AbstractAsyncContextManager[NumberingStore]]


class PersistedNumbering:
    """The hub's `first_seq` and `may_number` for a server whose numbering survives restarts.

    `run` loads (or creates) the epoch and reserves each symbol's first block before it reports started; then
    it stores a new block whenever a symbol has used half of its own. A seq beyond what is stored is refused
    (the hub drops that update, counted) rather than given unrecorded: a crash could then reuse it."""

    def __init__(self, open_store: OpenNumberingStore, symbols: tuple[str, ...], *, block: int = SEQ_BLOCK) -> None:
        self._open_store = open_store
        self._symbols = dict.fromkeys(symbols)  # the configured ones, then each symbol streamed on demand
        self._block = block
        self.epoch = ""
        self._starts: dict[str, int] = {}  # per symbol (every one stored, and the configured): the ceiling at load
        self._reserved: dict[str, int] = {}  # per symbol: the highest seq stored as reserved
        self._last: dict[str, int] = {}  # per symbol: the last seq the hub gave
        self._wanted = trio.Event()
        self._persisted = False
        self.refused = 0

    def stored_epoch(self) -> str | None:
        """The epoch once it is stored, so that the next start continues it; None for a fresh one never stored."""
        return self.epoch if self._persisted else None

    def first_seq(self, symbol: str) -> int:
        return self._used(symbol) + 1

    def may_number(self, symbol: str, seq: int) -> bool:
        if not self._persisted:
            return True  # a fresh epoch nothing was stored for: no restart can reuse its seqs
        reserved = self._reserved.get(symbol, 0)
        if seq > reserved:
            if symbol not in self._reserved:  # streamed on demand: its first block is being stored, the update waits
                self._symbols[symbol] = None
            else:
                self.refused += 1
                if self.refused == 1:
                    log.warning("event=seq_not_reserved symbol=%s seq=%d further=counted_only", symbol, seq)
            self._wanted.set()
            return False
        self._last[symbol] = seq
        if reserved - seq < self._block // 2:
            self._wanted.set()
        return True

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Started (with the epoch) once the first blocks are stored. A store that cannot be read or written at
        start gets a fresh epoch that is not stored: clients see a restart, never a seq given twice."""
        try:
            async with self._open_store() as store:
                stored = await store.load()
                self.epoch = stored.epoch if stored is not None else secrets.token_hex(8)
                ceilings = dict(stored.ceilings) if stored is not None else {}
                self._starts = dict.fromkeys(self._symbols, 0) | ceilings
                await self._reserve(store)
                self._persisted = True
                log.info("event=numbering_loaded epoch=%s continued=%s", self.epoch, stored is not None)
                task_status.started(self.epoch)
                try:
                    await self._keep_reserving(store)
                finally:
                    await self._save_last(store)
        except CandleStoreUnavailable as error:
            if self._persisted:
                raise
            self.epoch = secrets.token_hex(8)
            self._starts = {}
            log.warning("event=numbering_unavailable error=%s epoch=%s", error, self.epoch)
            task_status.started(self.epoch)

    async def _keep_reserving(self, store: NumberingStore) -> None:
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            try:
                await self._reserve(store)
            except CandleStoreUnavailable as error:
                log.warning("event=numbering_not_reserved error=%s", error)
                await trio.sleep(RETRY_DELAY)
                self._wanted.set()

    async def _reserve(self, store: NumberingStore) -> None:
        reserved = {
            symbol: max(self._reserved.get(symbol, 0), self._used(symbol) + self._block) for symbol in self._symbols
        }
        # Symbols not streaming now keep their ceilings, so a later stream of one continues its numbering.
        await store.save(StoredNumbering(self.epoch, self._given() | reserved))
        self._reserved = reserved

    async def _save_last(self, store: NumberingStore) -> None:
        """A clean stop: what was given is all there is, so the next start continues right after it."""
        self._persisted, self._reserved = True, {}  # from now on no seq is given (the hub may run one more step)
        last = self._given()
        with trio.CancelScope(shield=True), trio.move_on_after(SAVE_AT_STOP_TIMEOUT):
            try:
                await store.save(StoredNumbering(self.epoch, last))
            except CandleStoreUnavailable as error:  # the reservation stays stored: the next start jumps past it
                log.warning("event=numbering_not_saved error=%s", error)

    def _used(self, symbol: str) -> int:
        return self._last.get(symbol, self._starts.get(symbol, 0))

    def _given(self) -> dict[str, int]:
        """Per symbol ever stored or numbered: the last seq given (or stored at load)."""
        return {symbol: self._used(symbol) for symbol in self._starts | self._last}
