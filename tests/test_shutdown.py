"""`python -m trio_ticker` keeps its shutdown deadline: a real process, SIGTERM, peers that never read.

After SIGTERM the server accepts no one (a client 0.3 s later is refused, never streamed to), closes
its clients with 1001, and exits within TICKER_GRACEFUL_TIMEOUT even though 20 clients stopped
reading and their full buffers pin Hypercorn's sends: it resets them at the deadline.
"""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from tests.support.helpers import FULL_PROTOCOL, read_welcome
from tests.support.never_reading import NeverReadingClient
from tests.support.process import receive_a_tick, running

GRACEFUL_TIMEOUT = 4.0
STUCK_CLIENTS = 20
SMALL_BUFFER = 4096
SYMBOLS = ("AAPL", "GOOGL", "AMZN", "MSFT", "BTCUSDT", "ETHUSDT")


def unacknowledged_bytes(server_port: int) -> dict[int, int]:
    """Client port -> bytes the server's kernel holds unacknowledged for it (/proc/net/tcp's tx_queue)."""
    queued: dict[int, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, _, queues = line.split()[1:5]
        if int(local.split(":")[1], 16) == server_port:
            queued[int(remote.split(":")[1], 16)] = int(queues.split(":")[0], 16)
    return queued


async def wait_until_stuck(address: str, clients: list[NeverReadingClient]) -> None:
    """Until every stuck client's window is shut: over loopback, unacknowledged bytes mean the peer is full."""
    server_port = int(address.split(":")[1])
    ports = [client.local_port for client in clients]
    with trio.fail_after(20):
        while not all(unacknowledged_bytes(server_port).get(port, 0) > 0 for port in ports):
            await trio.sleep(0.1)


async def connect_after_sigterm(address: str) -> list[object]:
    """A client arriving once shutdown began: it must be refused, so it never gets a tick."""
    received: list[object] = []
    try:
        async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            await ws.send_message('{"action":"subscribe","symbol":"AAPL"}')
            with trio.move_on_after(2):
                while True:
                    received.append(await ws.get_message())
    except (OSError, HandshakeError, ConnectionClosed):
        pass
    return received


@pytest.mark.slow
async def test_after_sigterm_nobody_is_accepted_and_stuck_peers_do_not_hold_the_exit_past_the_deadline() -> None:
    env = {
        "TICKER_PORT": "0",
        "TICKER_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
        "TICKER_DEMO_INTERVAL": "0.01",
        "TICKER_SEND_BUFFER": str(SMALL_BUFFER),
        "TICKER_SLOW_CLIENT_TIMEOUT": "120",  # not evicted before the shutdown: they are there to be stuck
        "TICKER_SEND_STALL_TIMEOUT": "120",  # and the kernel does not abort them first either
    }
    async with running([sys.executable, "-m", "trio_ticker"], **env) as server:
        stuck = [
            await NeverReadingClient.connect(server.address, receive_buffer=SMALL_BUFFER) for _ in range(STUCK_CLIENTS)
        ]
        for client in stuck:
            await client.subscribe(*SYMBOLS)
        async with open_websocket_url(f"ws://{server.address}/ws", subprotocols=FULL_PROTOCOL) as listening:
            await read_welcome(listening)
            await receive_a_tick(listening)
            await wait_until_stuck(server.address, stuck)

            server.process.send_signal(signal.SIGTERM)
            signalled = trio.current_time()
            async with trio.open_nursery() as nursery:
                late: list[list[object]] = []

                async def arrive_late() -> None:
                    await trio.sleep(0.3)
                    late.append(await connect_after_sigterm(server.address))

                nursery.start_soon(arrive_late)
                with pytest.raises(ConnectionClosed) as closed, trio.fail_after(GRACEFUL_TIMEOUT + 5):
                    while True:
                        await listening.get_message()
                assert closed.value.reason.code == 1001
                exited_after = None
                with trio.move_on_after(GRACEFUL_TIMEOUT + 15):
                    await server.process.wait()
                    exited_after = trio.current_time() - signalled
        for client in stuck:
            await client.aclose()
    assert late == [[]], f"a client that came 0.3 s after SIGTERM got {len(late[0])} messages"
    assert exited_after is not None, "still running 15 s after its graceful timeout"
    assert exited_after < GRACEFUL_TIMEOUT, exited_after
    assert server.process.returncode == 0
    assert b"Traceback" not in server.stderr
    assert b"event=shutdown signal=SIGTERM" in server.stderr
    # The never-reading peers' sockets were still held when the rest was reset (their sessions may have ended:
    # whether a pinned send keeps a session counted depends on how far its close frame got).
    reset = re.search(rb"event=shutdown_reset connections=(\d+) clients=\d+\b", server.stderr)
    assert reset is not None and int(reset[1]) >= 1, server.stderr[-2000:]
