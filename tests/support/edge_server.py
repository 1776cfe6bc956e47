"""An assembled app for the edge tests, with its limit counters, a token it can be told to require, and how a
test waits for the server to close a WebSocket (bounded: real sockets)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from tests.support.helpers import make_settings
from trio_ticker.app import assemble
from trio_ticker.edge.limits import LimitCounters

TOKEN = "s3cret-token-0123456789"


class Server:
    def __init__(self, **overrides: Any) -> None:
        self.settings = make_settings(demo_interval=0.02, **overrides)
        self.assembly = assemble(self.settings)
        self.app = self.assembly.app

    @property
    def counters(self) -> LimitCounters:
        return self.assembly.endpoint.counters


async def wait_closed(ws: WebSocketConnection) -> tuple[int, str | None]:
    with pytest.raises(ConnectionClosed) as closed, trio.fail_after(5):
        while True:
            await ws.get_message()
    return closed.value.reason.code, closed.value.reason.reason
