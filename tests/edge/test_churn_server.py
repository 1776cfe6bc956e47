"""Churn against a real Hypercorn server: connect / subscribe / leave cycles give back every socket and task.

Clients leave every way a real one does: a close frame, a bare FIN, a reset. Within a few seconds of the
last one the process holds as many file descriptors and tasks as before the churn (after one first cycle),
with the default ping interval (20 s), which is how long Hypercorn's own ping loop kept each departed
connection alive; and no connection timer is left armed.
"""

from __future__ import annotations

import os
import socket
import struct

import orjson
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from tests.support.helpers import FULL_PROTOCOL, count_tasks, make_settings
from tests.support.live_server import serve_app
from trio_ticker.app import Assembly, assemble
from trio_ticker.edge.connection_timers import connection_timers

CYCLES = 600
CONCURRENT = 20
GIVEN_BACK_WITHIN = 8.0  # seconds; a departed connection used to stay until its next ping, 16-24 s later
SUBSCRIBE = orjson.dumps({"action": "subscribe", "symbols": ["AAPL", "BTCUSDT"]}).decode()
LEAVE_WAYS = ("close frame", "fin", "reset")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def connect_subscribe_and_leave(address: str, way: str) -> None:
    """One client's whole life: handshake, subscribe, the acknowledgement, then leave `way`."""
    host, port = address.split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    connection = WSConnection(ConnectionType.CLIENT)
    try:
        await stream.send_all(connection.send(Request(host=address, target="/ws", subprotocols=list(FULL_PROTOCOL))))
        subscribed = False
        while not subscribed:
            connection.receive_data(await stream.receive_some())
            for event in connection.events():
                if isinstance(event, AcceptConnection):
                    await stream.send_all(connection.send(TextMessage(data=SUBSCRIBE)))
                elif isinstance(event, TextMessage) and orjson.loads(event.data)["type"] == "subscribed":
                    subscribed = True
        if way == "close frame":
            await stream.send_all(connection.send(CloseConnection(code=1000)))
            while (data := await stream.receive_some()) and not any(
                isinstance(event, CloseConnection) for event in _events(connection, data)
            ):
                pass
        elif way == "reset":  # SO_LINGER 0: close() sends RST
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        await stream.aclose()


def _events(connection: WSConnection, data: bytes) -> list[object]:
    connection.receive_data(data)
    return list(connection.events())


async def wait_until_given_back(assembly: Assembly, fds: int, tasks: int) -> float:
    """Seconds until the open fds, the tasks and the server's connections are back to the baseline."""
    started = trio.current_time()
    while open_fds() > fds or count_tasks() > tasks or assembly.endpoint.open_connections:
        await trio.sleep(0.05)
    return trio.current_time() - started


async def test_connect_close_churn_gives_back_every_socket_and_task_within_seconds() -> None:
    settings = make_settings(demo_interval=0.02)  # ticks in flight as clients leave; default pings (20 s)
    assembly = assemble(settings)
    app = assembly.app
    async with serve_app(app, settings) as address:
        # One cycle first: the run's connection timers (one task) and its worker's watcher start with the first
        # connection, and stay; what the churn must give back is everything per connection.
        await connect_subscribe_and_leave(address, LEAVE_WAYS[0])
        await trio.testing.wait_all_tasks_blocked()  # Hypercorn's accept loop is running too
        while assembly.endpoint.open_connections:
            await trio.sleep(0.01)
        baseline_fds, baseline_tasks = open_fds(), count_tasks()

        with trio.fail_after(120):
            for batch in range(CYCLES // CONCURRENT):
                async with trio.open_nursery() as nursery:
                    for index in range(CONCURRENT):
                        way = LEAVE_WAYS[(batch * CONCURRENT + index) % len(LEAVE_WAYS)]
                        nursery.start_soon(connect_subscribe_and_leave, address, way)
        with trio.move_on_after(GIVEN_BACK_WITHIN) as patience:
            await wait_until_given_back(assembly, baseline_fds, baseline_tasks)
        assert not patience.cancelled_caught, (
            f"{open_fds() - baseline_fds} fds and {count_tasks() - baseline_tasks} tasks still held "
            f"{GIVEN_BACK_WITHIN} s after the churn ({assembly.endpoint.open_connections} connections open)"
        )
        assert assembly.hub.statistics().clients == 0
        assert connection_timers().pending() == 0
