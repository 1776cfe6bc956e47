"""Every WebSocket limit and rejection against a real Hypercorn server on port 0.

Each test asserts the exact error or close code the offender gets, and that a well-behaved
client connected all along kept receiving its ticks.
"""

from __future__ import annotations

import logging

import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from tests.support.edge_server import TOKEN, Server, receive, send, wait_closed
from tests.support.helpers import FULL_PROTOCOL, read_welcome
from tests.support.live_server import serve_app
from tests.support.well_behaved import well_behaved_client


async def test_a_frame_over_the_limit_is_closed_1009_by_hypercorn() -> None:
    server = Server(ws_max_message_size=1024)
    async with serve_app(server.app, server.settings) as address:
        url = f"ws://{address}/ws"
        async with well_behaved_client(url) as ticks, open_websocket_url(url, subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            await ws.send_message('{"action":"ping","id":"' + "x" * 1024 + '"}')
            code, _ = await wait_closed(ws)
            await ticks.wait_for_more()
    assert code == 1009
    assert server.counters.closed == {}  # Hypercorn refused it before the app saw it


async def test_a_frame_over_the_limit_is_closed_1009_by_the_app_under_a_laxer_server() -> None:
    # As under the bare `hypercorn` command: Hypercorn's own limit is larger than ours.
    server = Server(ws_max_message_size=1024)
    async with serve_app(server.app, server.settings, ws_max_message_size=1_000_000) as address:
        url = f"ws://{address}/ws"
        async with well_behaved_client(url) as ticks, open_websocket_url(url, subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            await ws.send_message(b"[" + b"1," * 600 + b"1]")
            assert await wait_closed(ws) == (1009, "message too big")
            await ticks.wait_for_more()
    assert server.counters.closed == {"message_too_big": 1}


async def test_over_the_rate_a_message_gets_rate_limited_and_the_connection_stays_usable() -> None:
    server = Server(rate_limit_burst=3, rate_limit_per_second=5, rate_limit_max_rejections=10)
    async with serve_app(server.app, server.settings) as address:
        url = f"ws://{address}/ws"
        async with well_behaved_client(url) as ticks, open_websocket_url(url, subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            for request_id in range(4):
                await send(ws, {"action": "ping", "id": request_id})
            replies = [await receive(ws) for _ in range(4)]
            assert [reply["type"] for reply in replies] == ["pong", "pong", "pong", "error"]
            assert replies[3]["code"] == "rate_limited"
            assert "id" not in replies[3]  # the frame was refused unread
            await trio.sleep(0.25)  # one token back
            await send(ws, {"action": "ping", "id": "later"})
            reply = await receive(ws)
            assert (reply["type"], reply["id"]) == ("pong", "later")
            await ticks.wait_for_more()
    assert server.counters.rate_limited == 1


async def test_sustained_flooding_is_closed_1008() -> None:
    server = Server(rate_limit_burst=3, rate_limit_per_second=0.1, rate_limit_max_rejections=4)
    async with serve_app(server.app, server.settings) as address:
        url = f"ws://{address}/ws"
        async with well_behaved_client(url) as ticks, open_websocket_url(url, subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            for _ in range(7):
                await send(ws, {"action": "ping"})
            replies: list[str] = []
            with pytest.raises(ConnectionClosed) as closed, trio.fail_after(5):
                while True:
                    replies.append((await receive(ws)).get("code", "pong"))
            assert (closed.value.reason.code, closed.value.reason.reason) == (1008, "rate limit exceeded")
            # Replies still queued when the close comes may be dropped; none is ever out of order.
            assert replies == (["pong"] * 3 + ["rate_limited"] * 3)[: len(replies)]
            await ticks.wait_for_more()
    assert server.counters.rate_limited == 4
    assert server.counters.closed == {"rate_limit": 1}


async def test_too_many_symbols_in_one_message_is_a_typed_error() -> None:
    server = Server(max_symbols_per_message=3)
    async with serve_app(server.app, server.settings) as address:
        url = f"ws://{address}/ws"
        async with well_behaved_client(url) as ticks, open_websocket_url(url, subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            await send(ws, {"action": "subscribe", "symbols": ["AAPL", "MSFT", "GOOGL", "AMZN"], "id": 1})
            assert await receive(ws) == {
                "type": "error",
                "code": "too_many_symbols",
                "message": "at most 3 symbols per message",
                "limit": 3,
                "id": 1,
            }
            await send(ws, {"action": "subscribe", "symbols": ["AAPL", "MSFT", "GOOGL"], "id": 2})
            assert (await receive(ws))["type"] == "subscribed"
            await ticks.wait_for_more()
    assert server.assembly.hub.statistics().clients == 0


async def test_too_many_subscriptions_is_a_typed_error_and_subscribes_nothing() -> None:
    server = Server(max_subscriptions_per_client=2)
    async with serve_app(server.app, server.settings) as address:
        url = f"ws://{address}/ws"
        async with well_behaved_client(url) as ticks, open_websocket_url(url, subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            await send(ws, {"action": "subscribe", "symbols": ["AAPL", "MSFT"]})
            assert (await receive(ws))["type"] == "subscribed"
            await send(ws, {"action": "subscribe", "symbols": ["MSFT", "GOOGL"], "id": "g"})
            assert await receive(ws) == {
                "type": "error",
                "code": "too_many_subscriptions",
                "message": "at most 2 subscriptions per connection",
                "limit": 2,
                "id": "g",
            }
            assert server.assembly.hub.subscriber_count("GOOGL") == 0
            await send(ws, {"action": "subscribe", "symbol": "MSFT"})  # already held: no new subscription
            assert (await receive(ws))["type"] == "subscribed"
            await ticks.wait_for_more()
    assert server.counters.too_many_subscriptions == 1


async def test_past_the_connection_limit_a_client_is_closed_1013_until_a_slot_frees() -> None:
    server = Server(max_connections=2)
    async with serve_app(server.app, server.settings) as address:
        url = f"ws://{address}/ws"
        async with well_behaved_client(url) as ticks:
            async with open_websocket_url(url, subprotocols=FULL_PROTOCOL) as second:
                await read_welcome(second)
                await send(second, {"action": "ping"})
                assert (await receive(second))["type"] == "pong"
                async with open_websocket_url(url, subprotocols=FULL_PROTOCOL) as third:
                    assert await wait_closed(third) == (1013, "try again later")
            with trio.fail_after(5):
                while server.assembly.endpoint.open_connections > 1:
                    await trio.sleep(0.01)
            async with open_websocket_url(url, subprotocols=FULL_PROTOCOL) as fourth:
                await read_welcome(fourth)
                await send(fourth, {"action": "ping"})
                assert (await receive(fourth))["type"] == "pong"
            await ticks.wait_for_more()
    assert server.counters.handshakes_refused == {"connection_limit": 1}


async def check_origin_refused(url: str, *origins: bytes) -> None:
    """A handshake with these Origin headers gets 403 with the `origin_not_allowed` error body."""
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(
            url, subprotocols=FULL_PROTOCOL, extra_headers=[(b"Origin", origin) for origin in origins]
        ):
            pass
    assert rejected.value.status_code == 403
    assert rejected.value.body is not None
    assert orjson.loads(rejected.value.body)["code"] == "origin_not_allowed"


async def check_origin_served(url: str, origin: bytes) -> None:
    async with open_websocket_url(url, subprotocols=FULL_PROTOCOL, extra_headers=[(b"Origin", origin)]) as ws:
        await read_welcome(ws)
        await send(ws, {"action": "ping"})
        assert (await receive(ws))["type"] == "pong"


async def test_a_handshake_from_an_origin_not_listed_gets_403() -> None:
    server = Server(allowed_origins="https://good.example,http://localhost:8000")
    async with serve_app(server.app, server.settings) as address:
        url = f"ws://{address}/ws"
        async with well_behaved_client(url) as ticks:  # no Origin header: not a browser, allowed
            await check_origin_refused(url, b"https://evil.example")
            await check_origin_served(url, b"https://GOOD.example")
            await ticks.wait_for_more()
    assert server.counters.handshakes_refused == {"origin_not_allowed": 1}


async def test_a_handshake_with_two_origin_headers_gets_403_whichever_comes_last() -> None:
    # A proxy in front may check one Origin and the server read another: more than one is always refused.
    for allowed in ("https://good.example", ""):
        server = Server(allowed_origins=allowed)
        async with serve_app(server.app, server.settings) as address:
            url = f"ws://{address}/ws"
            async with well_behaved_client(url) as ticks:
                await check_origin_refused(url, b"https://evil.example", b"https://good.example")
                await check_origin_refused(url, b"https://good.example", b"https://good.example")
                await check_origin_served(url, b"https://good.example")
                await ticks.wait_for_more()
        assert server.counters.handshakes_refused == {"origin_not_allowed": 2}


async def test_without_a_valid_token_a_client_is_closed_4001_and_the_token_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server(auth_tokens=f"another-token-abcdefgh,{TOKEN}")
    caplog.set_level("INFO", logger="trio_ticker")
    logging.getLogger("trio_ticker").addHandler(caplog.handler)
    try:
        async with serve_app(server.app, server.settings) as address:
            base = f"ws://{address}/ws"
            async with well_behaved_client(f"{base}?token={TOKEN}") as ticks:
                for url in (base, f"{base}?token=wrong-token-0123456789", f"{base}?token="):
                    async with open_websocket_url(url, subprotocols=FULL_PROTOCOL) as ws:
                        assert await wait_closed(ws) == (4001, "unauthorized")
                for options in (
                    {"subprotocols": [*FULL_PROTOCOL, f"bearer.{TOKEN}"]},
                    {"subprotocols": ["trio-ticker", f"bearer.{TOKEN}"]},  # the unversioned name: v1
                    {"subprotocols": FULL_PROTOCOL, "extra_headers": [(b"Authorization", f"Bearer {TOKEN}".encode())]},
                ):
                    async with open_websocket_url(base, **options) as ws:  # type: ignore[arg-type]
                        await read_welcome(ws)
                        await send(ws, {"action": "ping"})
                        assert (await receive(ws))["type"] == "pong"
                        assert ws.subprotocol == options["subprotocols"][0]  # type: ignore[index]
                await ticks.wait_for_more()
    finally:
        logging.getLogger("trio_ticker").removeHandler(caplog.handler)
    assert server.counters.handshakes_refused == {"unauthorized": 3}
    assert "event=handshake_refused" in caplog.text
    assert "event=client_connected" in caplog.text
    assert TOKEN not in caplog.text
    assert "wrong-token" not in caplog.text
