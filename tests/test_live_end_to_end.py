"""The real server in live mode against fake Binance and Finnhub servers on localhost.

A browser-protocol client (trio-websocket) sees live ticks for a stock and a crypto symbol, a
dropped feed as `reconnecting` then fresh ticks, and a silent stall as `stale` then recovery.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.fakes.binance_server import ConnectionPlan, FakeBinance
from tests.fakes.finnhub_server import ALL_ZERO_QUOTE, FakeFinnhub
from tests.support.helpers import FULL_PROTOCOL, read_welcome
from tests.support.live_upstreams import WAIT, frames_until, live_server, live_settings, ticks, upstreams

pytestmark = pytest.mark.slow


async def test_live_ticks_for_a_stock_and_a_crypto_symbol() -> None:
    binance, finnhub = FakeBinance(), FakeFinnhub()
    with trio.fail_after(30):
        async with (
            upstreams(binance, finnhub) as rest_url,
            live_server(live_settings(binance, finnhub, rest_url)) as address,
        ):
            async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
                await read_welcome(ws)
                await ws.send_message(orjson.dumps({"action": "subscribe", "symbols": ["AAPL", "BTCUSDT"]}).decode())
                frames = await frames_until(ws, lambda f: len(ticks(f, "AAPL")) >= 3 and len(ticks(f, "BTCUSDT")) >= 3)
            async with httpx.AsyncClient() as client:
                health = (await client.get(f"http://{address}/healthz")).json()
    assert frames[0]["type"] == "subscribed"
    first_stock = ticks(frames, "AAPL")[0]
    # The REST snapshot: price and change against the previous close before any trade.
    assert (first_stock["price"], first_stock["change"], first_stock["mode"]) == (189.5, 1.5, "live")
    assert all(not tick["stale"] for tick in ticks(frames, "AAPL") + ticks(frames, "BTCUSDT"))
    seqs = [tick["seq"] for tick in ticks(frames, "BTCUSDT")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert {name: source["state"] for name, source in health["sources"].items()} == {
        "binance": "live",
        "finnhub": "live",
    }
    assert health["sources"]["binance"]["last_message_ts"] > 0
    assert finnhub.api_key not in orjson.dumps(health).decode()
    assert finnhub.subscribed == ["AAPL"] and binance.subscriptions == [["btcusdt@miniTicker", "btcusdt@trade"]]


async def test_a_dropped_feed_shows_reconnecting_then_fresh_ticks() -> None:
    binance = FakeBinance(plans=[ConnectionPlan(events_before=6, then="drop"), ConnectionPlan()])
    finnhub = FakeFinnhub()
    with trio.fail_after(30):
        async with (
            upstreams(binance, finnhub) as rest_url,
            live_server(live_settings(binance, finnhub, rest_url)) as address,
            open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws,
        ):
            await ws.send_message(orjson.dumps({"action": "subscribe", "symbol": "BTCUSDT"}).decode())

            def recovered(frames: list[dict[str, Any]]) -> bool:
                states = [(i, f["state"]) for i, f in enumerate(frames) if f.get("source") == "binance"]
                down = next((i for i, state in states if state == "reconnecting"), None)
                return (
                    down is not None
                    and any(f.get("type") == "tick" for f in frames[down:])
                    and any(state == "live" for i, state in states if i > down)
                )

            frames = await frames_until(ws, recovered)
    statuses = [frame for frame in frames if frame.get("source") == "binance"]
    reconnecting = next(frame for frame in statuses if frame["state"] == "reconnecting")
    assert reconnecting["reconnects"] == 1 and "ConnectionClosed" in reconnecting["detail"]
    assert binance.connections == 2


async def test_a_silent_stall_marks_stale_within_the_threshold_then_recovers() -> None:
    binance = FakeBinance(plans=[ConnectionPlan(events_before=10, then="stall"), ConnectionPlan()])
    finnhub = FakeFinnhub()
    settings_overrides = {"binance_stale_after": 1.0}
    with trio.fail_after(30):
        async with (
            upstreams(binance, finnhub) as rest_url,
            live_server(live_settings(binance, finnhub, rest_url, **settings_overrides)) as address,
            open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws,
        ):
            await ws.send_message(orjson.dumps({"action": "subscribe", "symbol": "BTCUSDT"}).decode())
            frames = await frames_until(
                ws,
                lambda f: (
                    any(x.get("ticker") == "BTCUSDT" and x.get("type") == "status" and not x["stale"] for x in f)
                    and ticks(f, "BTCUSDT")[-1]["_at"]
                    > next(x["_at"] for x in f if x.get("type") == "status" and x.get("stale") is False)
                ),
            )
    stale = next(frame for frame in frames if frame.get("type") == "status" and frame.get("stale") is True)
    before = [tick for tick in ticks(frames, "BTCUSDT") if tick["_at"] < stale["_at"]]
    assert 0.9 <= stale["_at"] - before[-1]["_at"] <= 1.6  # the threshold, plus scheduling slack
    after = [tick for tick in ticks(frames, "BTCUSDT") if tick["_at"] > stale["_at"]]
    assert after and not after[-1]["stale"]
    assert binance.connections == 2  # the silent connection was replaced


async def test_bad_finnhub_key_is_unauthorized_and_never_retried_in_a_tight_loop() -> None:
    binance, finnhub = FakeBinance(), FakeFinnhub(api_key="the-right-key")
    with trio.fail_after(30):
        async with upstreams(binance, finnhub) as rest_url:
            settings = live_settings(binance, finnhub, rest_url, finnhub_api_key="a-wrong-key")
            async with live_server(settings) as address, httpx.AsyncClient() as client:
                await trio.sleep(1.0)
                response = await client.get(f"http://{address}/healthz")
    source = response.json()["sources"]["finnhub"]
    assert source["state"] == "unauthorized" and "401" in source["detail"]
    assert finnhub.rejected == 1
    assert "a-wrong-key" not in response.text


async def test_rate_limited_and_all_zero_quotes() -> None:
    binance = FakeBinance()
    finnhub = FakeFinnhub(trades=False)
    finnhub.rest_script = {
        "AAPL": [(429, {"error": "API limit reached"}, {"Retry-After": "1"})],
        "MSFT": [(200, ALL_ZERO_QUOTE, {})] * 100,  # every retry finds no data
    }
    with trio.fail_after(30):
        async with upstreams(binance, finnhub) as rest_url:
            settings = live_settings(binance, finnhub, rest_url, stock_symbols="AAPL,MSFT")
            async with live_server(settings) as address, httpx.AsyncClient() as client:
                with trio.fail_after(WAIT):  # the server serves during the pause; AAPL's price comes after it
                    while (aapl := await client.get(f"http://{address}/price", params={"symbol": "AAPL"})).is_error:
                        await trio.sleep(0.05)
                msft = await client.get(f"http://{address}/price", params={"symbol": "MSFT"})
                health = (await client.get(f"http://{address}/healthz")).json()
    calls = [(at, symbol) for at, symbol in finnhub.quote_calls]
    assert [symbol for _, symbol in calls][:3] == ["AAPL", "AAPL", "MSFT"]
    assert calls[1][0] - calls[0][0] >= 1.0  # Retry-After honoured
    assert (aapl.json()["price"], aapl.json()["change"], aapl.json()["stale"]) == (189.5, 1.5, False)
    assert msft.status_code == 503  # no price of 0 published
    assert health["sources"]["finnhub"]["state"] == "degraded"
    assert health["sources"]["finnhub"]["detail"] == "no usable price for MSFT (no data)"


async def test_subscribing_many_streams_stays_under_binance_message_limit() -> None:
    binance = FakeBinance(interval=30.0)
    finnhub = FakeFinnhub()
    symbols = [f"S{i}USDT" for i in range(600)]
    with trio.fail_after(30):
        async with upstreams(binance, finnhub) as rest_url:
            settings = live_settings(
                binance, finnhub, rest_url, crypto_symbols=",".join(symbols), default_symbol="S0USDT"
            )
            async with live_server(settings) as address, httpx.AsyncClient() as client:
                health = (await client.get(f"http://{address}/healthz")).json()
    assert health["sources"]["binance"]["state"] == "live"
    assert binance.closed_1008 == 0 and binance.connections == 2
    assert sum(len(batch) for batch in binance.subscriptions) == 1200
