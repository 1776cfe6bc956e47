"""`GET /symbols` and the full protocol's `search` command on the demo catalogue, in-process (lifespan included)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import trio
from quart_trio import QuartTrio

from tests.support.helpers import make_settings
from tests.test_app import full_protocol_websocket, receive_json
from trio_ticker.app import create_app

DOGE = {"symbol": "DOGEUSDT", "name": "DOGE/USDT", "source": "demo", "precision": 5, "base": "DOGE", "quote": "USDT"}


@pytest.fixture
async def app() -> AsyncIterator[QuartTrio]:
    app = create_app(make_settings(search_max_limit=30, search_default_limit=4, history="off"))
    async with app.test_app():
        yield app


async def get(app: QuartTrio, path: str) -> tuple[int, Any]:
    response = await app.test_client().get(path)
    return response.status_code, orjson.loads(await response.get_data())


async def test_symbols_without_q_lists_the_configured_symbols_and_with_q_searches_the_catalogue(app: QuartTrio) -> None:
    status, body = await get(app, "/symbols")
    assert status == 200 and body["default"] == "BTCUSDT"
    assert [listing["symbol"] for listing in body["symbols"]] == ["AAPL", "GOOGL", "AMZN", "MSFT", "BTCUSDT", "ETHUSDT"]
    assert (await get(app, "/symbols?q=")) == (200, body)  # an emptied search box: the list again
    status, body = await get(app, "/symbols?q=doge")
    assert (status, body) == (200, {"symbols": [DOGE], "default": "BTCUSDT"})
    status, body = await get(app, "/symbols?q=BTC&limit=30")
    assert [listing["symbol"] for listing in body["symbols"]] == ["BTCUSDC", "BTCUSDT", "ETHBTC"]
    _, body = await get(app, "/symbols?q=inc")  # names: Apple Inc, Amazon.com Inc, ...
    assert len(body["symbols"]) == 4 and all("Inc" in listing["name"] for listing in body["symbols"])
    _, body = await get(app, "/symbols?q=ibm")
    assert body["symbols"] == []


@pytest.mark.parametrize(
    ("path", "code", "details"),
    [
        ("/symbols?q=DOGE&limit=31", "invalid_limit", {"limit": "31"}),
        ("/symbols?q=DOGE&limit=0", "invalid_limit", {"limit": "0"}),
        ("/symbols?q=DOGE&limit=ten", "invalid_limit", {"limit": "ten"}),
        ("/symbols?q=btcu%C5%BFdt", "invalid_query", {"q": "btcu\u017fdt"}),  # U+017F upper-cases to S
        ("/symbols?q=" + "A" * 33, "invalid_query", {"q": "A" * 33}),
        ("/symbols?q=a%20b", "invalid_query", {"q": "a b"}),
    ],
)
async def test_a_bad_query_or_limit_is_a_typed_400(
    app: QuartTrio, path: str, code: str, details: dict[str, str]
) -> None:
    status, body = await get(app, path)
    assert status == 400
    assert {key: body[key] for key in ("type", "code", *details)} == {"type": "error", "code": code, **details}


async def test_the_search_command_answers_listings_with_the_requests_id(app: QuartTrio) -> None:
    async with full_protocol_websocket(app.test_client()) as ws:
        assert (await receive_json(ws))["type"] == "welcome"  # type: ignore[index]
        await ws.send('{"action":"search","q":"doge","limit":3,"id":1}')
        assert await receive_json(ws) == {"type": "symbols", "id": 1, "symbols": [DOGE]}
        await ws.send('{"action":"search","q":"US","id":"x"}')
        reply: Any = await receive_json(ws)
        assert reply["id"] == "x" and len(reply["symbols"]) == 4  # the default limit
        for frame, code, field in [
            ('{"action":"search","q":"DOGE","limit":31,"id":2}', "invalid_field", "limit"),
            ('{"action":"search","q":"DOGE","limit":true,"id":2}', "invalid_field", "limit"),
            ('{"action":"search","id":2}', "missing_field", "q"),
            ('{"action":"search","q":7,"id":2}', "invalid_field", "q"),
        ]:
            await ws.send(frame)
            error: Any = await receive_json(ws)
            assert (error["type"], error["code"], error["field"], error["id"]) == ("error", code, field, 2)
        await ws.send('{"action":"search","q":"BTC USDT","id":3}')
        error = await receive_json(ws)
        assert (error["code"], error["q"], error["id"]) == ("invalid_query", "BTC USDT", 3)
        await ws.send('{"action":"ping","id":4}')  # the connection goes on
        assert (await receive_json(ws))["type"] == "pong"  # type: ignore[index]


async def test_the_prototypes_dialect_has_no_search(app: QuartTrio) -> None:
    async with app.test_client().websocket("/ws") as ws:
        await ws.send('{"action":"search","q":"DOGE"}')
        with trio.fail_after(5):
            while "error" not in (error := orjson.loads(await ws.receive())):
                pass  # the default symbol's prices
    assert error["code"] == "unknown_action" and "search" in error["error"]


async def test_metrics_show_each_catalogue(app: QuartTrio) -> None:
    text = (await (await app.test_client().get("/metrics")).get_data()).decode()
    assert 'ticker_catalogue_listings{source="demo"} 54.0' in text
    assert 'ticker_catalogue_state{source="demo",state="fixed"} 1.0' in text
    assert 'ticker_catalogue_fetches_total{result="ok",source="demo"} 0.0' in text
