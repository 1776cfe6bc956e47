"""The real server against fake Binance and Finnhub servers that misbehave: a long 429, prices that are
not prices, floods of unknown symbols, a bad quote; and clients that spell symbols with non-ASCII text.

Every JSON answer is read with a strict parser: `NaN`, `Infinity` and `-Infinity` fail the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.fakes.binance_server import NOT_DECIMAL_TEXT, OUT_OF_RANGE, FakeBinance
from tests.fakes.finnhub_server import ALL_ZERO_QUOTE, FakeFinnhub
from tests.support.helpers import FULL_PROTOCOL, make_settings, read_welcome, trio_ticker_warnings
from tests.support.live_server import serve_app
from tests.support.live_upstreams import frames_until, live_server, live_settings, ticks, upstreams
from trio_ticker.app import create_app

pytestmark = pytest.mark.slow
WAIT = 15.0  # every wait on a real socket is bounded; generous for a loaded CI machine


def strict_json(text: str | bytes) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


async def poll(client: httpx.AsyncClient, url: str, done: Callable[[httpx.Response], bool]) -> httpx.Response:
    """GET `url` until `done(response)`, at most WAIT seconds."""
    with trio.fail_after(WAIT):
        while not done(response := await client.get(url)):
            await trio.sleep(0.05)
    return response


def finnhub_state(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return None
    state: str | None = strict_json(response.content)["sources"].get("finnhub", {}).get("state")
    return state


def binance_event(data: dict[str, Any]) -> str:
    return orjson.dumps({"stream": f"{str(data['s']).lower()}@x", "data": data}).decode()


def binance_trade(symbol: str, price: str) -> str:
    return binance_event({"e": "trade", "E": 1, "s": symbol, "t": 1, "p": price, "q": "1", "T": 1})


def binance_ticker(symbol: str, last: str, open_: str) -> str:
    return binance_event({"e": "24hrMiniTicker", "E": 1, "s": symbol, "c": last, "o": open_})


async def test_a_long_finnhub_429_at_startup_leaves_the_server_serving_everything_else() -> None:
    binance, finnhub = FakeBinance(), FakeFinnhub()
    finnhub.rest_script = {"AAPL": [(429, {"error": "API limit reached"}, {"Retry-After": "3600"})]}
    with trio.fail_after(60):
        async with upstreams(binance, finnhub) as rest_url:
            settings = live_settings(binance, finnhub, rest_url)
            with trio.fail_after(WAIT):  # the server listens while the quote waits out its hour
                async with live_server(settings) as address, httpx.AsyncClient() as client:
                    health = await poll(
                        client, f"http://{address}/healthz", lambda r: finnhub_state(r) == "rate_limited"
                    )
                    crypto = await poll(
                        client, f"http://{address}/price?symbol=BTCUSDT", lambda r: r.status_code == 200
                    )
                    stock = await client.get(f"http://{address}/price", params={"symbol": "AAPL"})
                    metrics = (await client.get(f"http://{address}/metrics")).text
    sources = strict_json(health.content)["sources"]
    assert sources["finnhub"]["state"] == "rate_limited"
    assert "429" in sources["finnhub"]["detail"] and "3600" in sources["finnhub"]["detail"]
    assert sources["binance"]["state"] == "live"
    assert strict_json(crypto.content)["price"] >= 96500
    assert stock.status_code == 503
    assert 'ticker_source_state{source="finnhub",state="rate_limited"} 1.0' in metrics
    assert [symbol for _, symbol in finnhub.quote_calls] == ["AAPL"]  # nothing asked again during the pause


async def test_binance_prices_that_are_not_usable_never_reach_a_client() -> None:
    bad_frames = [binance_ticker("BTCUSDT", "96500.00", "1e400")]  # an open that overflows a float
    bad_frames += [binance_trade("BTCUSDT", price) for price in NOT_DECIMAL_TEXT + OUT_OF_RANGE]
    binance, finnhub = FakeBinance(extra_frames=bad_frames), FakeFinnhub()
    with trio.fail_after(60):
        async with (
            upstreams(binance, finnhub) as rest_url,
            live_server(live_settings(binance, finnhub, rest_url)) as address,
            httpx.AsyncClient() as client,
        ):
            async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
                await read_welcome(ws)
                await ws.send_message(orjson.dumps({"action": "subscribe", "symbol": "BTCUSDT"}).decode())
                raw: list[str | bytes] = []
                with trio.fail_after(WAIT):  # until every bad frame has been read and good ticks follow them
                    while binance.extra_frames or len(raw) < 40:
                        raw.append(await ws.get_message())
            price = await client.get(f"http://{address}/price", params={"symbol": "BTCUSDT"})
            prices = await client.get(f"http://{address}/prices")
            metrics = await client.get(f"http://{address}/metrics")
    frames = [strict_json(frame) for frame in raw]
    good_prices = {96500.0 + step for step in range(10)}
    crypto = ticks(frames, "BTCUSDT")
    assert crypto and all(tick["price"] in good_prices for tick in crypto)
    assert all(isinstance(tick["change"], float) and abs(tick["change"]) < 10 for tick in crypto)
    assert strict_json(price.content)["price"] in good_prices
    assert strict_json(prices.content)["prices"]["BTCUSDT"]["price"] in good_prices
    rejected = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.text.splitlines()
        if line.startswith("ticker_upstream_rejected_total{") and 'source="binance"' in line
    }
    assert rejected == {
        'ticker_upstream_rejected_total{kind="invalid_price",source="binance"}': len(NOT_DECIMAL_TEXT) + 1.0,
        'ticker_upstream_rejected_total{kind="price_out_of_range",source="binance"}': len(OUT_OF_RANGE),
    }


async def test_a_flood_for_an_unknown_symbol_is_counted_and_logged_once() -> None:
    flood = [binance_ticker("XRPUSDT", "0.5", "0.5")] + [binance_trade("XRPUSDT", "0.51")] * 1999
    binance, finnhub = FakeBinance(extra_frames=flood), FakeFinnhub()
    counted = 'ticker_upstream_rejected_total{kind="unknown_symbol",source="binance"} 2000.0'
    with trio.fail_after(60), trio_ticker_warnings() as warnings:
        async with (
            upstreams(binance, finnhub) as rest_url,
            live_server(live_settings(binance, finnhub, rest_url)) as address,
            httpx.AsyncClient() as client,
        ):
            await poll(client, f"http://{address}/metrics", lambda r: counted in r.text)
            symbols = strict_json((await client.get(f"http://{address}/prices")).content)["prices"]
    about_xrp = [record for record in warnings if "XRPUSDT" in record.getMessage()]
    assert len(about_xrp) == 1 and "unknown_symbol" in about_xrp[0].getMessage()
    assert "XRPUSDT" not in symbols


async def test_a_bad_finnhub_quote_is_degraded_not_live_until_a_good_quote_comes() -> None:
    binance, finnhub = FakeBinance(), FakeFinnhub()
    bad_quote = {"c": "311.5", "pc": 311.0, "t": 1_700_000_000}  # a price that is not a JSON number
    finnhub.rest_script = {"AAPL": [(200, bad_quote, {})] * 1000, "MSFT": [(200, ALL_ZERO_QUOTE, {})] * 1000}
    with trio.fail_after(60):
        async with upstreams(binance, finnhub) as rest_url:
            settings = live_settings(binance, finnhub, rest_url, stock_symbols="AAPL,MSFT")
            async with live_server(settings) as address, httpx.AsyncClient() as client:
                degraded = await poll(client, f"http://{address}/healthz", lambda r: finnhub_state(r) == "degraded")
                stock = await client.get(f"http://{address}/price", params={"symbol": "AAPL"})
                finnhub.rest_script["AAPL"].clear()  # from now on a good quote, on the next retry
                finnhub.rest_script["MSFT"].clear()
                live = await poll(client, f"http://{address}/healthz", lambda r: finnhub_state(r) == "live")
                aapl = await poll(client, f"http://{address}/price?symbol=AAPL", lambda r: r.status_code == 200)
    detail = strict_json(degraded.content)["sources"]["finnhub"]["detail"]
    assert "AAPL" in detail and "MSFT" in detail
    assert stock.status_code == 503
    assert strict_json(live.content)["sources"]["finnhub"]["reconnects"] == 0  # the same connection recovered
    assert strict_json(aapl.content)["price"] > 0


@pytest.mark.parametrize("spelling", ["btcu\u017fdt", "\u2003BTCUSDT", "BTCUSDT\xa0", "\uff22\uff34\uff23USDT"])
async def test_symbols_are_ascii_before_any_case_mapping(spelling: str) -> None:
    settings = make_settings(demo_interval=0.05)
    with trio.fail_after(WAIT):
        async with serve_app(create_app(settings), settings) as address, httpx.AsyncClient() as client:
            rest = await client.get(f"http://{address}/price", params={"symbol": spelling})
            async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
                await read_welcome(ws)
                await ws.send_message(orjson.dumps({"action": "subscribe", "symbol": spelling}).decode())
                reply = await frames_until(ws, lambda f: len(f) >= 1)
    assert (rest.status_code, strict_json(rest.content)["code"]) == (400, "invalid_symbol")
    assert (reply[0]["type"], reply[0]["code"]) == ("error", "invalid_symbol")
