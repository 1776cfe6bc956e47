"""The delivery path's own CPU per frame, without sockets, for docs/benchmarks.md: the hub's fan-out, the outboxes,
the writers, the flush pacer and the sessions, as `trio_ticker.app.assemble` wires them, over a transport whose send
only counts (and checkpoints, as a real one does), on trio's mock clock.

Everything Hypercorn and the kernel would spend is left out, and the clock is virtual, so the figure moves with the
machine's speed but not with its load: two commits compare by running this in each tree by turns.
"""

from __future__ import annotations

import argparse
import gc
import time
from decimal import Decimal

import trio
import trio.testing

from trio_ticker.delivery.hub import Hub
from trio_ticker.delivery.pacing import FlushPacer
from trio_ticker.delivery.slow_clients import SlowClientReaper
from trio_ticker.edge.session import ClientSession
from trio_ticker.history.book import CandleBook
from trio_ticker.history.live import LiveCandles
from trio_ticker.model import Ingest, Mode, PriceUpdate

SYMBOL = "BTCUSDT"
START_S = 1_763_640_000.0  # a wall-clock epoch for the candles' times (the clock is virtual)


class CountingTransport:
    frames = 0

    async def receive(self) -> str | bytes:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(self, frame: str) -> None:
        CountingTransport.frames += 1
        await trio.lowlevel.checkpoint()

    async def close(self, code: int, reason: str) -> None:
        pass


async def measure(clients: int, ticks: int, rate: float, batch: bool, history: bool) -> tuple[int, float]:
    """(frames sent, CPU seconds) for `ticks` ticks at `rate` per second to `clients` subscribers; with `history`,
    every tick is folded into the candle book and the live candle task runs, as with the store on."""
    pacer, reaper = FlushPacer(0.05), SlowClientReaper(10.0)
    start = trio.current_time()
    wall_clock = lambda: START_S + trio.current_time() - start  # noqa: E731
    book = CandleBook((SYMBOL,))
    candles = LiveCandles(book, flush_interval=0.05, wall_clock=wall_clock) if history else None
    hub = Hub((SYMBOL,), client_buffer=256 if batch else 16, reaper=reaper, candles=candles)
    _, no_sources = trio.open_memory_channel[Ingest](0)
    async with trio.open_nursery() as nursery:
        if candles is not None:
            await nursery.start(candles.run)
        await nursery.start(pacer.run)
        await nursery.start(reaper.run, hub.evict_slow_client)
        await nursery.start(hub.run, no_sources)
        for _ in range(clients):
            session = ClientSession(CountingTransport(), hub, pacer, close_timeout=1.0, batch=batch)
            hub.subscribe(await nursery.start(session.run), (SYMBOL,))
        await trio.sleep(1)
        CountingTransport.frames = 0
        started = time.process_time()
        for index in range(ticks):
            now_ms = int(wall_clock() * 1000)
            hub.publish(PriceUpdate(SYMBOL, 100.0 + index % 7, 100.0, now_ms, Mode.DEMO, volume=Decimal("0.5")))
            await trio.sleep(1 / rate)
        cpu = time.process_time() - started
        nursery.cancel_scope.cancel()
    return CountingTransport.frames, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--rate", type=float, default=20.0, help="ticks per (virtual) second")
    parser.add_argument("--single", action="store_true", help="single-frame clients instead of batching ones")
    parser.add_argument("--history", choices=["on", "off"], default="off", help="fold every tick into candles")
    args = parser.parse_args()
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 1_000, 100)  # the server's default (TICKER_GC_THRESHOLDS)
    frames, cpu = trio.run(
        measure,
        args.clients,
        args.ticks,
        args.rate,
        not args.single,
        args.history == "on",
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
    mode = "single" if args.single else "batch"
    history = " history on" if args.history == "on" else ""
    per_frame = cpu / frames * 1e6
    print(f"delivery {mode} {args.clients}x{args.rate:g}{history}: {frames} frames, {per_frame:.2f} us CPU/frame")


if __name__ == "__main__":
    main()
