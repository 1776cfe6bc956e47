"""Against a real Hypercorn server: `TICKER_MAX_CONNECTIONS` counts every socket, not only WebSocket sessions.

Half-open and handshaking sockets take places too. With every place taken, a WebSocket client still
gets 1013 on the one spare place; sockets past that are reset at once, counted, and logged once per
burst. A client streaming all along keeps its ticks, and places free up as sockets close.
"""

from __future__ import annotations

import logging

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.edge_server import receive, send, wait_closed
from tests.support.helpers import FULL_PROTOCOL, make_settings, read_welcome
from tests.support.live_server import serve_app
from tests.support.well_behaved import well_behaved_client
from trio_ticker.app import assemble
from trio_ticker.edge.connections import ConnectionRegistry, ConnectionStatistics

LIMIT = 3
BURST = 20


async def open_socket(address: str) -> trio.SocketStream:
    host, port = address.split(":")
    return await trio.open_tcp_stream(host, int(port))


async def open_half_request(address: str) -> trio.SocketStream:
    """A socket that starts an HTTP request and never finishes it."""
    stream = await open_socket(address)
    await stream.send_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
    return stream


async def wait_for_open(connections: ConnectionRegistry, count: int) -> None:
    with trio.fail_after(10):
        while connections.statistics().open != count:
            await trio.sleep(0.01)


async def closed_without_a_reply(stream: trio.SocketStream) -> bool:
    """True when the server ends the connection (EOF or reset) without sending a byte."""
    try:
        with trio.fail_after(5):
            return await stream.receive_some() == b""
    except trio.BrokenResourceError:
        return True  # reset


async def test_every_socket_counts_toward_the_limit_and_past_it_sockets_are_reset_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(demo_interval=0.02, max_connections=LIMIT)
    assembly = assemble(settings)  # its connection registry's limit: TICKER_MAX_CONNECTIONS
    app, connections = assembly.app, assembly.connections
    caplog.set_level(logging.INFO)
    logging.getLogger("trio_ticker").addHandler(caplog.handler)
    try:
        async with serve_app(app, settings) as address, trio.open_nursery() as nursery:
            url = f"ws://{address}/ws"
            async with well_behaved_client(url) as ticks:
                half_open = [await open_half_request(address) for _ in range(LIMIT - 1)]
                await wait_for_open(connections, LIMIT)
                async with open_websocket_url(
                    url, subprotocols=FULL_PROTOCOL
                ) as one_too_many:  # only one session is open: the sockets count
                    assert await wait_closed(one_too_many) == (1013, "try again later")

                half_open.append(await open_half_request(address))  # the spare place
                await wait_for_open(connections, LIMIT + 1)
                burst = [await open_socket(address) for _ in range(BURST)]
                for stream in burst:
                    assert await closed_without_a_reply(stream)
                assert connections.statistics().refused == BURST
                assert connections.statistics().open == LIMIT + 1

                for stream in [*half_open, *burst]:
                    await stream.aclose()
                await wait_for_open(connections, 1)
                async with open_websocket_url(url, subprotocols=FULL_PROTOCOL) as welcome:
                    await read_welcome(welcome)
                    await send(welcome, {"action": "ping"})
                    assert (await receive(welcome))["type"] == "pong"
                await ticks.wait_for_more()
            nursery.cancel_scope.cancel()
    finally:
        logging.getLogger("trio_ticker").removeHandler(caplog.handler)
    refusals = [record.getMessage() for record in caplog.records if "event=connections_refused" in record.getMessage()]
    assert refusals == [f"event=connections_refused reason=connection_limit open={LIMIT + 1} limit={LIMIT} refused=1"]
    assert app.asgi_app.counters.handshakes_refused == {"connection_limit": 1}  # type: ignore[attr-defined]


async def test_a_burst_of_refusals_logs_one_line_and_the_next_burst_another(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    connections = ConnectionRegistry(0, refusal_log_interval=10.0)
    caplog.set_level(logging.WARNING)
    logging.getLogger("trio_ticker").addHandler(caplog.handler)
    try:
        admitted = [connections.admit("first", lambda: None)]  # the spare place
        admitted += [connections.admit(object(), lambda: None) for _ in range(5)]
        await trio.sleep(10.0)
        admitted.append(connections.admit(object(), lambda: None))
        connections.finished("first")
        admitted.append(connections.admit("second", lambda: None))
    finally:
        logging.getLogger("trio_ticker").removeHandler(caplog.handler)
    assert admitted == [True, False, False, False, False, False, False, True]
    assert [record.getMessage() for record in caplog.records] == [
        "event=connections_refused reason=connection_limit open=1 limit=0 refused=1",
        "event=connections_refused reason=connection_limit open=1 limit=0 refused=5",
    ]
    assert connections.statistics().refused == 6


async def test_after_stop_accepting_every_socket_is_refused_and_abort_all_ends_those_held() -> None:
    aborted: list[str] = []
    connections = ConnectionRegistry(10)
    assert connections.admit("a", lambda: aborted.append("a"))
    assert connections.admit("b", lambda: aborted.append("b"))
    connections.socket_closed("b")  # its socket is closed; its task may still run
    assert connections.statistics().open == 1
    connections.stop_accepting()
    assert not connections.admit("c", lambda: aborted.append("c"))
    assert connections.abort_all() == 2
    await connections.wait_no_open_sockets()
    assert aborted == ["a", "b"]
    assert connections.statistics() == ConnectionStatistics(open=0, refused=1, failed=0)
