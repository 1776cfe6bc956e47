"""The one thing a live source needs from a WebSocket client, so tests can swap in memory sockets.

`websocket_opener` gives the real trio-websocket client (it answers server pings itself); tests
pass any `OpenSocket` whose sockets have `get_message` / `send_message`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import trio_websocket


class FeedSocket(Protocol):
    async def get_message(self) -> str | bytes: ...

    async def send_message(self, message: str | bytes) -> None: ...


OpenSocket = Callable[[str], AbstractAsyncContextManager[FeedSocket]]


def websocket_opener(*, connect_timeout: float, disconnect_timeout: float = 2.0) -> OpenSocket:
    def open_socket(url: str) -> AbstractAsyncContextManager[FeedSocket]:
        opened: AbstractAsyncContextManager[FeedSocket] = trio_websocket.open_websocket_url(
            url, connect_timeout=connect_timeout, disconnect_timeout=disconnect_timeout
        )
        return opened

    return open_socket
