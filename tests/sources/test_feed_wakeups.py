"""Under load every scheduler pass is slow, so a live source must take everything already received in ONE
wake-up and hand it to the hub without a checkpoint: counted here with a Trio instrument over memory sockets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import orjson
import trio
import trio.testing
from pydantic import SecretStr

from tests.fakes.memory_upstream import MemoryServerSide, MemoryUpstream
from tests.fakes.upstream_messages import acknowledge_subscriptions, mini_ticker, quote_app, trade
from trio_ticker.model import Ingest, PriceUpdate
from trio_ticker.sources.binance_feed import BinanceFeed
from trio_ticker.sources.finnhub_feed import FinnhubFeed
from trio_ticker.sources.finnhub_quotes import finnhub_limiter
from trio_ticker.sources.source import FeedOutput

BURST = 40


class TaskSteps(trio.abc.Instrument):
    """Counts the steps (wake-ups) of the tasks whose name ends with `suffix`."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith(self.suffix):
            self.steps += 1


async def steps_to_take_a_burst(
    upstream: MemoryUpstream,
    run_connection: Callable[..., Awaitable[None]],
    reader_task: str,
    frames: list[str | bytes],
) -> tuple[int, list[float]]:
    """Start a connection, park its reader, queue `frames` at once; return the reader's wake-ups and the prices."""
    send, receive = trio.open_memory_channel[Ingest](4 * BURST)  # the hub keeps up: room for all
    feed = FeedOutput("test", ("BTCUSDT", "AAPL"), send, wall_clock=lambda: 1_700_000_000.0)
    counter = TaskSteps(reader_task)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(run_connection, feed)
            await trio.testing.wait_all_tasks_blocked()
            while True:  # what the connection published while it started
                try:
                    receive.receive_nowait()
                except trio.WouldBlock:
                    break
            trio.lowlevel.add_instrument(counter)
            try:
                upstream.servers[0].send_all_nowait(frames)
                await trio.testing.wait_all_tasks_blocked()
            finally:
                trio.lowlevel.remove_instrument(counter)
            nursery.cancel_scope.cancel()
    prices = []
    while True:
        try:
            item = receive.receive_nowait()
        except trio.WouldBlock:
            break
        if isinstance(item, PriceUpdate):
            prices.append(item.price)
    return counter.steps, prices


async def test_binance_publishes_a_queued_burst_after_one_wake_up() -> None:
    async def subscribed(server: MemoryServerSide) -> None:
        await acknowledge_subscriptions(server)
        await server.send(mini_ticker("BTCUSDT", "99", "98"))  # the open, so trades become prices
        await trio.sleep_forever()

    upstream = MemoryUpstream(subscribed)
    feed = BinanceFeed(("BTCUSDT",), base_url="wss://b.test", open_socket=upstream.open_socket, max_connection_age=3600)
    frames: list[str | bytes] = [trade("BTCUSDT", f"{100 + n}") for n in range(BURST)]
    steps, prices = await steps_to_take_a_burst(upstream, feed.run_connection, "_StreamConnection._read", frames)
    assert prices == [float(100 + n) for n in range(BURST)]
    assert steps == 1  # one message per wake-up would be BURST steps


async def test_finnhub_publishes_a_queued_burst_after_one_wake_up() -> None:
    async def subscribed(server: MemoryServerSide) -> None:
        await server.receive()
        await trio.sleep_forever()

    quote = {"c": 99.0, "d": 1, "dp": 1, "h": 99, "l": 98, "o": 98, "pc": 98, "t": 1_600_000_000}
    upstream = MemoryUpstream(subscribed)
    feed = FinnhubFeed(
        ("AAPL",),
        ws_url="wss://finnhub.test",
        rest_url="https://finnhub.test/api/v1",
        api_key=SecretStr("k"),
        open_socket=upstream.open_socket,
        limiter=finnhub_limiter(),
        http_transport=quote_app([httpx.Response(200, json=quote)], []),
    )
    frames: list[str | bytes] = [
        orjson.dumps({"type": "trade", "data": [{"p": 100 + n, "s": "AAPL", "t": 1_700_000_000_000 + n, "v": 1}]})
        for n in range(BURST)
    ]
    steps, prices = await steps_to_take_a_burst(upstream, feed.run_connection, "FinnhubFeed._read", frames)
    assert prices == [float(100 + n) for n in range(BURST)]
    assert steps == 1
