"""The application's own CPU per frame in each single-frame dialect, in one process: no Hypercorn, no sockets.

The hub and N real client sessions (one symbol, single frames) over a transport whose send is one checkpoint;
the hub publishes at a fixed rate for a few seconds; the process's CPU seconds per frame sent. The two dialects
alternate round by round, so a shared machine's swings move both alike (docs/benchmarks.md, "The method").
Run: `python bench/dialect_cost.py --rounds 6`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import trio

from trio_ticker.delivery.hub import Hub
from trio_ticker.delivery.pacing import FlushPacer
from trio_ticker.delivery.slow_clients import SlowClientReaper
from trio_ticker.edge.session import ClientSession
from trio_ticker.model import Ingest, Mode, PriceUpdate
from trio_ticker.protocol.dialects import Dialect

SYMBOL = "BTCUSDT"
SETTLE_SECONDS = 0.5  # the snapshots go out before the measured window


class CountingTransport:
    """A client that reads everything at once: each send is one checkpoint, as an uncontended socket write."""

    def __init__(self) -> None:
        self.frames = 0
        self.characters = 0

    async def receive(self) -> str | bytes:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(self, frame: str) -> None:
        self.frames += 1
        self.characters += len(frame)
        await trio.lowlevel.checkpoint()

    async def close(self, code: int, reason: str) -> None:
        pass


async def measure(dialect: Dialect, clients: int, rate: float, seconds: float) -> tuple[float, float, float]:
    """Microseconds of CPU per frame, frames per second and characters per frame for one dialect."""
    pacer, reaper = FlushPacer(0.05), SlowClientReaper(10.0)
    hub = Hub((SYMBOL,), client_buffer=16, reaper=reaper)
    transports = [CountingTransport() for _ in range(clients)]
    _, no_sources = trio.open_memory_channel[Ingest](0)
    async with trio.open_nursery() as nursery:
        await nursery.start(pacer.run)
        await nursery.start(reaper.run, hub.evict_slow_client)
        await nursery.start(hub.run, no_sources)
        for transport in transports:
            if dialect is Dialect.PROTOTYPE:  # a listening prototype client: the default symbol, at once
                session = ClientSession(
                    transport,
                    hub,
                    pacer,
                    close_timeout=1,
                    dialect=dialect,
                    default_symbols=(SYMBOL,),
                    default_symbols_delay=0,
                )
                await nursery.start(session.run)
            else:
                hub.subscribe(await nursery.start(ClientSession(transport, hub, pacer, close_timeout=1).run), (SYMBOL,))
        price = 96_500.0
        hub.publish(PriceUpdate(SYMBOL, price, 96_000.0, int(time.time() * 1000), Mode.DEMO))
        await trio.sleep(SETTLE_SECONDS)
        frames_before = sum(transport.frames for transport in transports)
        characters_before = sum(transport.characters for transport in transports)
        cpu_before, started = time.process_time(), trio.current_time()
        published = 0
        while trio.current_time() - started < seconds:
            published += 1
            price += 0.5 if published % 3 else -1.25  # up, up, down: both signs of the prototypes' change
            hub.publish(PriceUpdate(SYMBOL, price, 96_000.0, int(time.time() * 1000), Mode.DEMO))
            await trio.sleep_until(started + published / rate)
        cpu = time.process_time() - cpu_before
        frames = sum(transport.frames for transport in transports) - frames_before
        characters = sum(transport.characters for transport in transports) - characters_before
        nursery.cancel_scope.cancel()
    return 1e6 * cpu / max(frames, 1), frames / seconds, characters / max(frames, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="ticks per second")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run")
    args = parser.parse_args()
    costs: dict[Dialect, list[float]] = {Dialect.FULL: [], Dialect.PROTOTYPE: []}
    for round_number in range(1, args.rounds + 1):
        order = (Dialect.FULL, Dialect.PROTOTYPE) if round_number % 2 else (Dialect.PROTOTYPE, Dialect.FULL)
        for dialect in order:
            cost, frames_per_second, size = trio.run(measure, dialect, args.clients, args.rate, args.seconds)
            costs[dialect].append(cost)
            print(
                f"round {round_number} {dialect.value:9} {cost:6.2f} us/frame {frames_per_second:9,.0f} frames/s "
                f"{size:4.0f} characters/frame",
                flush=True,
            )
    for dialect, values in costs.items():
        spread = f"{min(values):.2f}-{max(values):.2f}"
        print(f"{dialect.value:9} median {statistics.median(values):.2f} us/frame ({spread})")
    ratios = [prototype / full for prototype, full in zip(costs[Dialect.PROTOTYPE], costs[Dialect.FULL], strict=True)]
    each = " ".join(f"{ratio:.3f}" for ratio in ratios)
    print(f"prototype / full, round by round: {each}; median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
