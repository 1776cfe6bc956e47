"""24 h statistics end to end: the real server against the fake Binance and Finnhub servers, and in demo mode.

Every tick and snapshot, over the WebSocket (both dialects) and REST, carries the symbol's precision and
its open, high, low and volume as the upstreams reported them.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.fakes.binance_server import FakeBinance
from tests.fakes.finnhub_server import FakeFinnhub
from tests.support.helpers import FULL_PROTOCOL, make_settings
from tests.support.live_server import serve_app
from tests.support.live_upstreams import WAIT, frames_until, live_server, live_settings, ticks, upstreams
from trio_ticker.app import create_app

pytestmark = pytest.mark.slow
DAY_KEYS = ("precision", "open", "high", "low", "volume")


def day_fields(frame: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(frame[key] for key in DAY_KEYS)


def next_new_york_midnight() -> int:
    """Epoch seconds of the next 00:00 in New York: a Finnhub day this test's connection sees whole."""
    tomorrow = datetime.now(ZoneInfo("America/New_York")).date() + timedelta(days=1)
    return int(datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=ZoneInfo("America/New_York")).timestamp())


async def test_ticks_snapshots_and_rest_carry_the_upstreams_24h_statistics() -> None:
    binance = FakeBinance(prices={"BTCUSDT": "96500.25"}, volume="18234.12345000")
    finnhub = FakeFinnhub()  # its quote and trades are of 2023: a day this server did not see whole
    with trio.fail_after(30):
        async with upstreams(binance, finnhub) as rest_url:
            settings = live_settings(binance, finnhub, rest_url)
            async with live_server(settings) as address:
                async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
                    await ws.send_message(
                        orjson.dumps({"action": "subscribe", "symbols": ["AAPL", "BTCUSDT"]}).decode()
                    )
                    frames = await frames_until(
                        ws, lambda f: len(ticks(f, "AAPL")) >= 3 and len(ticks(f, "BTCUSDT")) >= 3
                    )
                async with open_websocket_url(f"ws://{address}/ws") as prototype:  # the prototypes' dialect
                    await prototype.send_message(orjson.dumps({"action": "subscribe", "symbol": "BTCUSDT"}).decode())
                    with trio.fail_after(WAIT):
                        price_object = orjson.loads(await prototype.get_message())
                async with httpx.AsyncClient(base_url=f"http://{address}") as client:
                    one = (await client.get("/price", params={"symbol": "BTCUSDT"})).json()
                    every = (await client.get("/prices")).json()["prices"]
    # Binance: the miniTicker's rolling 24 h o/h/l/v on the snapshot and on every trade after it.
    crypto = (2, 96500.25, 96520.25, 96480.25, 18234.12345)
    assert {day_fields(tick) for tick in ticks(frames, "BTCUSDT")} == {crypto}
    assert day_fields(one) == day_fields(every["BTCUSDT"]) == crypto
    assert (price_object["open"], price_object["high"], price_object["low"], price_object["volume"]) == crypto[1:]
    # Finnhub: the quote's day open/high/low; no volume for a day whose start this server did not see.
    stock = ticks(frames, "AAPL")
    assert day_fields(stock[0]) == (2, 189.0, 190.5, 188.5, None)
    assert all(day_fields(tick)[1:] == (189.0, 190.5, 188.5, None) for tick in stock)
    assert every["AAPL"]["open"] == 189.0 and every["AAPL"]["volume"] is None


async def test_finnhub_volume_sums_the_days_trades_when_the_connection_saw_the_whole_day() -> None:
    finnhub = FakeFinnhub(quote_ts=next_new_york_midnight() + 9 * 3600)  # trades of a day that starts later
    binance = FakeBinance()
    with trio.fail_after(30):
        async with (
            upstreams(binance, finnhub) as rest_url,
            live_server(live_settings(binance, finnhub, rest_url)) as address,
            open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws,
        ):
            await ws.send_message(orjson.dumps({"action": "subscribe", "symbol": "AAPL"}).decode())
            frames = await frames_until(ws, lambda f: len(ticks(f, "AAPL")) >= 4)
    volumes = [tick["volume"] for tick in ticks(frames, "AAPL")]
    assert all(isinstance(volume, float) for volume in volumes)  # the snapshot's too: the day is seen whole
    # Each batch of the fake trades one share: the count goes up by one per tick after the snapshot.
    assert [later - earlier for earlier, later in itertools.pairwise(volumes[1:])] == [1.0] * (len(volumes) - 2)


async def test_the_demo_feed_reports_its_walks_24h_statistics() -> None:
    settings = make_settings(demo_interval=0.05)
    with trio.fail_after(WAIT):
        async with serve_app(create_app(settings), settings) as address, httpx.AsyncClient() as client:
            async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
                await ws.send_message(orjson.dumps({"action": "subscribe", "symbol": "ETHUSDT"}).decode())
                frames = await frames_until(ws, lambda f: len(ticks(f, "ETHUSDT")) >= 10)
            rest = (await client.get(f"http://{address}/price", params={"symbol": "ETHUSDT"})).json()
    seen = ticks(frames, "ETHUSDT")
    assert all(tick["precision"] == 2 and tick["low"] <= tick["price"] <= tick["high"] for tick in seen)
    assert [tick["volume"] for tick in seen] == sorted(tick["volume"] for tick in seen)  # within 24 h it only adds
    assert seen[-1]["volume"] > seen[0]["volume"] > 0
    assert rest["open"] == seen[0]["open"] and rest["volume"] >= seen[-1]["volume"]
