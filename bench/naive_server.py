"""The naive baseline for docs/benchmarks.md: one loop awaits each client's send in turn.

Plain ASGI under Hypercorn's trio worker, shaped like the FastAPI prototypes: a timer feed puts each
tick (encoded once) on an unbounded queue and the broadcaster awaits every client's send before the next.
Run: `python bench/naive_server.py --port 0 --interval 0.02`; it logs `event=serving urls=...`.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import trio
from baseline import serve_and_announce, serve_other_scopes, tick_on_schedule

SendCallable = Any


class Broadcaster:
    def __init__(self, symbol: str, interval: float) -> None:
        self.symbol = symbol
        self.interval = interval
        self.clients: dict[SendCallable, None] = {}
        # Unbounded on purpose: this is the prototypes' design that the benchmark compares against.
        self._send, self._receive = trio.open_memory_channel[str](math.inf)

    async def run_feed(self) -> None:
        await tick_on_schedule(self.symbol, self.interval, self._send.send_nowait)

    async def run_broadcast(self) -> None:
        async for frame in self._receive:
            for send in list(self.clients):
                try:
                    await send({"type": "websocket.send", "text": frame})
                except Exception:  # a broken client is dropped, like the prototypes did
                    self.clients.pop(send, None)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await serve_other_scopes(scope, receive, send):
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        try:
            while True:
                event = await receive()
                if event["type"] != "websocket.receive":
                    return
                if send not in self.clients:  # the first message is the subscription
                    await send({"type": "websocket.send", "text": '{"type":"subscribed"}'})
                    self.clients[send] = None
        finally:
            self.clients.pop(send, None)


async def main(args: argparse.Namespace) -> None:
    broadcaster = Broadcaster(args.symbol, args.interval)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(broadcaster.run_feed)
        nursery.start_soon(broadcaster.run_broadcast)
        await serve_and_announce(nursery, broadcaster.app, args.port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between ticks")
    parser.add_argument("--symbol", default="BTCUSDT")
    trio.run(main, parser.parse_args())
