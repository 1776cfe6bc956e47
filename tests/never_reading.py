"""A WebSocket client that never reads: a raw socket that subscribes, then never calls recv.

wsproto builds the handshake and frames. Unlike a library client it has no background reader,
so it never answers a ping and its kernel receive buffer only ever fills.
"""

from __future__ import annotations

import socket

import orjson
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Event, Request, TextMessage

from tests.helpers import FULL_PROTOCOL

HANDSHAKE_READ = 1024  # the 101 reply; reading more could swallow frames the test wants to leave unread


class NeverReadingClient:
    def __init__(self, stream: trio.SocketStream, connection: WSConnection) -> None:
        self._stream = stream
        self._connection = connection

    @classmethod
    async def connect(cls, address: str, *, receive_buffer: int | None = None) -> NeverReadingClient:
        """Open the WebSocket (reading only the handshake reply); `receive_buffer` sets SO_RCVBUF."""
        host, port = address.split(":")
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        await sock.connect((host, int(port)))
        client = cls(trio.SocketStream(sock), WSConnection(ConnectionType.CLIENT))
        await client._stream.send_all(
            client._connection.send(Request(host=address, target="/ws", subprotocols=list(FULL_PROTOCOL)))
        )
        while True:
            client._connection.receive_data(await client._stream.receive_some(HANDSHAKE_READ))
            if any(isinstance(event, AcceptConnection) for event in client._connection.events()):
                return client

    @property
    def local_port(self) -> int:
        return int(self._stream.socket.getsockname()[1])

    async def subscribe(self, *symbols: str) -> None:
        """Send a subscribe command: the last bytes this client ever sends."""
        frame = orjson.dumps({"action": "subscribe", "symbols": list(symbols)}).decode()
        await self._stream.send_all(self._connection.send(TextMessage(data=frame)))

    async def read_to_end(self) -> tuple[list[Event], str]:
        """Start reading at last: every event the server sent, and how the connection ended."""
        events: list[Event] = []
        while True:
            try:
                data = await self._stream.receive_some()
            except trio.BrokenResourceError:
                return events, "reset"
            if not data:
                return events, "eof"
            self._connection.receive_data(data)
            events.extend(event for event in self._connection.events() if not isinstance(event, CloseConnection))
            if self._connection.state.name in ("CLOSED", "REMOTE_CLOSING"):
                return events, "close frame"

    async def aclose(self) -> None:
        await self._stream.aclose()
