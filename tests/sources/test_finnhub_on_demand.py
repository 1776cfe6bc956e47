"""Finnhub subscriptions follow the clients, against the fake Finnhub (WebSocket + REST quote) on localhost:
subscribe and unsubscribe on the open connection, the first price from the REST quote, and the plan's symbol
limit (TICKER_FINNHUB_MAX_SYMBOLS) answered `upstream_rejected` without asking upstream.

Clients are in-memory sessions; the upstream is real sockets, so no autojump clock; every wait is bounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from pydantic import SecretStr

from tests.fakes.finnhub_server import FakeFinnhub
from tests.support.demand import DemandDelivery, ListedDirectory
from tests.support.memory_transport import MemoryTransport
from trio_ticker.sources.finnhub_feed import FinnhubFeed
from trio_ticker.sources.finnhub_quotes import finnhub_limiter
from trio_ticker.sources.sockets import websocket_opener

CONFIGURED = ("AAPL",)
LISTED = ("AAPL", "MSFT", "TSLA", "NVDA")
WAIT = 20.0


@asynccontextmanager
async def on_demand_finnhub(
    fake: FakeFinnhub, *, max_symbols: int = 50, linger: float = 60.0
) -> AsyncIterator[tuple[trio.Nursery, DemandDelivery]]:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.serve_ws)
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        binds = await nursery.start(partial(serve, fake.rest_app(), config, shutdown_trigger=shutdown.wait))
        feed = FinnhubFeed(
            CONFIGURED,
            ws_url=fake.ws_url,
            rest_url=binds[0] + "/api/v1",
            api_key=SecretStr(fake.api_key),
            open_socket=websocket_opener(connect_timeout=5.0),
            limiter=finnhub_limiter(60, 30),
            max_symbols=max_symbols,
        )
        delivery = DemandDelivery([feed], ListedDirectory("finnhub", LISTED), always_on=CONFIGURED, linger=linger)
        await delivery.start(nursery)
        yield nursery, delivery
        shutdown.set()
        nursery.cancel_scope.cancel()


async def open_client(nursery: trio.Nursery, delivery: DemandDelivery) -> MemoryTransport:
    transport = MemoryTransport(client_window=10_000)
    await nursery.start(delivery.session(transport, peer="test").run)
    return transport


async def first_message(transport: MemoryTransport, wanted: Callable[[dict], bool]) -> dict:  # type: ignore[type-arg]
    while not wanted(message := await transport.client_receive()):
        pass
    return message


async def wait_until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(WAIT):
        while not condition():
            await trio.sleep(0.02)


async def test_a_new_symbol_is_subscribed_live_and_its_first_price_comes_from_the_quote() -> None:
    fake = FakeFinnhub(trades=False, prices={"AAPL": 189.5, "TSLA": 251.25})
    with trio.fail_after(WAIT):
        async with on_demand_finnhub(fake, linger=0.2) as (nursery, delivery):
            connections = fake.connections
            transport = await open_client(nursery, delivery)
            await transport.client_send({"action": "subscribe", "symbols": ["TSLA"]})
            tick = await first_message(transport, lambda m: m.get("type") == "tick" and m["ticker"] == "TSLA")
            assert tick["price"] == 251.25  # no trade streams in this test: the quote's price
            assert fake.connections == connections and fake.live == ["AAPL", "TSLA"]
            assert "TSLA" in [symbol for _, symbol in fake.quote_calls]
            await transport.client_send({"action": "unsubscribe", "symbols": ["TSLA"]})
            await wait_until(lambda: fake.live == ["AAPL"])  # after the linger
            assert fake.unsubscribed == ["TSLA"]


async def test_past_the_plans_symbol_limit_a_symbol_gets_upstream_rejected() -> None:
    fake = FakeFinnhub(max_symbols=2)
    with trio.fail_after(WAIT):
        async with on_demand_finnhub(fake, max_symbols=2) as (nursery, delivery):
            transport = await open_client(nursery, delivery)
            await transport.client_send({"action": "subscribe", "symbols": ["TSLA"]})
            await first_message(transport, lambda m: m.get("type") == "tick" and m["ticker"] == "TSLA")
            await transport.client_send({"action": "subscribe", "symbols": ["NVDA"]})
            error = await first_message(transport, lambda m: m.get("type") == "error")
            assert error["code"] == "upstream_rejected" and error["symbol"] == "NVDA"
            assert "at most 2 symbols" in error["message"]
            assert fake.subscribed == ["AAPL", "TSLA"]  # never asked upstream
            assert delivery.demand.active() == {"AAPL", "TSLA"}
