"""The Catalogue's task against the fake Binance REST API in memory, on the autojump clock: startup that
waits for no fetch, refresh, failures and retries, the byte and time bounds, and the store across a restart."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import trio

from tests.fakes.binance_rest import FakeBinanceRest
from tests.fakes.candle_store import MemoryCandles
from tests.fakes.catalogues import exchange_info_for
from tests.support.helpers import make_settings
from trio_ticker.catalogue.build import build_catalogue
from trio_ticker.catalogue.catalogue import Catalogue
from trio_ticker.model import Listing

EXCHANGE_INFO = "/api/v3/exchangeInfo"
DOGE = Listing("DOGEUSDT", "binance", "DOGE/USDT", 5, "DOGE", "USDT")


def catalogue(transport: httpx.AsyncBaseTransport, store: MemoryCandles | None = None, **overrides: Any) -> Catalogue:
    settings = make_settings(
        **{
            "demo_mode": False,
            "stock_symbols": "",
            "crypto_symbols": "BTCUSDT,ETHUSDT",
            "catalogue_fetch": True,
            "binance_rest_url": "http://binance.test",
            "reconnect_initial_delay": 1.0,
            "reconnect_max_delay": 8.0,
            **overrides,
        }
    )
    return build_catalogue(settings, open_store=store.open if store else None, http_transport=transport)


def gated(fake: FakeBinanceRest, gate: trio.Event) -> httpx.MockTransport:
    """The fake's answers, each only once `gate` is set."""
    inner = fake.transport()

    async def handle(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return await inner.handle_async_request(request)

    return httpx.MockTransport(handle)


def fetch_times(fake: FakeBinanceRest) -> list[float]:
    return [round(at, 6) for at, path in fake.paths if path == EXCHANGE_INFO]


async def test_it_starts_before_the_first_fetch_and_serves_the_configured_symbols_meanwhile(
    autojump_clock: trio.abc.Clock,
) -> None:
    fake, gate = FakeBinanceRest(), trio.Event()
    directory = catalogue(gated(fake, gate))
    async with trio.open_nursery() as nursery:
        await nursery.start(directory.run)
        assert trio.current_time() == 0.0
        assert directory.lookup("BTCUSDT") == Listing("BTCUSDT", "binance", "BTCUSDT")
        assert directory.lookup("DOGEUSDT") is None
        assert directory.health()["binance"]["state"] == "pending"
        gate.set()
        await trio.sleep(1)
        assert directory.lookup("DOGEUSDT") == DOGE
        assert directory.lookup("BTCUSDT") == Listing("BTCUSDT", "binance", "BTC/USDT", 2, "BTC", "USDT")
        assert [listing.symbol for listing in directory.configured()] == ["BTCUSDT", "ETHUSDT"]
        assert directory.health()["binance"] | {"updated": None} == {
            "state": "ok", "count": 10, "detail": "", "updated": None, "fetches": 1, "failures": 0,
        }  # fmt: skip
        nursery.cancel_scope.cancel()


async def test_it_refreshes_every_interval_and_serves_the_new_listings(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeBinanceRest()
    directory = catalogue(fake.transport(), catalogue_refresh=600)
    async with trio.open_nursery() as nursery:
        await nursery.start(directory.run)
        await trio.sleep(1)
        fake.exchange_info = exchange_info_for([("PEPE", "USDT")], tick_size="0.00000001")
        await trio.sleep(600)
        assert directory.lookup("PEPEUSDT") == Listing("PEPEUSDT", "binance", "PEPE/USDT", 8, "PEPE", "USDT")
        assert directory.lookup("DOGEUSDT") is None  # delisted upstream: gone here too
        assert directory.lookup("ETHUSDT") is not None  # configured: always listed
        await trio.sleep(1200)
        nursery.cancel_scope.cancel()
    assert fetch_times(fake) == [0.0, 600.0, 1200.0, 1800.0]


async def test_server_errors_keep_what_was_served_and_retry_with_backoff(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeBinanceRest(script=[(500, {}, {"code": -1000, "msg": "internal"})] * 3)
    directory = catalogue(fake.transport())
    async with trio.open_nursery() as nursery:
        await nursery.start(directory.run)
        await trio.sleep(0.5)
        health = directory.health()["binance"]
        assert (health["state"], health["failures"], health["count"]) == ("failed", 1, 0)
        assert "HTTP 500" in str(health["detail"])
        assert directory.lookup("BTCUSDT") is not None  # configured symbols keep working
        await trio.sleep(60)
        assert directory.health()["binance"]["state"] == "ok"
        assert directory.lookup("DOGEUSDT") == DOGE
        nursery.cancel_scope.cancel()
    times = fetch_times(fake)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) == 4 and all(1.0 <= gap <= 8.0 for gap in gaps)  # the sources' backoff, 1 s to 8 s here


async def test_a_429_waits_exactly_its_retry_after_and_a_418_its_ban(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeBinanceRest(
        script=[
            (429, {"Retry-After": "30"}, {"code": -1003, "msg": "Too many requests."}),
            (418, {"Retry-After": "120"}, {"code": -1003, "msg": "Way too many requests; IP banned."}),
        ]
    )
    directory = catalogue(fake.transport())
    async with trio.open_nursery() as nursery:
        await nursery.start(directory.run)
        await trio.sleep(1)
        assert "HTTP 429" in str(directory.health()["binance"]["detail"])
        await trio.sleep(200)
        nursery.cancel_scope.cancel()
    assert fetch_times(fake) == [0.0, 30.0, 150.0]
    assert directory.health()["binance"]["state"] == "ok"


async def test_garbage_an_oversized_body_and_a_slow_drip_are_failures_not_catalogues(
    autojump_clock: trio.abc.Clock,
) -> None:
    huge = exchange_info_for([(f"C{number}", "USDT") for number in range(200)])
    fake = FakeBinanceRest(script=[(200, {}, b"<html>gateway</html>"), (200, {}, huge)])
    directory = catalogue(fake.transport(), catalogue_max_bytes=20_000)
    details = []
    async with trio.open_nursery() as nursery:
        await nursery.start(directory.run)
        for _ in range(2):
            await trio.sleep(0.1)
            details.append(directory.health()["binance"]["detail"])
            await trio.sleep(8)
        nursery.cancel_scope.cancel()
    assert "not a catalogue" in str(details[0])
    assert "larger than 20000 bytes" in str(details[1])

    never = trio.Event()
    slow = catalogue(gated(FakeBinanceRest(), never), catalogue_fetch_timeout=15)
    async with trio.open_nursery() as nursery:
        await nursery.start(slow.run)
        await trio.sleep(15.5)
        assert slow.health()["binance"]["detail"] == "no complete answer within 15 s"
        nursery.cancel_scope.cancel()


async def test_a_restart_serves_the_saved_catalogue_before_any_fetch(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryCandles()
    first = catalogue(FakeBinanceRest().transport(), store)
    async with trio.open_nursery() as nursery:
        await nursery.start(first.run)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert DOGE in store.listings["binance"].listings

    never = trio.Event()
    restarted = catalogue(gated(FakeBinanceRest(), never), store)
    async with trio.open_nursery() as nursery:
        await nursery.start(restarted.run)
        assert restarted.lookup("DOGEUSDT") == DOGE
        health = restarted.health()["binance"]
        assert (health["state"], health["count"]) == ("pending", 10)
        assert str(health["detail"]).startswith("serving the catalogue saved at")
        nursery.cancel_scope.cancel()


async def test_a_store_that_is_down_delays_nothing(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryCandles()
    store.down = True
    directory = catalogue(FakeBinanceRest().transport(), store)
    async with trio.open_nursery() as nursery:
        await nursery.start(directory.run)
        assert trio.current_time() == 0.0
        await trio.sleep(1)
        assert directory.lookup("DOGEUSDT") == DOGE  # fetched and served; only the save failed
        nursery.cancel_scope.cancel()
    assert directory.store_failures == 2


async def test_demo_mode_lists_the_demo_table_and_fetches_nothing(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeBinanceRest()
    directory = build_catalogue(make_settings(catalogue_fetch=True), http_transport=fake.transport())
    async with trio.open_nursery() as nursery:
        await nursery.start(directory.run)
        await trio.sleep(7200)
    assert fake.paths == []
    assert directory.lookup("DOGEUSDT") == Listing("DOGEUSDT", "demo", "DOGE/USDT", 5, "DOGE", "USDT")
    assert directory.lookup("AAPL") == Listing("AAPL", "demo", "Apple Inc", 2)
    assert [listing.symbol for listing in directory.search("DOGE", 5)] == ["DOGEUSDT"]
    assert directory.health() == {
        "demo": {"state": "fixed", "count": 54, "detail": "", "updated": None, "fetches": 0, "failures": 0}
    }


async def test_a_configured_stock_list_replaces_finnhubs_and_is_not_fetched(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeBinanceRest()
    directory = catalogue(
        fake.transport(), stock_symbols="AAPL", finnhub_api_key="k", stock_catalogue="AAPL,MSFT,BRK.B"
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(directory.run)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert fetch_times(fake) == [0.0]  # Binance only: no request went to Finnhub (the transport serves both)
    assert [path for _, path in fake.paths] == [EXCHANGE_INFO]
    assert directory.lookup("BRK.B") == Listing("BRK.B", "finnhub", "BRK.B")
    assert [listing.symbol for listing in directory.search("M", 5)] == ["MSFT"]
    assert directory.health()["finnhub"]["state"] == "fixed"
