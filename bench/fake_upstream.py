"""A fake Binance market-data server for the benchmark: combined-stream `@trade` events at a fixed rate.

Serves `/stream?streams=btcusdt@trade/...` (and `/ws/<stream>`) on localhost with trio-websocket and answers
live SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS, plus `@miniTicker` once a second. Each trade's `E`/`T` is its
send time, so a client can measure upstream send -> receipt. `python bench/fake_upstream.py --rate 50` logs its URL.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from functools import partial
from urllib.parse import parse_qs, urlsplit

import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket


class FakeBinance:
    def __init__(self, rate: float, seed: int) -> None:
        self._interval = 1.0 / rate
        self._random = random.Random(seed)
        self._trade_ids = itertools.count(1)
        self._prices: dict[str, float] = {}

    async def handle(self, request: WebSocketRequest) -> None:
        target = urlsplit(request.path)
        if target.path.startswith("/ws/"):
            streams = target.path.removeprefix("/ws/").split("/")
        else:
            streams = parse_qs(target.query).get("streams", [""])[0].split("/")
        combined = target.path.startswith("/stream")
        subscribed = {stream.lower() for stream in streams if stream}
        connection = await request.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._send_trades, connection, subscribed, combined)
            nursery.start_soon(self._send_mini_tickers, connection, subscribed, combined)
            try:
                while True:
                    await self._answer_control(connection, subscribed, await connection.get_message())
            except ConnectionClosed:
                nursery.cancel_scope.cancel()

    async def _answer_control(self, connection: WebSocketConnection, subscribed: set[str], text: str | bytes) -> None:
        try:
            command = orjson.loads(text)
            method, request_id = command["method"], command.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await connection.send_message('{"error":{"code":3,"msg":"Invalid JSON"},"id":null}')
            return
        params = [str(param).lower() for param in command.get("params", [])]
        result: object = None
        if method == "SUBSCRIBE":
            subscribed.update(params)
        elif method == "UNSUBSCRIBE":
            subscribed.difference_update(params)
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(subscribed)
        await connection.send_message(orjson.dumps({"result": result, "id": request_id}).decode())

    async def _send_trades(self, connection: WebSocketConnection, subscribed: set[str], combined: bool) -> None:
        """Send every due trade on schedule; when this task runs late it catches up instead of skipping."""
        next_trade = trio.current_time() + self._interval
        while True:
            await trio.sleep_until(next_trade)
            now = trio.current_time()
            while next_trade <= now:
                for stream in sorted(subscribed):
                    if stream.endswith("@trade"):
                        await connection.send_message(self._trade(stream, combined))
                next_trade += self._interval

    async def _send_mini_tickers(self, connection: WebSocketConnection, subscribed: set[str], combined: bool) -> None:
        """`@miniTicker` once a second, as Binance does: it carries the 24 h open a source needs first."""
        while True:
            for stream in sorted(subscribed):
                if stream.endswith("@miniticker"):
                    symbol = stream.split("@")[0].upper()
                    price = f"{self._prices.get(symbol, 96_500.0):.2f}"
                    data = {"e": "24hrMiniTicker", "E": int(time.time() * 1000), "s": symbol, "c": price,
                            "o": "96500.00", "h": price, "l": price, "v": "1000.0", "q": "96500000.0"}  # fmt: skip
                    event = {"stream": f"{symbol.lower()}@miniTicker", "data": data} if combined else data
                    await connection.send_message(orjson.dumps(event).decode())
            await trio.sleep(1.0)

    def _trade(self, stream: str, combined: bool) -> str:
        symbol = stream.split("@")[0].upper()
        price = self._prices.get(symbol, 96_500.0) * (1 + self._random.gauss(0.0, 0.0002))
        self._prices[symbol] = price
        now_ms = int(time.time() * 1000)
        data = {
            "e": "trade",
            "E": now_ms,
            "s": symbol,
            "t": next(self._trade_ids),
            "p": f"{price:.2f}",
            "q": f"{self._random.uniform(0.0001, 0.5):.5f}",
            "T": now_ms,
            "m": self._random.random() < 0.5,
            "M": True,
        }
        return orjson.dumps({"stream": stream, "data": data} if combined else data).decode()


async def main(args: argparse.Namespace) -> None:
    upstream = FakeBinance(args.rate, args.seed)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve_websocket, upstream.handle, "127.0.0.1", args.port, ssl_context=None)
        )
        print(f"event=serving url=ws://127.0.0.1:{server.port}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=50.0, help="trades per second per stream")
    parser.add_argument("--seed", type=int, default=7)
    trio.run(main, parser.parse_args())
