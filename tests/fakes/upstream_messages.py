"""What the scripted upstreams say: Binance frames and subscription acks for a memory upstream's scripts, and
Finnhub's REST quote as an httpx mock transport. Only for autojump-clock tests: nothing here touches the network."""

from __future__ import annotations

import httpx
import orjson
import trio

from tests.fakes.memory_upstream import MemoryServerSide


def mini_ticker(symbol: str, last: str, open_: str) -> str:
    data = {"e": "24hrMiniTicker", "E": 1, "s": symbol, "c": last, "o": open_}
    return orjson.dumps({"stream": f"{symbol.lower()}@miniTicker", "data": data}).decode()


def trade(symbol: str, price: str) -> str:
    data = {"e": "trade", "E": 2, "s": symbol, "t": 1, "p": price, "q": "1", "T": 2, "m": True, "M": True}
    return orjson.dumps({"stream": f"{symbol.lower()}@trade", "data": data}).decode()


async def acknowledge_subscriptions(server: MemoryServerSide, count: int = 1) -> None:
    for _ in range(count):
        request = orjson.loads(await server.receive())
        await server.send(orjson.dumps({"result": None, "id": request["id"]}))


def quote_app(answers: list[httpx.Response], seen: list[tuple[float, str]]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((trio.current_time(), request.headers.get("X-Finnhub-Token", "")))
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return httpx.MockTransport(handle)
