"""Against a real Hypercorn server: a client that stops reading is closed in bounded time.

It answers no ping, so it sends nothing and the read timeout closes it; when its buffers filled
first (the send is pinned), the kernel's stall timeout aborts it. Real sockets and real time only.
"""

from __future__ import annotations

import time

import orjson
import trio
from trio_websocket import open_websocket_url
from wsproto.events import Ping, TextMessage

from tests.support.helpers import FULL_PROTOCOL, make_settings, read_welcome
from tests.support.live_server import serve_app
from tests.support.never_reading import NeverReadingClient
from trio_ticker.app import Assembly, assemble
from trio_ticker.model import Mode, PriceUpdate
from trio_ticker.settings import PING_JITTER

PING_INTERVAL = 0.5
READ_TIMEOUT = 2.0
SLACK = 1.5  # a busy 2-core machine runs other suites meanwhile
FIREHOSE = "ZZZ"


async def wait_for_connections(assembly: Assembly, count: int) -> float:
    """Poll until the server has `count` WebSocket connections; returns when (trio.current_time)."""
    while assembly.endpoint.open_connections != count:
        await trio.sleep(0.02)
    return trio.current_time()


async def flood(assembly: Assembly) -> None:
    """About 5000 ticks/s of one symbol, straight into the hub."""
    while True:
        for _ in range(50):
            assembly.hub.publish(PriceUpdate(FIREHOSE, 100.0, 99.0, int(time.time() * 1000), Mode.DEMO))
        await trio.sleep(0.01)


async def test_a_client_that_stops_reading_is_closed_after_the_read_timeout_and_no_one_else_is() -> None:
    settings = make_settings(demo_interval=0.05, ws_ping_interval=PING_INTERVAL, ws_read_timeout=READ_TIMEOUT)
    assembly = assemble(settings)
    app = assembly.app
    seqs: dict[int, list[int]] = {}
    stop_listening = trio.Event()

    async def listening_client(index: int, url: str, task_status: trio.TaskStatus[None]) -> None:
        # Sends nothing after subscribing: only its library's pongs keep it open past the read timeout. It
        # batches, so it is sent every tick even if the loaded test machine stalls the server for a moment.
        async with open_websocket_url(f"{url}?batch=1", subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            await ws.send_message(orjson.dumps({"action": "subscribe", "symbol": "BTCUSDT"}).decode())
            ack, *messages = orjson.loads(await ws.get_message())
            assert ack["type"] == "subscribed"
            seqs[index] = []
            task_status.started()
            while not stop_listening.is_set():
                seqs[index].extend(message["seq"] for message in messages)
                messages = orjson.loads(await ws.get_message())
            assert not ws.closed

    with trio.fail_after(30):
        async with serve_app(app, settings) as address, trio.open_nursery() as nursery:
            for index in range(3):
                await nursery.start(listening_client, index, f"ws://{address}/ws")
            silent = await NeverReadingClient.connect(address)
            await silent.subscribe("BTCUSDT")
            silent_since = trio.current_time()  # the last bytes it sends
            closed_at = await wait_for_connections(assembly, 3)

            # Hypercorn closes the socket once its ping loop wakes (within one spread interval), without a close frame.
            with trio.fail_after(PING_INTERVAL * (1 + PING_JITTER) + SLACK):
                events, ending = await silent.read_to_end()
            eof_at = trio.current_time()
            await silent.aclose()
            stop_listening.set()

    assert READ_TIMEOUT <= closed_at - silent_since <= READ_TIMEOUT + SLACK
    assert eof_at - closed_at <= PING_INTERVAL * (1 + PING_JITTER) + SLACK
    assert ending == "eof"  # the client's library reports 1006
    assert any(isinstance(event, Ping) for event in events)  # unanswered: it was not reading
    assert any(isinstance(event, TextMessage) and '"tick"' in event.data for event in events)
    stats = assembly.hub.statistics()
    assert stats.clients == 0 and stats.evicted == 0  # the read timeout, not the hub, closed it
    assert len(seqs) == 3
    for numbers in seqs.values():
        assert len(numbers) > READ_TIMEOUT / settings.demo_interval / 2
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # every tick, in order


async def test_a_never_reading_client_whose_buffers_filled_is_aborted_by_the_stall_timeout() -> None:
    # Its buffers fill within a second (tiny receive buffer, flooded symbol), so when the read timeout fires the
    # connection's send is pinned; the kernel aborts it after the stall timeout. The hub waits longer.
    # The first ping after the handshake comes 1.6-2.4 s later, when the session's writer already holds the
    # pinned send: a ping sent while the buffers were still filling could be the send that gets pinned
    # instead, and the session would end at the read timeout (the socket still goes at the stall timeout).
    stall_timeout, read_timeout = 2.5, 2.5
    settings = make_settings(
        stock_symbols=("AAPL", FIREHOSE),
        ws_ping_interval=2.0,
        ws_read_timeout=read_timeout,
        send_stall_timeout=stall_timeout,
        send_buffer=4096,
        slow_client_timeout=60.0,
    )
    assembly = assemble(settings)
    app = assembly.app

    with trio.fail_after(30):
        async with serve_app(app, settings) as address:
            silent = await NeverReadingClient.connect(address, receive_buffer=4096)
            await silent.subscribe(FIREHOSE)
            silent_since = trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood, assembly)
                closed_at = await wait_for_connections(assembly, 0)
                nursery.cancel_scope.cancel()
            _, ending = await silent.read_to_end()
            await silent.aclose()

    # Pinned from the first fractions of a second: gone after the stall timeout, never later than both timeouts.
    assert stall_timeout <= closed_at - silent_since <= read_timeout + stall_timeout + SLACK
    assert ending == "reset"
    assert assembly.hub.statistics().evicted == 0
