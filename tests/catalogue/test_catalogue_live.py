"""The real server in live mode with the catalogue fetched from fake Binance and Finnhub REST servers on
localhost: search results from both, a failing fetch that leaves the configured symbols working, and a
restart that serves the catalogue saved in the SQLite file before any fetch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from trio_websocket import open_websocket_url

from tests.fakes.binance_rest import FakeBinanceRest
from tests.fakes.binance_server import FakeBinance
from tests.fakes.finnhub_server import FakeFinnhub
from tests.support.helpers import FULL_PROTOCOL, read_welcome
from tests.support.live_upstreams import WAIT, frames_until, live_server, live_settings, ticks, upstreams

pytestmark = pytest.mark.slow

SERVER_ERROR = (500, {}, {"code": -1000, "msg": "An unknown error occurred while processing the request."})


@asynccontextmanager
async def serve_rest(fake: FakeBinanceRest) -> AsyncIterator[str]:
    """The fake Binance REST API over HTTP on port 0; yields its base URL."""
    shutdown = trio.Event()
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, fake.rest_app(), config, shutdown_trigger=shutdown.wait))
        try:
            yield binds[0]
        finally:
            shutdown.set()


@asynccontextmanager
async def live_catalogue_server(rest: FakeBinanceRest, data_dir: Path, **overrides: Any) -> AsyncIterator[str]:
    binance, finnhub = FakeBinance(), overrides.pop("finnhub", FakeFinnhub())
    async with (
        upstreams(binance, finnhub) as finnhub_rest_url,
        serve_rest(rest) as binance_rest_url,
    ):
        settings = live_settings(
            binance,
            finnhub,
            finnhub_rest_url,
            binance_rest_url=binance_rest_url,
            catalogue_fetch=True,
            data_dir=data_dir,
            **overrides,
        )
        async with live_server(settings) as address:
            yield address


async def until(check: Callable[[], Awaitable[Any]], limit: float = WAIT) -> Any:
    """Poll `check` until it returns something true (a real server: the wait is bounded)."""
    with trio.fail_after(limit):
        while not (found := await check()):
            await trio.sleep(0.05)
    return found


async def search(client: httpx.AsyncClient, address: str, query: str) -> list[dict[str, Any]]:
    response = await client.get(f"http://{address}/symbols", params={"q": query})
    assert response.status_code == 200
    return response.json()["symbols"]  # type: ignore[no-any-return]


async def healthz_when_both_fetched(client: httpx.AsyncClient, address: str) -> dict[str, Any] | None:
    health: dict[str, Any] = (await client.get(f"http://{address}/healthz")).json()
    return health if all(block["state"] == "ok" for block in health["catalogue"].values()) else None


async def test_both_catalogues_are_searched_with_names_and_precision(tmp_path: Path) -> None:
    rest, finnhub = FakeBinanceRest(), FakeFinnhub()
    with trio.fail_after(30):
        async with (
            live_catalogue_server(rest, tmp_path, finnhub=finnhub) as address,
            httpx.AsyncClient() as client,
        ):
            doge = await until(partial(search, client, address, "DOGEUSDT"))
            berkshire = await until(partial(search, client, address, "berkshire"))
            health = await until(partial(healthz_when_both_fetched, client, address))
            async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
                await read_welcome(ws)
                await ws.send_message('{"action":"search","q":"BTC","limit":2,"id":9}')
                reply = orjson.loads(await ws.get_message())
    assert doge == [
        {
            "symbol": "DOGEUSDT",
            "name": "DOGE/USDT",
            "source": "binance",
            "precision": 5,
            "base": "DOGE",
            "quote": "USDT",
        }
    ]
    assert berkshire == [
        {"symbol": "BRK.B", "name": "BERKSHIRE HATHAWAY INC-CL B", "source": "finnhub", "precision": None}
        | {"base": "", "quote": ""}
    ]
    assert [listing["symbol"] for listing in reply["symbols"]] == ["BTCUSDT", "BNBBTC"] and reply["id"] == 9
    assert {source: block["state"] for source, block in health["catalogue"].items()} == {
        "binance": "ok",
        "finnhub": "ok",
    }
    assert (health["catalogue"]["binance"]["count"], health["catalogue"]["finnhub"]["count"]) == (10, 9)
    assert [exchange for _, exchange in finnhub.symbol_calls] == ["US"]
    assert finnhub.api_key not in orjson.dumps(health).decode()


async def test_a_failing_fetch_leaves_the_configured_symbols_working_and_says_why(tmp_path: Path) -> None:
    rest = FakeBinanceRest(script=[SERVER_ERROR] * 1000)
    finnhub = FakeFinnhub()
    finnhub.symbol_script = [(200, b"\x00garbage", {})] * 1000
    with trio.fail_after(30):
        async with (
            live_catalogue_server(rest, tmp_path, finnhub=finnhub) as address,
            httpx.AsyncClient() as client,
        ):

            async def both_failed() -> dict[str, Any] | None:
                health = (await client.get(f"http://{address}/healthz")).json()
                catalogue = health["catalogue"]
                return catalogue if all(block["state"] == "failed" for block in catalogue.values()) else None

            catalogue = await until(both_failed)
            listed = (await client.get(f"http://{address}/symbols")).json()["symbols"]
            found = await search(client, address, "BTC")
            metrics = (await client.get(f"http://{address}/metrics")).text
            async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
                await read_welcome(ws)
                await ws.send_message(orjson.dumps({"action": "subscribe", "symbols": ["AAPL", "BTCUSDT"]}).decode())
                frames = await frames_until(ws, lambda f: len(ticks(f, "AAPL")) >= 2 and len(ticks(f, "BTCUSDT")) >= 2)
    assert catalogue["binance"]["detail"].startswith("HTTP 500")
    assert catalogue["finnhub"]["detail"].startswith("not a catalogue")
    assert [listing["symbol"] for listing in listed] == ["AAPL", "BTCUSDT"]
    assert [listing["symbol"] for listing in found] == ["BTCUSDT"]  # the configured symbols are always listed
    assert frames[0]["type"] == "subscribed"
    assert 'ticker_catalogue_state{source="binance",state="failed"} 1.0' in metrics
    assert 'ticker_catalogue_listings{source="finnhub"} 0.0' in metrics


async def test_a_restart_serves_the_saved_catalogue_before_any_fetch_answers(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with (
            live_catalogue_server(FakeBinanceRest(), tmp_path) as address,
            httpx.AsyncClient() as client,
        ):
            await until(partial(search, client, address, "SHIB"))
        refusing = FakeBinanceRest(script=[(429, {"Retry-After": "600"}, {"code": -1003, "msg": "Too many."})] * 10)
        async with (
            live_catalogue_server(refusing, tmp_path) as address,
            httpx.AsyncClient() as client,
        ):
            found = await search(client, address, "SHIB")  # the first request after startup
            health = (await client.get(f"http://{address}/healthz")).json()
    assert [listing["symbol"] for listing in found] == ["SHIBUSDT"] and found[0]["precision"] == 8
    assert health["catalogue"]["binance"]["count"] == 10


async def test_a_refused_key_waits_the_unauthorized_delay_before_asking_again(tmp_path: Path) -> None:
    finnhub = FakeFinnhub()
    finnhub.symbol_script = [(401, {"error": "Invalid API key."}, {})]
    with trio.fail_after(30):
        async with (
            live_catalogue_server(
                FakeBinanceRest(), tmp_path, finnhub=finnhub, unauthorized_retry_delay=2.0
            ) as address,
            httpx.AsyncClient() as client,
        ):
            health = await until(partial(healthz_when_both_fetched, client, address))
    first, second = (at for at, _ in finnhub.symbol_calls[:2])
    assert second - first >= 2.0  # not the 0.2 s backoff of the other failures
    assert health["catalogue"]["finnhub"]["failures"] == 1 and health["catalogue"]["finnhub"]["count"] == 9
