"""A real live-mode server against the fake Binance (stream and REST over real sockets): the chart's
history is there at once, in Binance's own numbers, and live trades carry on from it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from tests.fakes.binance_rest import FakeBinanceRest, fake_kline
from tests.fakes.binance_server import FakeBinance
from tests.support.helpers import make_settings
from tests.support.live_server import serve_app
from trio_ticker.app import create_app

pytestmark = pytest.mark.slow
WAIT = 20.0


@asynccontextmanager
async def fake_binance(stream: FakeBinance, rest: FakeBinanceRest) -> AsyncIterator[str]:
    """Both fakes on port 0; yields the REST base URL."""
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(stream.serve)
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        binds = await nursery.start(partial(serve, rest.rest_app(), config, shutdown_trigger=shutdown.wait))
        try:
            yield binds[0]
        finally:
            shutdown.set()
            nursery.cancel_scope.cancel()


async def candles(address: str, interval: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://{address}/candles?symbol=BTCUSDT&interval={interval}&limit=1000")
    assert response.status_code == 200, response.text
    return response.json()["candles"]  # type: ignore[no-any-return]


async def test_a_fresh_live_server_serves_binances_klines_then_its_own_candles(tmp_path: Path) -> None:
    stream, rest = FakeBinance(prices={"BTCUSDT": "96500.00"}), FakeBinanceRest(symbols=("BTCUSDT",))
    async with fake_binance(stream, rest) as rest_url:
        settings = make_settings(
            demo_mode=False,
            stock_symbols="",
            crypto_symbols="BTCUSDT",
            binance_ws_url=stream.url,
            binance_rest_url=rest_url,
            backfill=True,
            backfill_candles=30,
            data_dir=tmp_path,
            history_flush_interval=0.2,
            upstream_connect_timeout=5.0,
        )
        async with serve_app(create_app(settings), settings) as address:
            with trio.fail_after(WAIT):
                while len(hours := [c for c in await candles(address, "1h") if c["closed"]]) < 30:
                    await trio.sleep(0.1)
            for candle in hours:  # Binance's numbers, exactly
                row = fake_kline("BTCUSDT", "1h", candle["open_time"])
                assert [candle[k] for k in ("open", "high", "low", "close", "volume")] == row[1:6]
                assert (candle["trades"], candle["close_time"]) == (row[8], row[6])
            now = int(time.time() * 1000)
            assert hours[-1]["open_time"] == now - now % 3_600_000 - 3_600_000  # up to the last closed hour
            with trio.fail_after(WAIT):  # the hour still open is built from the live trades
                while not (current := (await candles(address, "1h"))[-1])["trades"]:
                    await trio.sleep(0.1)
            assert not current["closed"] and Decimal(current["volume"]) == Decimal("0.1") * current["trades"]
    requested = {query["interval"] for _, query in rest.requests}
    assert requested == {"1s", "1m", "5m", "15m", "1h", "4h", "1d"}
    assert all(int(query["limit"]) <= 1000 for _, query in rest.requests)
