"""The floor for docs/benchmarks.md: Hypercorn's trio worker and trio_ticker's flush pacer, nothing else.

Plain ASGI: a timer feed appends each tick (encoded once) to one shared list, and each client's task takes
its turn at the same `FlushPacer` trio_ticker uses and sends everything appended since its last frame as one
batch frame. No hub, no outbox, no session, no limits: what it delivers is what Hypercorn and trio alone
deliver on this machine at the same pacing, so trio_ticker's frame rate divided by this one is what the
application's own work costs, independent of how fast the machine happens to be during the run.
Run: `python bench/bare_server.py --port 0 --interval 0.05`; it logs `event=serving urls=...`.
"""

from __future__ import annotations

import argparse
from typing import Any

import trio
from baseline import serve_and_announce, serve_other_scopes, tick_on_schedule

from trio_ticker.delivery.pacing import FlushPacer


class SharedLogBroadcaster:
    def __init__(self, symbol: str, interval: float, flush_interval: float) -> None:
        self.symbol = symbol
        self.interval = interval
        self.pacer = FlushPacer(flush_interval)
        self.frames: list[str] = []  # every tick of the run, encoded once (a benchmark run is short)
        self._new_frame = trio.Event()

    async def run_feed(self) -> None:
        await tick_on_schedule(self.symbol, self.interval, self.frames.append, self._wake_writers)

    def _wake_writers(self) -> None:
        self._new_frame.set()
        self._new_frame = trio.Event()

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await serve_other_scopes(scope, receive, send):
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        if (await receive())["type"] != "websocket.receive":  # the first message is the subscription
            return
        await send({"type": "websocket.send", "text": '{"type":"subscribed"}'})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._write, send)
            while (await receive())["type"] == "websocket.receive":
                pass
            nursery.cancel_scope.cancel()

    async def _write(self, send: Any) -> None:
        frames, cursor, flushed_at = self.frames, len(self.frames), None
        while True:
            await self.pacer.wait_turn(flushed_at)
            while cursor == len(frames):
                await self._new_frame.wait()
            flushed_at = trio.current_time()
            batch = frames[cursor:]
            cursor += len(batch)
            await send({"type": "websocket.send", "text": "[" + ",".join(batch) + "]"})


async def main(args: argparse.Namespace) -> None:
    broadcaster = SharedLogBroadcaster(args.symbol, args.interval, args.flush_interval)
    async with trio.open_nursery() as nursery:
        await nursery.start(broadcaster.pacer.run)
        nursery.start_soon(broadcaster.run_feed)
        await serve_and_announce(nursery, broadcaster.app, args.port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between ticks")
    parser.add_argument("--flush-interval", type=float, default=0.05, help="trio_ticker's default batch flush interval")
    parser.add_argument("--symbol", default="BTCUSDT")
    trio.run(main, parser.parse_args())
