"""A connect storm against `python -m trio_ticker`: the kernel queues all of it, and the server serves all of it.

The server process is stopped (SIGSTOP) while the storm opens, so no connection is accepted: the kernel
completes as many TCP handshakes as the listen backlog allows and drops the other SYNs, whose clients
retry 1, 3, 7... s later. With the backlog at the kernel's limit (TICKER_BACKLOG's default) every one is
queued. How fast a storm is served is `make bench`'s storm case (docs/benchmarks.md), not this test's.
"""

from __future__ import annotations

import resource
import signal
import socket
import sys

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

from tests.test_process import running
from trio_ticker.settings import kernel_max_backlog

STORM = 1000
HYPERCORN_DEFAULT_BACKLOG = 100
QUEUED_WITHIN = 3.0  # seconds for the kernel to complete every handshake (it takes milliseconds)


def storm_size() -> int:
    """STORM, or less where the kernel's backlog limit or this process's fd limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, STORM + 512)), hard))
    size = min(STORM, kernel_max_backlog(), resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 256)
    # The kernel queues backlog + 1: a storm of HYPERCORN_DEFAULT_BACKLOG + 2 already tells the two apart.
    assert size > HYPERCORN_DEFAULT_BACKLOG + 1, f"this machine allows only {size} connections: no storm to test"
    return size


async def connect_within(address: tuple[str, int], seconds: float) -> trio.socket.SocketType | None:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with trio.move_on_after(seconds):
        await sock.connect(address)
        return sock
    sock.close()
    return None


async def upgrade(sock: trio.socket.SocketType, host: str) -> bytes:
    """Send the WebSocket upgrade request and read the response head."""
    await sock.send(WSConnection(ConnectionType.CLIENT).send(Request(host=host, target="/ws")))
    head = b""
    while b"\r\n\r\n" not in head and (data := await sock.recv(4096)):
        head += data
    return head.split(b"\r\n", 1)[0]


@pytest.mark.slow
async def test_a_storm_the_server_cannot_accept_yet_is_queued_whole_then_upgraded() -> None:
    size = storm_size()
    async with running([sys.executable, "-m", "trio_ticker"], TICKER_PORT="0") as server:
        host, port = server.address.split(":")
        connected: list[trio.socket.SocketType] = []

        async def open_one() -> None:
            if (sock := await connect_within((host, int(port)), QUEUED_WITHIN)) is not None:
                connected.append(sock)

        server.process.send_signal(signal.SIGSTOP)
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(size):
                    nursery.start_soon(open_one)
        finally:
            server.process.send_signal(signal.SIGCONT)
        try:
            assert len(connected) == size  # Hypercorn's own default backlog queues 101 of them
            statuses: list[bytes] = []

            async def upgrade_one(sock: trio.socket.SocketType) -> None:
                statuses.append(await upgrade(sock, server.address))

            with trio.fail_after(60):  # generous: a loaded 2-core machine; it takes about a second
                async with trio.open_nursery() as nursery:
                    for sock in connected:
                        nursery.start_soon(upgrade_one, sock)
            assert statuses == [b"HTTP/1.1 101 "] * size
        finally:
            for sock in connected:
                sock.close()
        assert server.process.returncode is None  # still serving
        server.process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            await server.process.wait()
