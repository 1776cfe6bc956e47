"""What a WebSocket client costs the server in tasks: its connection, its app (the session's reader) and its writer.

Hypercorn's keep-alive timer and ping loop are entries in the run's connection timers (edge/connection_timers.py),
not tasks of their own; a client that leaves leaves no timer behind. The clients here are raw sockets, so
every task spawned while they connect is the server's.
"""

from __future__ import annotations

import base64
import os

import trio

from tests.support.helpers import FULL_PROTOCOL, make_settings
from tests.support.live_server import serve_app
from trio_ticker.app import create_app
from trio_ticker.edge.connection_timers import connection_timers

CLIENTS = 20
SUBSCRIBE = b'{"action":"subscribe","symbols":["AAPL"]}'


class SpawnCounter(trio.abc.Instrument):
    def __init__(self) -> None:
        self.spawned = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1


def masked_text_frame(payload: bytes, mask: bytes = b"\x11\x22\x33\x44") -> bytes:
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def subscribed_client(address: str) -> trio.socket.SocketType:
    """A raw-socket client that has upgraded (full protocol, batching) and got its subscription's ack."""
    host, port = address.split(":")
    sock = trio.socket.socket()
    await sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws?batch=1 HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {FULL_PROTOCOL[0]}\r\n\r\n"
    )
    await sock.send(request.encode())
    received = b""
    while b"\r\n\r\n" not in received:
        received += await sock.recv(65536)
    assert received.startswith(b"HTTP/1.1 101")
    await sock.send(masked_text_frame(SUBSCRIBE))
    while b'"subscribed"' not in received:
        received += await sock.recv(65536)
    return sock


async def test_each_websocket_client_runs_three_tasks_and_leaves_no_timer_behind() -> None:
    settings = make_settings(demo_interval=60.0)  # default pings (20 s): the first is due long after the test
    app = create_app(settings)
    counter = SpawnCounter()
    with trio.fail_after(60):
        async with serve_app(app, settings) as address:
            first = await subscribed_client(address)  # the run's timer task and the worker's watcher start here
            await trio.testing.wait_all_tasks_blocked()
            trio.lowlevel.add_instrument(counter)
            try:
                clients = [await subscribed_client(address) for _ in range(CLIENTS)]
                await trio.testing.wait_all_tasks_blocked()
            finally:
                trio.lowlevel.remove_instrument(counter)
            timers = connection_timers()
            assert timers.pending() == CLIENTS + 1  # each one's next ping
            for sock in [first, *clients]:
                sock.close()
            with trio.fail_after(10):
                while timers.pending():
                    await trio.sleep(0.01)
    assert counter.spawned == 3 * CLIENTS
