"""The prototypes' dialect and the handshake's dialect choice against a real Hypercorn server on port 0.

A plain client (no subprotocol) gets only price objects and error objects, under the same access checks and
limits as the full protocol; a client offering only subprotocols the server does not speak is refused.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import trio
from trio_websocket import ConnectionRejected, WebSocketConnection, open_websocket_url

from tests.helpers import FULL_PROTOCOL, PRICE_OBJECT_KEYS
from tests.live_server import serve_app
from tests.test_limits_server import TOKEN, Server, wait_closed
from tests.well_behaved import well_behaved_client


async def receive(ws: WebSocketConnection) -> dict[str, Any]:
    """The next frame, which in this dialect is a price object or an error object and nothing else."""
    with trio.fail_after(5):
        message: dict[str, Any] = orjson.loads(await ws.get_message())
    assert set(message) == PRICE_OBJECT_KEYS or set(message) <= {"error", "code", "id"}, message
    return message


async def receive_error(ws: WebSocketConnection) -> dict[str, Any]:
    while "error" not in (message := await receive(ws)):
        pass
    return message


async def test_a_plain_client_hears_the_default_symbol_then_what_it_subscribed_to() -> None:
    server = Server()
    async with serve_app(server.app, server.settings) as address, open_websocket_url(f"ws://{address}/ws") as ws:
        assert ws.subprotocol is None
        heard = [await receive(ws) for _ in range(3)]
        assert {message["symbol"] for message in heard} == {"BTCUSDT"}  # TICKER_DEFAULT_SYMBOL, unasked
        assert [message["seq"] for message in heard] == list(range(heard[0]["seq"], heard[0]["seq"] + 3))
        await ws.send_message('{"action":"subscribe","symbol":"AAPL"}')
        with trio.fail_after(5):
            while (message := await receive(ws))["ticker"] != "AAPL":
                assert message["ticker"] == "BTCUSDT"  # sent before the subscribe was read
        later = [await receive(ws) for _ in range(10)]
        assert {message["ticker"] for message in later} == {"AAPL"}
        consecutive = [(a, b) for a, b in zip([message, *later], later, strict=False) if b["seq"] == a["seq"] + 1]
        assert consecutive  # a single-frame client skips superseded ticks only when its writer lags
        for previous, current in consecutive:
            assert current["change"] == round(current["price"] - previous["price"], 2)  # the move since the last
        assert all(message["mode"] == "demo" and message["stale"] is False for message in later)


async def test_garbage_gets_error_objects_on_a_connection_that_keeps_streaming() -> None:
    server = Server()
    async with serve_app(server.app, server.settings) as address, open_websocket_url(f"ws://{address}/ws") as ws:
        for frame, code in [
            ("nope", "invalid_json"),
            ('{"action":"subscribe","symbol":"NOPE"}', "unknown_symbol"),
            ('{"action":"ping","id":1}', "unknown_action"),
        ]:
            await ws.send_message(frame)
            error = await receive_error(ws)
            assert error["code"] == code and isinstance(error["error"], str)
        assert "ticker" in await receive(ws)


async def test_only_unspoken_subprotocols_are_refused_with_1002_never_served_a_dialect() -> None:
    server = Server()
    async with serve_app(server.app, server.settings) as address:
        for offered in (["chat"], ["trio-ticker.v2"], ["bearer.any-token"]):
            async with open_websocket_url(f"ws://{address}/ws", subprotocols=offered) as ws:
                assert ws.subprotocol is None  # a browser fails the connection here
                assert await wait_closed(ws) == (1002, "unsupported subprotocol")
        async with open_websocket_url(f"ws://{address}/ws", subprotocols=["chat", *FULL_PROTOCOL]) as ws:
            assert ws.subprotocol == "trio-ticker.v1"
            await ws.send_message('{"action":"ping"}')
            with trio.fail_after(5):
                while orjson.loads(await ws.get_message())["type"] != "pong":
                    pass
    assert server.counters.handshakes_refused == {"unsupported_subprotocol": 3}


async def test_tokens_work_in_the_prototypes_dialect_by_query_and_header() -> None:
    server = Server(auth_tokens=TOKEN)
    async with serve_app(server.app, server.settings) as address:
        base = f"ws://{address}/ws"
        for url, options in [
            (f"{base}?token={TOKEN}", {}),
            (base, {"extra_headers": [(b"Authorization", f"Bearer {TOKEN}".encode())]}),
        ]:
            async with open_websocket_url(url, **options) as ws:  # type: ignore[arg-type]
                assert (await receive(ws))["symbol"] == "BTCUSDT"
        for url in (base, f"{base}?token=wrong-token-0123456789"):
            async with open_websocket_url(url) as ws:
                assert await wait_closed(ws) == (4001, "unauthorized")
    assert server.counters.handshakes_refused == {"unauthorized": 2}


async def test_an_origin_not_listed_is_refused_in_the_prototypes_dialect_too() -> None:
    server = Server(allowed_origins="https://good.example")
    async with serve_app(server.app, server.settings) as address:
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket_url(f"ws://{address}/ws", extra_headers=[(b"Origin", b"https://evil.example")]):
                pass
        assert rejected.value.status_code == 403
        good = [(b"Origin", b"https://good.example")]
        async with open_websocket_url(f"ws://{address}/ws", extra_headers=good) as ws:
            assert (await receive(ws))["symbol"] == "BTCUSDT"


async def test_an_oversized_frame_is_closed_1009() -> None:
    server = Server(ws_max_message_size=1024)
    async with serve_app(server.app, server.settings) as address:
        url = f"ws://{address}/ws"
        async with well_behaved_client(url) as ticks, open_websocket_url(url) as ws:
            await ws.send_message('{"action":"subscribe","symbol":"' + "A" * 1024 + '"}')
            code, _ = await wait_closed(ws)
            await ticks.wait_for_more()
    assert code == 1009


async def test_flooding_gets_rate_limited_error_objects_then_close_1008() -> None:
    server = Server(rate_limit_burst=2, rate_limit_per_second=0.1, rate_limit_max_rejections=3)
    async with serve_app(server.app, server.settings) as address:
        url = f"ws://{address}/ws"
        async with well_behaved_client(url) as ticks, open_websocket_url(url) as ws:
            for _ in range(3):
                await ws.send_message('{"action":"subscribe","symbol":"AAPL"}')
            assert (await receive_error(ws))["code"] == "rate_limited"
            for _ in range(2):
                await ws.send_message('{"action":"subscribe","symbol":"AAPL"}')
            assert await wait_closed(ws) == (1008, "rate limit exceeded")
            await ticks.wait_for_more()
    assert server.counters.closed == {"rate_limit": 1}
