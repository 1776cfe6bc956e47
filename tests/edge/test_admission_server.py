"""Against a real Hypercorn server on port 0: a reconnect burst waits for admission turns, and all of it gets in.

Each new connection waits for its turn at the flush pacer before Hypercorn reads its request; the burst's
handshakes yield to the streaming clients' frames, and the admission floor keeps them from starving. How
much the connected clients' latency gains is `make bench`'s recovery case (docs/benchmarks.md), not this test's.
"""

from __future__ import annotations

import orjson
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.support.helpers import FULL_PROTOCOL, make_settings, read_welcome
from tests.support.live_server import serve_app
from trio_ticker.app import assemble

STREAMING = 20
BURST = 200
SYMBOLS = ("AAPL", "GOOGL", "AMZN", "MSFT", "BTCUSDT", "ETHUSDT")


async def subscribe(ws: WebSocketConnection, symbol: str) -> None:
    """Welcome, subscribe, and the acknowledgement (a batching client's may carry its snapshot tick)."""
    await read_welcome(ws)
    await ws.send_message(orjson.dumps({"action": "subscribe", "symbol": symbol}).decode())
    ack, *_ = orjson.loads(await ws.get_message())
    assert ack["type"] == "subscribed", ack


async def test_a_burst_of_new_clients_all_get_in_while_the_streaming_clients_keep_receiving() -> None:
    assembly = assemble(make_settings(demo_interval=0.02))  # each symbol ticks 50 times a second
    ticks_received = [0] * STREAMING
    subscribed = 0
    burst_done = trio.Event()

    async def streaming_client(index: int, url: str, task_status: trio.TaskStatus[None]) -> None:
        async with open_websocket_url(url, subprotocols=FULL_PROTOCOL) as ws:
            await subscribe(ws, SYMBOLS[index % len(SYMBOLS)])
            task_status.started()
            while True:
                frame = orjson.loads(await ws.get_message())
                ticks_received[index] += sum(message["type"] == "tick" for message in frame)

    async def new_client(index: int, url: str) -> None:
        nonlocal subscribed
        async with open_websocket_url(url, subprotocols=FULL_PROTOCOL) as ws:
            await subscribe(ws, SYMBOLS[index % len(SYMBOLS)])
            subscribed += 1
            await burst_done.wait()  # all of them stay connected until the whole burst is in

    with trio.fail_after(30):  # generous for a loaded 2-core machine: the burst takes about a second
        async with serve_app(assembly.app) as address:
            url = f"ws://{address}/ws?batch=1"
            async with trio.open_nursery() as nursery:
                for index in range(STREAMING):
                    await nursery.start(streaming_client, index, url)
                before_the_burst = list(ticks_received)
                async with trio.open_nursery() as burst:
                    for index in range(BURST):
                        burst.start_soon(new_client, index, url)
                    while subscribed < BURST:
                        await trio.sleep(0.05)
                    burst_done.set()
                # Every streaming client is still served: each receives ticks after the burst began.
                while any(now <= before for now, before in zip(ticks_received, before_the_burst, strict=True)):
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()

    assert subscribed == BURST
    sockets = assembly.connections.statistics()
    assert (sockets.refused, sockets.failed) == (0, 0)
    assert assembly.hub.statistics().evicted == 0
    # Every connection, the streaming ones included, started in an admission turn.
    assert assembly.service.pacer.statistics().admitted == STREAMING + BURST
