"""A fake Finnhub on localhost: the trade WebSocket (trio-websocket), the REST quote and the stock-symbol
list (Quart-Trio).

It honours subscribe and unsubscribe at any time (`live` is what the open connection streams now; past
`max_symbols` it answers Finnhub's error message and streams nothing more). Scriptable per test: the
accepted key (anything else gets a 401 handshake / 401 JSON), trades per symbol, pings and error
messages, a queue of REST answers per symbol (429 with Retry-After, all-zero quotes) before the normal
quote, and a queue of answers to `/stock/symbol` (500, 429, raw garbage bytes) before the list (the
documented sample unless a test sets `stock_symbols`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import trio
from quart import Response, request
from quart_trio import QuartTrio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from tests.fakes.catalogues import stock_symbols_sample


@dataclass
class FakeFinnhub:
    api_key: str = "test-key"
    interval: float = 0.05
    prices: dict[str, float] = field(default_factory=lambda: {"AAPL": 189.5, "MSFT": 418.3})
    previous_close: float = 188.0
    quote_ts: int = 1_700_000_000
    rest_script: dict[str, list[tuple[int, Any, dict[str, str]]]] = field(default_factory=dict)
    trades: bool = True
    extra_frames: list[str] = field(default_factory=list)  # sent once after subscribing
    connections: int = 0
    rejected: int = 0
    subscribed: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)  # the open connection's symbols
    max_symbols: int | None = None
    quote_calls: list[tuple[float, str]] = field(default_factory=list)
    stock_symbols: list[dict[str, Any]] = field(default_factory=stock_symbols_sample)
    symbol_script: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)  # bytes: sent raw
    symbol_calls: list[tuple[float, str]] = field(default_factory=list)  # (trio time, exchange)
    ws_port: int = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    async def serve_ws(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            listening = await nursery.start(serve_websocket, self._handle, "127.0.0.1", 0, None)
            self.ws_port = listening.port
            task_status.started()

    async def _handle(self, ws_request: WebSocketRequest) -> None:
        token = parse_qs(urlsplit(ws_request.path).query).get("token", [""])[0]
        if token != self.api_key:
            self.rejected += 1
            await ws_request.reject(401, body=b'{"error":"Invalid API key."}')
            return
        self.connections += 1
        ws = await ws_request.accept()
        try:
            async with trio.open_nursery() as nursery:
                symbols = self.live = []
                nursery.start_soon(self._read_subscriptions, ws, symbols)
                for frame in self.extra_frames:
                    await ws.send_message(frame)
                await self._stream_trades(ws, symbols)
        except* ConnectionClosed:
            pass

    async def _read_subscriptions(self, ws: WebSocketConnection, symbols: list[str]) -> None:
        while True:
            message = orjson.loads(await ws.get_message())
            if message.get("type") == "subscribe":
                if self.max_symbols is not None and len(symbols) >= self.max_symbols:
                    await ws.send_message('{"type":"error","msg":"Subscribing to too many symbols"}')
                    continue
                symbols.append(message["symbol"])
                self.subscribed.append(message["symbol"])
            elif message.get("type") == "unsubscribe" and message["symbol"] in symbols:
                symbols.remove(message["symbol"])
                self.unsubscribed.append(message["symbol"])

    async def _stream_trades(self, ws: WebSocketConnection, symbols: list[str]) -> None:
        for step in itertools.count(1):
            await trio.sleep(self.interval)
            if not self.trades or not symbols:
                continue
            now_ms = (self.quote_ts + 60) * 1000 + step
            data = [
                {"p": round(self.prices.get(symbol, 100.0) + step % 7 / 100, 2), "s": symbol, "t": now_ms, "v": 1}
                for symbol in symbols
            ]
            await ws.send_message(orjson.dumps({"type": "trade", "data": data}).decode())

    def rest_app(self) -> QuartTrio:
        app = QuartTrio(__name__)

        @app.get("/api/v1/quote")
        async def quote() -> Response:
            symbol = request.args.get("symbol", "")
            self.quote_calls.append((trio.current_time(), symbol))
            price = self.prices.get(symbol, 100.0)
            body = {"c": price, "d": 1.5, "dp": 0.8, "h": price + 1, "l": price - 1, "o": price - 0.5}
            return self._answer(self.rest_script.get(symbol), body | {"pc": self.previous_close, "t": self.quote_ts})

        @app.get("/api/v1/stock/symbol")
        async def stock_symbols() -> Response:
            exchange = request.args.get("exchange", "")
            self.symbol_calls.append((trio.current_time(), exchange))
            return self._answer(self.symbol_script, self.stock_symbols if exchange == "US" else [])

        return app

    def _answer(self, script: list[tuple[int, Any, dict[str, str]]] | None, body: Any) -> Response:
        """401 for a wrong key, else the script's next answer (bytes are sent raw), else `body`."""
        status, headers = 200, {}
        if request.headers.get("X-Finnhub-Token") != self.api_key:
            status, body = 401, {"error": "Invalid API key."}
        elif script:
            status, body, headers = script.pop(0)
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        return Response(raw, status, headers=headers, content_type="application/json")


ALL_ZERO_QUOTE = {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}
