"""One client's outbox: a bounded memory channel of encoded frames, conflating when full.

The hub offers frames without ever waiting. While the channel has room every frame is queued
in order; once it is full the client is *behind* and further ticks are kept as the latest frame
per symbol (older ones are conflated away), to be sent as soon as the channel drains. A client
that stays behind longer than its timeout is evicted by its session (see session.py).
"""

from __future__ import annotations

import trio


class ClientOutbox:
    def __init__(self, client_id: int, capacity: int, *, peer: str = "") -> None:
        self.client_id = client_id
        self.peer = peer
        self.subscriptions: dict[str, None] = {}  # insertion-ordered set
        self.close_code: int | None = None
        self.close_reason = ""
        self._send, self.receive = trio.open_memory_channel[str](capacity)
        self._pending: dict[str, str] = {}  # symbol -> latest frame, only while behind
        self.behind_since: float | None = None
        self._behind = trio.Event()
        self._caught_up = trio.Event()
        self._close_requested = trio.Event()

    def __repr__(self) -> str:
        return f"<ClientOutbox #{self.client_id} {self.peer}>"

    # -- hub side: never blocks ------------------------------------------------------------------

    def offer(self, symbol: str, frame: str) -> bool:
        """Queue a tick frame; returns True when it replaced an unsent frame (conflation)."""
        if self.close_code is not None:
            return False
        if self.behind_since is None:
            try:
                self._send.send_nowait(frame)
            except trio.WouldBlock:
                self._enter_behind()
            except trio.ClosedResourceError:
                return False
            else:
                return False
        # Re-inserting moves the key to the end, so pending frames stay in arrival order.
        conflated = self._pending.pop(symbol, None) is not None
        self._pending[symbol] = frame
        return conflated

    def discard_pending(self, symbols: tuple[str, ...]) -> None:
        """Forget unsent ticks of symbols the client no longer wants."""
        for symbol in symbols:
            self._pending.pop(symbol, None)
        if not self._pending and self.behind_since is not None:
            self._leave_behind()

    def request_close(self, code: int, reason: str) -> None:
        """Ask the session to close the connection; the first request's code wins."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._send.close()
        self._close_requested.set()

    # -- session side ---------------------------------------------------------------------------

    async def send_control(self, frame: str) -> None:
        """Queue a reply (ack, error, pong) in order, waiting for room: only this client waits."""
        await self._send.send(frame)

    def take_pending(self) -> list[str]:
        """The conflated frames, once the channel has drained; the client is then caught up."""
        frames = list(self._pending.values())
        self._pending.clear()
        if self.behind_since is not None:
            self._leave_behind()
        return frames

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    async def wait_close_requested(self) -> None:
        await self._close_requested.wait()

    async def wait_behind_for(self, seconds: float) -> None:
        """Return once the client has been behind, without a break, for `seconds`."""
        while True:
            await self._behind.wait()
            if self.behind_since is None:
                continue  # behind and caught up again before this task ran (a busy server)
            caught_up = self._caught_up
            with trio.move_on_at(self.behind_since + seconds):
                await caught_up.wait()
            if not caught_up.is_set():
                return

    def aclose_hub_side(self) -> None:
        self._send.close()
        self._pending.clear()

    def pending_count(self) -> int:
        return self.receive.statistics().current_buffer_used + len(self._pending)

    # -- state changes --------------------------------------------------------------------------

    def _enter_behind(self) -> None:
        self.behind_since = trio.current_time()
        self._caught_up = trio.Event()
        self._behind.set()

    def _leave_behind(self) -> None:
        self.behind_since = None
        self._behind = trio.Event()
        self._caught_up.set()
