"""Binance subscriptions follow the clients, against the fake Binance server on localhost: live SUBSCRIBE /
UNSUBSCRIBE, a refused symbol's subscribers told, floods paced under 5 messages a second per connection and
spread over connections of at most 1024 streams, and churn that leaves upstream exactly what is wanted.

Clients are in-memory sessions; the upstream is a real socket, so no autojump clock; every wait is bounded.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from tests.fakes.binance_rest import FakeBinanceRest
from tests.fakes.binance_server import FakeBinance
from tests.support.demand import DemandDelivery, ListedDirectory
from tests.support.memory_transport import MemoryTransport
from trio_ticker.delivery.outbox import ClientOutbox
from trio_ticker.protocol.dialects import Dialect
from trio_ticker.sources.binance_feed import BinanceFeed
from trio_ticker.sources.sockets import websocket_opener

CONFIGURED = ("BTCUSDT", "ETHUSDT")
WAIT = 20.0


def listed(count: int) -> list[str]:
    return [f"S{n}USDT" for n in range(count)]


@asynccontextmanager
async def on_demand_binance(
    fake: FakeBinance,
    directory_symbols: list[str],
    *,
    linger: float = 60.0,
    max_active: int = 2000,
    rest: FakeBinanceRest | None = None,
) -> AsyncIterator[tuple[trio.Nursery, DemandDelivery]]:
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.serve)
        rest_url = None
        if rest is not None:
            config = Config()
            config.bind, config.accesslog = ["127.0.0.1:0"], None
            rest_url = (await nursery.start(partial(serve, rest.rest_app(), config)))[0]
        feed = BinanceFeed(
            CONFIGURED,
            base_url=fake.url,
            open_socket=websocket_opener(connect_timeout=5.0),
            max_connection_age=3600,
            reply_timeout=5.0,
            rest_url=rest_url,
        )
        delivery = DemandDelivery(
            [feed],
            ListedDirectory("binance", [*CONFIGURED, *directory_symbols]),
            always_on=CONFIGURED,
            linger=linger,
            max_active=max_active,
            client_buffer=256,
            ingest_buffer=10_000,
        )
        await delivery.start(nursery)
        yield nursery, delivery
        nursery.cancel_scope.cancel()


async def open_client(nursery: trio.Nursery, delivery: DemandDelivery) -> tuple[MemoryTransport, ClientOutbox]:
    transport = MemoryTransport(client_window=100_000)
    outbox: ClientOutbox = await nursery.start(delivery.session(transport, peer="test").run)
    return transport, outbox


async def send(transport: MemoryTransport, action: str, symbols: list[str]) -> None:
    await transport.client_send({"action": action, "symbols": symbols})


async def first_message(transport: MemoryTransport, wanted: Callable[[dict], bool]) -> dict:  # type: ignore[type-arg]
    while not wanted(message := await transport.client_receive()):
        pass
    return message


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    with trio.fail_after(WAIT):
        while not condition():
            await trio.sleep(0.02)


async def test_a_subscribe_adds_the_streams_live_and_the_snapshot_follows_the_first_price() -> None:
    fake = FakeBinance(interval=0.2, prices={"DOGEUSDT": "0.12345"})
    with trio.fail_after(WAIT):
        async with on_demand_binance(fake, ["DOGEUSDT"]) as (nursery, delivery):
            connections = fake.connections
            transport, _ = await open_client(nursery, delivery)
            await send(transport, "subscribe", ["DOGEUSDT"])
            tick = await first_message(transport, lambda m: m.get("type") == "tick" and m["ticker"] == "DOGEUSDT")
            assert tick["price"] == 0.12345
            assert fake.connections == connections  # on the open connection
            assert ["dogeusdt@miniTicker", "dogeusdt@trade"] in fake.subscriptions
            await send(transport, "unsubscribe", ["DOGEUSDT"])
            await first_message(transport, lambda m: m.get("type") == "unsubscribed")
            assert delivery.demand.lingering() == {"DOGEUSDT"}
            assert "DOGEUSDT" in fake.subscribed_symbols()  # the linger keeps it upstream


async def test_the_first_price_comes_from_the_rest_ticker_when_the_stream_is_slow() -> None:
    fake = FakeBinance(interval=60.0)  # the stream's first event would come a minute later
    rest = FakeBinanceRest(symbols=("DOGEUSDT",))
    with trio.fail_after(WAIT):
        async with on_demand_binance(fake, ["DOGEUSDT"], rest=rest) as (nursery, delivery):
            transport, _ = await open_client(nursery, delivery)
            await send(transport, "subscribe", ["DOGEUSDT"])
            tick = await first_message(transport, lambda m: m.get("type") == "tick" and m["ticker"] == "DOGEUSDT")
            assert 3420 <= tick["price"] < 3430  # the fake REST ticker's price, not the stream's
            assert [query for _, query in rest.requests] == [{"symbol": "DOGEUSDT"}]  # configured ones: no call


async def test_the_linger_ending_unsubscribes_upstream() -> None:
    fake = FakeBinance(interval=0.2)
    with trio.fail_after(WAIT):
        async with on_demand_binance(fake, ["DOGEUSDT"], linger=0.3) as (nursery, delivery):
            transport, _ = await open_client(nursery, delivery)
            await send(transport, "subscribe", ["DOGEUSDT"])
            await wait_until(lambda: "DOGEUSDT" in fake.subscribed_symbols(), "subscribed")
            await send(transport, "unsubscribe", ["DOGEUSDT"])
            await wait_until(lambda: fake.subscribed_symbols() == set(CONFIGURED), "unsubscribed")
            assert delivery.demand.statistics().dropped == 1


async def test_a_symbol_the_upstream_refuses_gets_upstream_rejected_and_leaves_demand() -> None:
    fake = FakeBinance(interval=0.2, listed={*CONFIGURED, "DOGEUSDT", "SOLUSDT"})
    with trio.fail_after(WAIT):
        async with on_demand_binance(fake, ["DOGEUSDT", "SOLUSDT", "GONEUSDT"]) as (nursery, delivery):
            transport, outbox = await open_client(nursery, delivery)
            watcher, watcher_outbox = await open_client(nursery, delivery)
            await send(watcher, "subscribe", ["GONEUSDT"])
            await send(transport, "subscribe", ["DOGEUSDT", "GONEUSDT", "SOLUSDT"])
            for client in (transport, watcher):
                error = await first_message(client, lambda m: m.get("type") == "error")
                assert error["code"] == "upstream_rejected"
                assert error["symbol"] == "GONEUSDT"
            await first_message(transport, lambda m: m.get("type") == "tick" and m["ticker"] == "SOLUSDT")
            await wait_until(lambda: fake.subscribed_symbols() == {*CONFIGURED, "DOGEUSDT", "SOLUSDT"}, "the rest")
            assert "GONEUSDT" in fake.refused
            assert "GONEUSDT" not in outbox.subscriptions and "GONEUSDT" not in watcher_outbox.subscriptions
            assert delivery.demand.active() == {*CONFIGURED, "DOGEUSDT", "SOLUSDT"}
            assert delivery.hub.subscriber_count("GONEUSDT") == 0


async def test_a_prototype_dialect_subscriber_of_a_refused_symbol_gets_its_error_object() -> None:
    fake = FakeBinance(interval=0.2, listed=set(CONFIGURED))
    with trio.fail_after(WAIT):
        async with on_demand_binance(fake, ["GONEUSDT"]) as (nursery, delivery):
            transport = MemoryTransport(client_window=10_000)
            session = delivery.session(transport, peer="test", dialect=Dialect.PROTOTYPE)
            outbox: ClientOutbox = await nursery.start(session.run)
            await send(transport, "subscribe", ["GONEUSDT"])
            error = await first_message(transport, lambda m: "error" in m)
            assert error["code"] == "upstream_rejected" and "GONEUSDT" in error["error"]
            assert dict(outbox.subscriptions) == {}


async def test_an_unlisted_symbol_gets_unknown_symbol_with_no_upstream_traffic() -> None:
    fake = FakeBinance(interval=0.2)
    with trio.fail_after(WAIT):
        async with on_demand_binance(fake, ["DOGEUSDT"]) as (nursery, delivery):
            requests = list(fake.subscriptions)
            transport, _ = await open_client(nursery, delivery)
            await send(transport, "subscribe", ["NOPEUSDT"])
            error = await first_message(transport, lambda m: m.get("type") == "error")
            assert error["code"] == "unknown_symbol"
            await trio.sleep(0.5)  # what would have gone upstream has had time to
            assert fake.subscriptions == requests
            assert fake.refused == []


async def test_a_flood_of_500_new_symbols_within_a_second_stays_within_binances_limits() -> None:
    fake = FakeBinance(interval=1.0)
    symbols = listed(500)
    with trio.fail_after(60):
        async with on_demand_binance(fake, symbols) as (nursery, delivery):
            clients = [await open_client(nursery, delivery) for _ in range(100)]
            started = trio.current_time()
            for index, (transport, _) in enumerate(clients):
                await send(transport, "subscribe", symbols[index * 5 : index * 5 + 5])
            assert trio.current_time() - started < 1.0
            await wait_until(lambda: fake.subscribed_symbols() == {*CONFIGURED, *symbols}, "all 500")
    assert fake.closed_1008 == 0
    assert fake.peak_rate <= 5
    assert fake.peak_streams <= 1024
    assert fake.connections == 1  # 502 symbols are 1004 streams: one connection holds them


async def test_past_1024_streams_another_connection_opens() -> None:
    fake = FakeBinance(interval=1.0)
    symbols = listed(600)
    with trio.fail_after(60):
        async with on_demand_binance(fake, symbols) as (nursery, delivery):
            transport, _ = await open_client(nursery, delivery)
            for start in range(0, 600, 50):
                await send(transport, "subscribe", symbols[start : start + 50])
            await wait_until(lambda: fake.subscribed_symbols() == {*CONFIGURED, *symbols}, "all 600")
            assert sorted(len(streams) for streams in fake.live_streams) == [2 * 602 - 1024, 1024]
    assert fake.closed_1008 == 0
    assert fake.peak_rate <= 5
    assert fake.connections == 2


async def test_churn_leaves_upstream_the_clients_union_plus_lingering_plus_configured() -> None:
    fake = FakeBinance(interval=5.0)  # prices are beside the point here: few events
    symbols = listed(1000)  # about two subscriptions per client: some symbols end up with none
    rng = random.Random(18)
    with trio.fail_after(120):
        async with on_demand_binance(fake, symbols, linger=2.0) as (nursery, delivery):
            clients = [await open_client(nursery, delivery) for _ in range(1000)]
            for _ in range(8):
                for transport, outbox in clients:
                    held = list(outbox.subscriptions)
                    if held and rng.random() < 0.5:
                        await send(transport, "unsubscribe", rng.sample(held, rng.randint(1, len(held))))
                    else:
                        await send(transport, "subscribe", rng.sample(symbols, rng.randint(1, 3)))
                await trio.sleep(0.4)
            for transport, _ in clients[::3]:  # a third leave
                await transport.client_disconnect()
            await wait_until(lambda: delivery.hub.statistics().clients == 1000 - len(clients[::3]), "they left")
            assert delivery.demand.lingering()  # what the last changes released lingers

            def expected() -> set[str]:
                wanted = {symbol for _, outbox in clients for symbol in outbox.subscriptions}
                return wanted | delivery.demand.lingering() | set(CONFIGURED)

            await wait_until(lambda: fake.subscribed_symbols() == expected(), "upstream = wanted")
            assert delivery.demand.active() == expected()
            # What lingers is dropped upstream once its linger ends (during the churn too, if the loop was quick).
            await wait_until(lambda: delivery.demand.statistics().dropped > 0, "a lingering symbol dropped")
            await wait_until(lambda: fake.subscribed_symbols() == expected(), "upstream = wanted, after the drops")
            assert delivery.demand.active() == expected()
    assert fake.closed_1008 == 0
    assert fake.peak_rate <= 5
