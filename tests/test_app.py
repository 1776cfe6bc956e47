"""The app in-process (lifespan included, via `app.test_app()`): WebSocket protocol and REST."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import trio
from quart_trio import QuartTrio

from tests.support.helpers import FULL_PROTOCOL, make_settings
from trio_ticker.app import assemble, create_app
from trio_ticker.delivery.hub import Hub
from trio_ticker.model import Mode, PriceUpdate, Tick


@pytest.fixture
async def app() -> AsyncIterator[QuartTrio]:
    app = create_app(make_settings(demo_interval=0.05))
    async with app.test_app():
        yield app


@pytest.fixture
async def quiet_app() -> AsyncIterator[tuple[QuartTrio, Hub]]:
    assembly = assemble(make_settings(), sources=())  # no sources: a test decides exactly which prices exist
    async with assembly.app.test_app():
        yield assembly.app, assembly.hub


def full_protocol_websocket(client: Any, path: str = "/ws") -> Any:
    """A test websocket that offers the full protocol's subprotocol (Quart's test client ignores its own
    `subprotocols` argument, so it goes into the scope directly)."""
    return client.websocket(path, scope_base={"subprotocols": list(FULL_PROTOCOL)})


async def receive_json(ws: object) -> object:
    with trio.fail_after(5):
        return orjson.loads(await ws.receive())  # type: ignore[attr-defined]


async def test_full_protocol_client_subscribes_and_streams(app: QuartTrio) -> None:
    async with full_protocol_websocket(app.test_client()) as ws:
        welcome = await receive_json(ws)
        assert isinstance(welcome, dict) and welcome["type"] == "welcome"
        await ws.send('{"action":"subscribe","symbol":"AAPL"}')
        assert await receive_json(ws) == {"type": "subscribed", "symbols": ["AAPL"]}
        snapshot = await receive_json(ws)
        live = await receive_json(ws)
        for tick in (snapshot, live):
            assert tick["type"] == "tick"
            assert tick["ticker"] == "AAPL"
            assert tick["mode"] == "demo"
            assert isinstance(tick["price"], float)
            assert isinstance(tick["change"], float)
            assert {"change_percent", "ts", "seq", "stale"} <= tick.keys()
        assert live["seq"] == snapshot["seq"] + 1
        assert snapshot["epoch"] == welcome["epoch"] and "epoch" not in live


async def test_protocol_errors_over_the_app(app: QuartTrio) -> None:
    async with full_protocol_websocket(app.test_client()) as ws:
        assert (await receive_json(ws))["type"] == "welcome"  # type: ignore[index]
        for frame, code in [
            ("nope", "invalid_json"),
            ("[]", "not_an_object"),
            ('{"action":"dance"}', "unknown_action"),
            ('{"action":"subscribe"}', "missing_field"),
            ('{"action":"subscribe","symbols":7}', "invalid_field"),
            ('{"action":"subscribe","symbol":"NOPE"}', "unknown_symbol"),
        ]:
            await ws.send(frame)
            reply = await receive_json(ws)
            assert (reply["type"], reply["code"]) == ("error", code)
        await ws.send('{"action":"list"}')
        assert await receive_json(ws) == {
            "type": "symbols",
            "symbols": ["AAPL", "GOOGL", "AMZN", "MSFT", "BTCUSDT", "ETHUSDT"],
        }


async def test_batch_opt_in_sends_arrays(app: QuartTrio) -> None:
    # `?batch=1` alone selects the full protocol too (docs/protocol.md, "Two dialects").
    async with app.test_client().websocket("/ws?batch=1") as ws:
        assert [message["type"] for message in await receive_json(ws)] == ["welcome"]  # type: ignore[attr-defined]
        await ws.send('{"action":"subscribe","symbols":["AAPL","MSFT"]}')
        messages: list[dict[str, object]] = []
        while len(messages) < 5:
            batch = await receive_json(ws)
            assert isinstance(batch, list)
            messages.extend(batch)
        assert messages[0] == {"type": "subscribed", "symbols": ["AAPL", "MSFT"]}
        assert {message["ticker"] for message in messages[1:]} == {"AAPL", "MSFT"}


async def test_price_answers_like_the_crypto_broadcaster(app: QuartTrio) -> None:
    response = await app.test_client().get("/price")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["symbol"] == body["ticker"] == "BTCUSDT"
    assert body["last_price"] == body["price"] > 0
    assert {"change_percent", "timestamp_ms", "seq", "stale", "mode", "change"} <= body.keys()
    response = await app.test_client().get("/price?symbol=aapl")
    assert (await response.get_json())["symbol"] == "AAPL"


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("symbol=DOGE", 404, "unknown_symbol"),
        ("symbol=", 400, "invalid_symbol"),
        ("symbol=%3Cscript%3E", 400, "invalid_symbol"),
        ("symbol=" + "A" * 200, 400, "invalid_symbol"),
    ],
)
async def test_price_errors_are_json_with_the_right_status(app: QuartTrio, query: str, status: int, code: str) -> None:
    response = await app.test_client().get(f"/price?{query}")
    assert response.status_code == status
    body = await response.get_json()
    assert (body["type"], body["code"]) == ("error", code)
    assert len(body.get("symbol", "")) <= 40


async def test_price_without_data_yet_is_503_with_retry_after(quiet_app: tuple[QuartTrio, Hub]) -> None:
    app, hub = quiet_app
    response = await app.test_client().get("/price?symbol=MSFT")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.get_json())["code"] == "no_data"
    hub.publish(PriceUpdate("MSFT", 420.5, 400.0, 1_700_000_000_000, Mode.DEMO))
    response = await app.test_client().get("/price?symbol=MSFT")
    assert response.status_code == 200
    assert (await response.get_json())["change"] == 20.5


async def test_rest_json_is_strict_even_for_a_value_that_is_not_a_number(quiet_app: tuple[QuartTrio, Hub]) -> None:
    app, hub = quiet_app
    # Past the hub's own check (a tick as a Redis follower takes it): the emitter still never writes Infinity.
    hub.publish_tick(Tick("MSFT", float("inf"), float("-inf"), float("nan"), 1, 1, Mode.LIVE))

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    for path in ("/price?symbol=MSFT", "/prices"):
        response = await app.test_client().get(path)
        body = json.loads(await response.get_data(as_text=True), parse_constant=refuse)
        assert (response.status_code, body["type"]) == (500, "error")


async def test_prices_symbols_and_health(app: QuartTrio) -> None:
    client = app.test_client()
    prices = await (await client.get("/prices")).get_json()
    assert set(prices["prices"]) == {"AAPL", "GOOGL", "AMZN", "MSFT", "BTCUSDT", "ETHUSDT"}
    assert prices["prices"]["AAPL"]["symbol"] == "AAPL"
    symbols = await (await client.get("/symbols")).get_json()
    configured = ["AAPL", "GOOGL", "AMZN", "MSFT", "BTCUSDT", "ETHUSDT"]
    assert [listing["symbol"] for listing in symbols["symbols"]] == configured
    assert symbols["default"] == "BTCUSDT"
    assert symbols["symbols"][0] == {
        "symbol": "AAPL", "name": "Apple Inc", "source": "demo", "precision": 2, "base": "", "quote": "",
    }  # fmt: skip
    async with full_protocol_websocket(client) as ws:
        await ws.send('{"action":"ping"}')
        await receive_json(ws)
        health_response = await client.get("/healthz")
        assert health_response.status_code == 200
        health = await health_response.get_json()
        assert health["status"] == "ok"
        assert health["clients"] == 1
        assert health["sources"]["demo"]["state"] == "live"
        assert health["catalogue"]["demo"] | {"count": 0} == {
            "state": "fixed", "count": 0, "detail": "", "updated": None, "fetches": 0, "failures": 0,
        }  # fmt: skip
        assert health["catalogue"]["demo"]["count"] >= 50


async def test_unknown_routes_and_methods_are_json_errors(app: QuartTrio) -> None:
    client = app.test_client()
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "not_found"
    response = await client.post("/price")
    assert response.status_code == 405
    assert (await response.get_json())["code"] == "method_not_allowed"


async def test_index_serves_the_web_client(app: QuartTrio) -> None:
    response = await app.test_client().get("/")
    assert response.status_code == 200
    assert "<title>" in await response.get_data(as_text=True)
    response = await app.test_client().get("/../pyproject.toml")
    assert response.status_code == 404
