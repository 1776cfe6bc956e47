"""A bare wsproto client that notes when each of the server's pings arrives, and answers none."""

from __future__ import annotations

import socket

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import Ping, Request


async def ping_times(address: str, duration: float) -> list[float]:
    """Connect with a bare wsproto client and note when each ping arrives (answering none)."""
    host, port = address.split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
    connection = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(connection.send(Request(host=address, target="/ws")))
    times: list[float] = []
    with trio.move_on_after(duration):
        while True:
            connection.receive_data(await stream.receive_some())
            for event in connection.events():
                if isinstance(event, Ping):
                    times.append(trio.current_time())
    await stream.aclose()
    return times
