"""A fake Binance REST market-data API: `GET /api/v3/klines`, `/api/v3/exchangeInfo` and `/api/v3/ticker/24hr` in
the real wire format.

Klines are made up deterministically from the symbol and the time (so any run agrees with any
other), selected as Binance selects them (`startTime`, `endTime`, `limit` up to 1000, the open
interval last); exchangeInfo answers `exchange_info` (the documented sample unless a test sets one).
Scriptable: answers to give first (429 / 418 with `Retry-After`, 5xx, raw bytes for garbage), a weight
budget per minute past which it answers 429 itself, and the `X-MBX-USED-WEIGHT-1M` header.
The same answers are served over HTTP (`rest_app`, for Hypercorn) or in memory (`transport`, for
the autojump clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import orjson
import trio
from quart import Response, request
from quart_trio import QuartTrio

from tests.fakes.catalogues import exchange_info_sample

INTERVAL_MS = {"1s": 1000, "1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000}
INTERVAL_MS["1d"] = 86_400_000
Answer = tuple[int, dict[str, str], Any]  # a body of bytes is sent as it is (garbage), anything else as JSON
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
WEIGHTS = {EXCHANGE_INFO_PATH: 20}  # every other route here weighs 2


def fake_price(symbol: str, ms: int) -> Decimal:
    """A price that moves with time, the same for every caller."""
    base = Decimal(96_500) if symbol.startswith("BTC") else Decimal(3_420)
    return base + Decimal((ms // 1000) % 997) / 100


def fake_kline(symbol: str, interval: str, open_time: int) -> list[Any]:
    length = INTERVAL_MS[interval]
    first, last = fake_price(symbol, open_time), fake_price(symbol, open_time + length - 1)
    high, low = max(first, last) + Decimal("0.5"), min(first, last) - Decimal("0.5")
    volume = Decimal(length // 1000) / 8
    return [
        open_time, str(first), str(high), str(low), str(last), str(volume), open_time + length - 1,
        str(volume * first), length // 1000, str(volume / 2), str(volume * first / 2), "0",
    ]  # fmt: skip


@dataclass
class FakeBinanceRest:
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    weight_per_minute: int = 6000
    script: list[Answer] = field(default_factory=list)  # answered first, in order
    wall_clock: Callable[[], float] = time.time
    requests: list[tuple[float, dict[str, str]]] = field(default_factory=list)  # (trio time, query)
    exchange_info: dict[str, Any] = field(default_factory=exchange_info_sample)
    paths: list[tuple[float, str]] = field(default_factory=list)  # (trio time, path) of every request
    _minute: int = -1
    _used: int = 0

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        self.requests.append((trio.current_time(), dict(query)))
        self.paths.append((trio.current_time(), path))
        minute = int(self.wall_clock() // 60)
        if minute != self._minute:
            self._minute, self._used = minute, 0
        self._used += WEIGHTS.get(path, 2)
        weight = {"X-MBX-USED-WEIGHT-1M": str(self._used)}
        if self.script:
            status, headers, body = self.script.pop(0)
            return status, {**weight, **headers}, body
        if self._used > self.weight_per_minute:
            retry_after = {"Retry-After": str(60 - int(self.wall_clock()) % 60)}
            return 429, {**weight, **retry_after}, {"code": -1003, "msg": "Too many requests."}
        if path == EXCHANGE_INFO_PATH:
            return 200, weight, self.exchange_info
        if path == "/api/v3/ticker/24hr":
            return self._ticker(query, weight)
        if path != "/api/v3/klines":
            return 404, weight, {"code": -1, "msg": "not found"}
        return self._klines(query, weight)

    def _klines(self, query: dict[str, str], weight: dict[str, str]) -> Answer:
        symbol, interval = query.get("symbol", ""), query.get("interval", "")
        if symbol not in self.symbols:
            return 400, weight, {"code": -1121, "msg": "Invalid symbol."}
        if interval not in INTERVAL_MS:
            return 400, weight, {"code": -1120, "msg": "Invalid interval."}
        length = INTERVAL_MS[interval]
        limit = min(int(query.get("limit", "500")), 1000)
        now = int(self.wall_clock() * 1000)
        newest = now - now % length  # the interval still open is the last row
        end = min(int(query["endTime"]), newest) if "endTime" in query else newest
        end -= end % length
        if "startTime" in query:
            start = int(query["startTime"])
            first = start + (-start) % length
            opens = list(range(first, end + 1, length))[:limit]
        else:
            opens = list(range(end - (limit - 1) * length, end + 1, length))
        return 200, weight, [fake_kline(symbol, interval, open_time) for open_time in opens]

    def _ticker(self, query: dict[str, str], weight: dict[str, str]) -> Answer:
        symbol = query.get("symbol", "")
        if symbol not in self.symbols:
            return 400, weight, {"code": -1121, "msg": "Invalid symbol."}
        now = int(self.wall_clock() * 1000)
        last, first = fake_price(symbol, now), fake_price(symbol, now - 86_400_000)
        body = {"symbol": symbol, "priceChange": str(last - first), "priceChangePercent": "0.1"}
        body |= {"prevClosePrice": str(first), "lastPrice": str(last), "openPrice": str(first)}
        body |= {"highPrice": str(max(first, last)), "lowPrice": str(min(first, last)), "volume": "1000.0"}
        body |= {"quoteVolume": "1000.0", "openTime": now - 86_400_000, "closeTime": now, "count": 1000}
        return 200, weight, body

    def rest_app(self) -> QuartTrio:
        app = QuartTrio(__name__)

        @app.get("/<path:path>")
        async def any_path(path: str) -> Response:
            status, headers, body = self.answer("/" + path, dict(request.args))
            return Response(_body(body), status, headers=headers, content_type="application/json")

        return app

    def transport(self) -> httpx.MockTransport:
        """The same answers without a socket, for tests on the autojump clock."""

        def handle(http_request: httpx.Request) -> httpx.Response:
            status, headers, body = self.answer(http_request.url.path, dict(http_request.url.params))
            return httpx.Response(status, headers=headers, content=_body(body))

        return httpx.MockTransport(handle)


def _body(body: Any) -> bytes:
    return body if isinstance(body, bytes) else orjson.dumps(body)
