"""A live-mode server against the fake Binance and Finnhub servers on localhost, and a client's view of it.

`upstreams` starts both fakes, `live_settings` points a server at them, `live_server` serves it on port 0;
`frames_until` reads a WebSocket until a condition holds, within a bound (real sockets: every wait is bounded).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from trio_websocket import WebSocketConnection

from tests.fakes.binance_server import FakeBinance
from tests.fakes.finnhub_server import FakeFinnhub
from tests.support.helpers import make_settings
from tests.support.live_server import serve_app
from trio_ticker.app import create_app
from trio_ticker.settings import Settings

WAIT = 10.0  # every wait on a real socket is bounded


@asynccontextmanager
async def upstreams(binance: FakeBinance, finnhub: FakeFinnhub) -> AsyncIterator[str]:
    """Start both fakes; yields the REST base URL."""
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(binance.serve)
        await nursery.start(finnhub.serve_ws)
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        binds = await nursery.start(partial(serve, finnhub.rest_app(), config, shutdown_trigger=shutdown.wait))
        try:
            yield binds[0] + "/api/v1"
        finally:
            shutdown.set()
            nursery.cancel_scope.cancel()


def live_settings(binance: FakeBinance, finnhub: FakeFinnhub, rest_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "demo_mode": False,
        "finnhub_api_key": finnhub.api_key,
        "binance_ws_url": binance.url,
        "finnhub_ws_url": finnhub.ws_url,
        "finnhub_rest_url": rest_url,
        "stock_symbols": "AAPL",
        "crypto_symbols": "BTCUSDT",
        "default_symbol": "BTCUSDT",
        "reconnect_initial_delay": 0.2,
        "reconnect_max_delay": 0.5,
        "upstream_connect_timeout": 5.0,
        "binance_stale_after": 1.0,
    }
    return make_settings(**(values | overrides))


@asynccontextmanager
async def live_server(settings: Settings) -> AsyncIterator[str]:
    async with serve_app(create_app(settings), settings) as address:
        yield address


async def frames_until(ws: WebSocketConnection, done: Any, limit: float = WAIT) -> list[dict[str, Any]]:
    """Read frames until `done(frames)` is true (bounded by `limit` seconds)."""
    frames: list[dict[str, Any]] = []
    with trio.fail_after(limit):
        while not done(frames):
            frames.append(orjson.loads(await ws.get_message()) | {"_at": trio.current_time()})
    return frames


def ticks(frames: list[dict[str, Any]], symbol: str) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame.get("type") == "tick" and frame["ticker"] == symbol]
