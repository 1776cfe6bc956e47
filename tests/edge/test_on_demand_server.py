"""On-demand symbols through the real server (Hypercorn on port 0, demo mode): a listed symbol nobody
configured streams once a client subscribes, /price answers it while it streams, the cap answers
`symbol_limit`, and an unlisted symbol `unknown_symbol`, both on the socket and at /price."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import trio
from trio_websocket import open_websocket_url

from tests.support.demand import ListedDirectory
from tests.support.edge_server import receive, send
from tests.support.helpers import FULL_PROTOCOL, make_settings, read_welcome
from tests.support.live_server import serve_app
from trio_ticker.app import assemble
from trio_ticker.sources.demo_instruments import instrument_for

CONFIGURED_STOCKS, CONFIGURED_CRYPTO = ("AAPL",), ("BTCUSDT",)
LISTED = ("AAPL", "BTCUSDT", "DOGEUSDT", "SOLUSDT", "NVDA")


async def test_a_listed_symbol_streams_on_demand_through_the_server() -> None:
    settings = make_settings(
        demo_interval=0.05,
        stock_symbols=CONFIGURED_STOCKS,
        crypto_symbols=CONFIGURED_CRYPTO,
        default_symbol="AAPL",
        max_active_symbols=3,
        symbol_linger=60.0,
    )
    assembly = assemble(settings, directory=ListedDirectory("demo", LISTED, precision=5))
    with trio.fail_after(20):
        async with serve_app(assembly.app, settings) as address, httpx.AsyncClient() as client:
            before = await client.get(f"http://{address}/price", params={"symbol": "DOGEUSDT"})
            assert before.status_code == 503 and before.json()["code"] == "no_data"  # listed, not streaming
            unknown = await client.get(f"http://{address}/price", params={"symbol": "NOPEUSDT"})
            assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_symbol"
            async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
                await read_welcome(ws)
                await send(ws, {"action": "subscribe", "symbols": ["DOGEUSDT"], "id": 1})
                assert (await receive(ws))["type"] == "subscribed"
                while (tick := orjson.loads(await ws.get_message()))["type"] != "tick":
                    pass
                # The walk starts at the instrument's start price; under load that first update may be superseded by
                # the next step while its seq block is stored (the latest waits), so it is within a step or two of it.
                start = instrument_for("DOGEUSDT").start_price
                assert tick["ticker"] == "DOGEUSDT" and abs(tick["price"] / start - 1) < 0.01
                price = await client.get(f"http://{address}/price", params={"symbol": "DOGEUSDT"})
                assert price.status_code == 200 and price.json()["symbol"] == "DOGEUSDT"
                await send(ws, {"action": "subscribe", "symbols": ["SOLUSDT", "NVDA"], "id": 2})
                refused = await receive(ws)
                assert refused["code"] == "symbol_limit" and refused["limit"] == 3 and refused["id"] == 2
                await send(ws, {"action": "subscribe", "symbols": ["NOPEUSDT"], "id": 3})
                unknown_reply = await receive(ws)
                assert unknown_reply["code"] == "unknown_symbol" and unknown_reply["id"] == 3
            while (health := (await client.get(f"http://{address}/healthz")).json())["symbols"]["watched"]:
                await trio.sleep(0.02)  # the server has yet to see the socket close
            assert health["symbols"] == {
                "always_on": 2,
                "watched": 0,
                "lingering": 1,
                "added": 1,
                "dropped": 0,
                "refused_limit": 1,
            }
            assert assembly.hub.demand is not None
            assert assembly.hub.demand.active() == {"AAPL", "BTCUSDT", "DOGEUSDT"}


async def test_a_symbol_streamed_on_demand_has_candles_over_rest_and_the_socket() -> None:
    settings = make_settings(
        demo_interval=0.05, stock_symbols=CONFIGURED_STOCKS, crypto_symbols=CONFIGURED_CRYPTO, default_symbol="AAPL"
    )
    assembly = assemble(settings, directory=ListedDirectory("demo", LISTED, precision=5))
    with trio.fail_after(20):
        async with serve_app(assembly.app, settings) as address, httpx.AsyncClient() as client:
            async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
                await read_welcome(ws)
                await send(ws, {"action": "subscribe", "symbols": ["DOGEUSDT"], "candles": "1m", "id": 1})
                assert (await receive(ws))["type"] == "subscribed"
                first_tick: dict[str, Any] | None = None
                candle: dict[str, Any] | None = None
                while first_tick is None or candle is None:
                    frame = orjson.loads(await ws.get_message())
                    if frame["type"] == "tick" and first_tick is None:
                        first_tick = frame
                    elif frame["type"] == "candle" and candle is None:
                        candle = frame
                assert (candle["ticker"], candle["interval"], candle["closed"]) == ("DOGEUSDT", "1m", False)
                answer = await client.get(f"http://{address}/candles", params={"symbol": "DOGEUSDT", "interval": "1m"})
                assert answer.status_code == 200
                first = answer.json()["candles"][0]  # its candles start with its first tick on this server
                assert float(first["open"]) == first_tick["price"]
            unlisted = await client.get(f"http://{address}/candles", params={"symbol": "NOPEUSDT", "interval": "1m"})
            assert unlisted.status_code == 404 and unlisted.json()["code"] == "unknown_symbol"
