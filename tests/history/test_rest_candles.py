"""`GET /candles` in-process (the real app and service, a real SQLite file): answers, limits and errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
from quart_trio import QuartTrio

from tests.support.helpers import make_settings
from trio_ticker.app import Assembly, assemble
from trio_ticker.delivery.hub import Hub
from trio_ticker.history.candles import Candle, Interval
from trio_ticker.history.sqlite_store import open_sqlite_store
from trio_ticker.history.store import CandleWrite
from trio_ticker.model import Mode, PriceUpdate

TOKEN = "a-token-long-enough-1234"


def past_minute(minute: int, close: str) -> Candle:
    prices = (Decimal("400"), Decimal("401.5"), Decimal("399"), Decimal(close))
    return Candle("MSFT", Interval.M1, minute, *prices, Decimal("12.5"), 7, minute + 59_000)


def minute_now() -> int:
    now = int(time.time() * 1000)
    return now - now % 60_000


@pytest.fixture
async def stored_minutes(tmp_path: Path) -> list[Candle]:
    """Ten closed MSFT minutes up to the current one, in the file before the server starts."""
    if time.time() % 60 > 50:  # the test's few seconds stay within one minute
        await trio.sleep(61 - time.time() % 60)
    current = minute_now()
    candles = [past_minute(current - (10 - i) * 60_000, f"400.{i}") for i in range(10)]
    async with open_sqlite_store(tmp_path) as store:
        await store.write([CandleWrite(c) for c in candles])
    return candles


@pytest.fixture
async def quiet(tmp_path: Path, stored_minutes: list[Candle]) -> AsyncIterator[tuple[QuartTrio, Assembly]]:
    """The app with no sources (the test publishes every price) over a file that has candles."""
    settings = make_settings(
        data_dir=tmp_path, history_flush_interval=0.1, candles_max_limit=1000, demo_history_hours=0
    )
    service = assemble(settings, sources=())
    app = service.app
    async with app.test_app():
        yield app, service


async def get(app: QuartTrio, path: str, **headers: str) -> tuple[int, Any, dict[str, str]]:
    response = await app.test_client().get(path, headers=headers)
    return response.status_code, orjson.loads(await response.get_data()), dict(response.headers)


def publish(hub: Hub, symbol: str, price: float, volume: str | None = "1") -> None:
    ts = int(time.time() * 1000)
    hub.publish(PriceUpdate(symbol, price, 100.0, ts, Mode.DEMO, volume=None if volume is None else Decimal(volume)))


async def test_the_answer_holds_stored_candles_then_the_open_one(
    quiet: tuple[QuartTrio, Assembly], stored_minutes: list[Candle]
) -> None:
    app, service = quiet
    publish(service.hub, "MSFT", 402.25, volume="2.5")
    publish(service.hub, "MSFT", 402.0, volume=None)  # a snapshot price: no trade
    status, body, headers = await get(app, "/candles?symbol=msft&interval=1m")
    assert status == 200 and headers["content-type"] == "application/json"
    assert body["symbol"] == "MSFT" and body["interval"] == "1m"
    candles = body["candles"]
    current = minute_now()
    assert [c["open_time"] for c in candles] == [c.open_time for c in stored_minutes] + [current]
    assert candles[0] == {
        "open_time": current - 600_000, "close_time": current - 540_001, "open": "400", "high": "401.5",
        "low": "399", "close": "400.0", "volume": "12.5", "trades": 7, "closed": True,
    }  # fmt: skip
    assert candles[-1] == {
        "open_time": current, "close_time": current + 59_999, "open": "402.25", "high": "402.25", "low": "402.0",
        "close": "402.0", "volume": "2.5", "trades": 1, "closed": False,
    }  # fmt: skip
    # After the writer's next flush the open candle comes from the file, still open.
    history = service.service.history
    assert history is not None
    with trio.fail_after(10):
        while history.writer.health().pending:
            await trio.sleep(0.05)
    assert (await get(app, "/candles?symbol=MSFT&interval=1m"))[1]["candles"] == candles


async def test_limit_start_and_end_select_like_binance(
    quiet: tuple[QuartTrio, Assembly], stored_minutes: list[Candle]
) -> None:
    app, _ = quiet
    opens = [c.open_time for c in stored_minutes]

    async def times(query: str) -> list[int]:
        status, body, _ = await get(app, f"/candles?symbol=MSFT&interval=1m&{query}")
        assert status == 200, body
        return [c["open_time"] for c in body["candles"]]

    assert await times("limit=3") == opens[-3:]
    assert await times(f"start={opens[2]}&limit=2") == opens[2:4]
    assert await times(f"end={opens[4]}&limit=2") == opens[3:5]
    assert await times(f"start={opens[1]}&end={opens[3]}") == opens[1:4]
    assert await times("") == opens  # the default limit (500) holds them all


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("symbol=AAPL", 400, "invalid_interval"),
        ("symbol=AAPL&interval=2m", 400, "invalid_interval"),
        ("symbol=AAPL&interval=1M", 400, "invalid_interval"),
        ("symbol=AAPL&interval=1m&limit=0", 400, "invalid_limit"),
        ("symbol=AAPL&interval=1m&limit=1001", 400, "invalid_limit"),
        ("symbol=AAPL&interval=1m&limit=ten", 400, "invalid_limit"),
        ("symbol=AAPL&interval=1m&start=-5", 400, "invalid_start"),
        ("symbol=AAPL&interval=1m&start=1e3", 400, "invalid_start"),
        ("symbol=AAPL&interval=1m&end=99999999999999999999", 400, "invalid_end"),
        ("symbol=AAPL&interval=1m&start=20&end=10", 400, "invalid_range"),
        ("symbol=BAD%20SYMBOL&interval=1m", 400, "invalid_symbol"),
        ("symbol=DOGE&interval=1m", 404, "unknown_symbol"),
    ],
)
async def test_bad_parameters_get_a_documented_error(
    quiet: tuple[QuartTrio, Assembly], query: str, status: int, code: str
) -> None:
    app, _ = quiet
    got_status, body, _ = await get(app, f"/candles?{query}")
    assert (got_status, body["type"], body["code"]) == (status, "error", code)
    assert body["message"]


async def test_without_a_symbol_the_default_symbol_is_meant(quiet: tuple[QuartTrio, Assembly]) -> None:
    app, _ = quiet
    status, body, _ = await get(app, "/candles?interval=1h")
    assert (status, body["symbol"], body["candles"]) == (200, "BTCUSDT", [])


async def test_tokens_protect_candles_like_the_other_data_routes(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path, auth_tokens=TOKEN, demo_history_hours=0)
    app = assemble(settings, sources=()).app
    async with app.test_app():
        assert (await get(app, "/candles?interval=1m"))[0] == 401
        status, body, _ = await get(app, "/candles?interval=1m", Authorization=f"Bearer {TOKEN}")
        assert status == 200 and body["candles"] == []


async def test_with_history_off_candles_are_not_served(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path, history="off")
    service = assemble(settings, sources=())
    app = service.app
    async with app.test_app():
        status, body, _ = await get(app, "/candles?interval=1m")
        assert (status, body["code"]) == (404, "candles_unavailable")
        assert "history" not in (await get(app, "/healthz"))[1]
    assert service.hub.candles is None and not (tmp_path / "candles.sqlite3").exists()
