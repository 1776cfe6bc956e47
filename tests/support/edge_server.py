"""An assembled app for the edge tests, with its limit counters and a token it can be told to require; a
WebSocket's JSON sent and replies read, and the server's close awaited (bounded: real sockets)."""

from __future__ import annotations

from typing import Any

import orjson
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


async def send(ws: WebSocketConnection, message: dict[str, Any]) -> None:
    await ws.send_message(orjson.dumps(message).decode())


async def receive(ws: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(5):
        while (message := orjson.loads(await ws.get_message()))["type"] in ("tick", "status"):
            pass
    return message  # type: ignore[no-any-return]
