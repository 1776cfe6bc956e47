"""One client's outbox: a bounded memory channel of encoded frames, conflating when full.

The hub offers frames without ever waiting. While the channel has room every frame is queued
in order; once it is full the client is *behind*: the queued ticks collapse into the latest frame
per symbol (older ones are conflated away, replies keep their place in the channel), and so do
further ticks, to be sent as soon as the channel drains. So a slow client is never sent a stale
backlog. The outbox tells its `on_behind` callback (the hub's slow-client reaper) when it falls
behind; a client that stays behind longer than the timeout is evicted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import trio

from .dialects import Dialect

Entry = tuple[str | None, str]
"""A queued frame and its conflation key: a symbol, a status key, or None for a reply (never conflated)."""

STATUS_KEY_SEPARATOR = "\x00"  # never in a symbol, so "AAPL\x00stale" cannot collide with a symbol


def status_key(symbol_or_source: str, kind: str) -> str:
    """The conflation key of a status frame: only the latest status of each kind and subject matters."""
    return f"{symbol_or_source}{STATUS_KEY_SEPARATOR}{kind}"


class ClientOutbox:
    def __init__(
        self,
        client_id: int,
        capacity: int,
        *,
        peer: str = "",
        on_behind: Callable[[ClientOutbox, float], None] | None = None,
        dialect: Dialect = Dialect.FULL,
    ) -> None:
        self.client_id = client_id
        self.peer = peer
        self.dialect = dialect  # which of the hub's frames it is offered
        self.subscriptions: dict[str, None] = {}  # insertion-ordered set
        self.close_code: int | None = None
        self.close_reason = ""
        self._send, self.receive = trio.open_memory_channel[Entry](capacity)
        self._send_nowait = self._send.send_nowait
        self._pending: dict[str, str] = {}  # symbol -> latest frame, only while behind
        self.behind_since: float | None = None
        self._on_behind = on_behind
        self._stop_session: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<ClientOutbox #{self.client_id} {self.peer}>"

    # -- hub side: never blocks ------------------------------------------------------------------

    def offer(self, key: str, frame: str) -> int:
        """Queue a tick (or status) frame; returns how many unsent frames it made obsolete."""
        return self.offer_entry((key, frame))

    def offer_entry(self, entry: tuple[str, str]) -> int:
        """`offer` for an entry built once per tick and shared by every subscriber (the hub's hot loop)."""
        if self.close_code is not None:
            return 0
        if self.behind_since is None:
            try:
                self._send_nowait(entry)
            except trio.WouldBlock:
                self._enter_behind()
                return self._collapse_queue() + self._keep_latest(*entry)
            except trio.ClosedResourceError:
                return 0
            return 0
        return self._keep_latest(*entry)

    def _keep_latest(self, key: str, frame: str) -> int:
        # Re-inserting moves the key to the end, so pending frames stay in arrival order.
        conflated = 1 if self._pending.pop(key, None) is not None else 0
        self._pending[key] = frame
        return conflated

    def _collapse_queue(self) -> int:
        """Turn the queued ticks into the latest per key; replies go back into the channel in order."""
        replies: list[str] = []
        conflated = 0
        while True:
            try:
                key, frame = self.receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            if key is None:
                replies.append(frame)
            elif self._still_wanted(key):
                conflated += self._keep_latest(key, frame)
            # else: a tick of a symbol unsubscribed since it was queued; its ack already promised no more
        for frame in replies:
            self._send.send_nowait((None, frame))  # the channel was just emptied: they fit
        return conflated

    def _still_wanted(self, key: str) -> bool:
        """A source status (key starts with the separator), or a tick or stale mark of a subscribed symbol."""
        subject = key.partition(STATUS_KEY_SEPARATOR)[0]
        return not subject or subject in self.subscriptions

    def discard_pending(self, symbols: tuple[str, ...]) -> None:
        """Forget unsent ticks of symbols the client no longer wants."""
        for symbol in symbols:
            self._pending.pop(symbol, None)
            self._pending.pop(status_key(symbol, "stale"), None)
        if not self._pending and self.behind_since is not None:
            self._leave_behind()

    def discard_pending_keys(self, keys: Iterable[str]) -> None:
        """Forget unsent frames of these conflation keys (e.g. candle updates the client no longer wants)."""
        for key in keys:
            self._pending.pop(key, None)
        if not self._pending and self.behind_since is not None:
            self._leave_behind()

    def request_close(self, code: int, reason: str) -> None:
        """Ask the session to close the connection; the first request's code wins."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._send.close()
        if self._stop_session is not None:
            self._stop_session()

    # -- session side ---------------------------------------------------------------------------

    async def send_control(self, frame: str) -> None:
        """Queue a reply (ack, error, pong) in order, waiting for room: only this client waits."""
        try:
            self._send_nowait((None, frame))  # no checkpoint when there is room: the reader's receive is one
        except trio.WouldBlock:
            await self._send.send((None, frame))

    def take_pending_entries(self) -> list[tuple[str, str]]:
        """The conflated frames with their keys, once the channel has drained; the client is then caught up."""
        entries = list(self._pending.items())
        self._pending.clear()
        if self.behind_since is not None:
            self._leave_behind()
        return entries

    def stop_session_on_close_request(self, stop_session: Callable[[], None]) -> None:
        """Call `stop_session` (the session's cancel) when a close is requested, or now if one already was.

        A callback rather than a task per client waiting for the request: a client is its reader and its writer,
        nothing else (docs/architecture.md, "Tasks")."""
        self._stop_session = stop_session
        if self.close_code is not None:  # set by the first request_close
            stop_session()

    def close_hub_side(self) -> None:
        self._send.close()
        self._pending.clear()

    def pending_count(self) -> int:
        return self.receive.statistics().current_buffer_used + len(self._pending)

    # -- state changes --------------------------------------------------------------------------

    def _enter_behind(self) -> None:
        self.behind_since = trio.current_time()
        if self._on_behind is not None:
            self._on_behind(self, self.behind_since)

    def _leave_behind(self) -> None:
        self.behind_since = None
