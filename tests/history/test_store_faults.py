"""A real SQLite file that is corrupt or locked, under the real app and demo feed: prices keep
flowing, one clear error is logged, /healthz and /metrics say so, and nothing written is lost."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
import trio
from quart_trio import QuartTrio

from tests.support.helpers import make_settings
from trio_ticker.app import create_app
from trio_ticker.history.sqlite_store import FILE_NAME

WAIT = 20.0


@asynccontextmanager
async def running_app(data_dir: Path) -> AsyncIterator[QuartTrio]:
    settings = make_settings(
        demo_interval=0.05, data_dir=data_dir, history_flush_interval=0.2, history_retry_max_delay=1.0
    )
    app = create_app(settings)
    async with app.test_app():
        yield app


async def get_json(app: QuartTrio, path: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = await app.test_client().get(path)
    return response.status_code, orjson.loads(await response.get_data())


async def history_state(app: QuartTrio) -> dict:  # type: ignore[type-arg]
    return (await get_json(app, "/healthz"))[1]["history"]  # type: ignore[no-any-return]


async def wait_for_state(app: QuartTrio, state: str) -> dict:  # type: ignore[type-arg]
    with trio.fail_after(WAIT):
        while (health := await history_state(app))["state"] != state:
            await trio.sleep(0.05)
    return health


async def test_a_corrupt_file_keeps_prices_live_reports_once_and_is_never_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_ticker.history")
    garbage = b"this is not a database, and nobody may overwrite it\x00" * 200
    (tmp_path / FILE_NAME).write_bytes(garbage)
    async with running_app(tmp_path) as app:
        health = await wait_for_state(app, "unavailable")
        assert "file is not a database" in health["error"]
        first = (await get_json(app, "/price?symbol=AAPL"))[1]["seq"]
        await trio.sleep(1.0)  # a few retries go by
        assert (await get_json(app, "/price?symbol=AAPL"))[1]["seq"] > first  # prices keep flowing
        # What memory holds is served, marked: the open candle (and closed ones not written yet).
        response = await app.test_client().get("/candles?symbol=AAPL&interval=1m")
        body = orjson.loads(await response.get_data())
        assert (response.status_code, response.headers["X-Candle-Store"], body["store"]) == (200, *["unavailable"] * 2)
        assert body["candles"] and not body["candles"][-1]["closed"]
        metrics = (await (await app.test_client().get("/metrics")).get_data()).decode()
        assert 'ticker_history_store_up{store="sqlite"} 0.0' in metrics
        assert (await history_state(app))["failures"] >= 2
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "event=history_store_failed store=sqlite" in errors[0].getMessage()
        assert (tmp_path / FILE_NAME).read_bytes() == garbage  # kept for the operator, untouched
        # The operator moves it aside: the next retry starts a new file and candles are written again.
        (tmp_path / FILE_NAME).rename(tmp_path / "candles.corrupt")
        await wait_for_state(app, "ok")
        with trio.fail_after(WAIT):
            while (await history_state(app))["written"] == 0:
                await trio.sleep(0.05)
        status, body = await get_json(app, "/candles?symbol=AAPL&interval=1s")
        assert status == 200 and body["candles"]
    assert "event=history_store_recovered store=sqlite" in caplog.text


async def test_a_locked_file_delays_writes_and_loses_nothing(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app:
        await wait_for_state(app, "ok")
        blocker = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            locked_at_ms = (await get_json(app, "/price?symbol=AAPL"))[1]["ts"]
            health = await wait_for_state(app, "unavailable")
            assert "database is locked" in health["error"]
            await trio.sleep(3.0)  # seconds of 1 s candles close while the file is locked
            assert (await history_state(app))["pending"] > 0
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await wait_for_state(app, "ok")
        with trio.fail_after(WAIT):
            while (await history_state(app))["pending"] > 20:  # only the symbols' open candles are left
                await trio.sleep(0.05)
        unlocked_at_ms = (await get_json(app, "/price?symbol=AAPL"))[1]["ts"]
    with sqlite3.connect(tmp_path / FILE_NAME) as check:
        seconds = [
            row[0]
            for row in check.execute(
                "SELECT open_time FROM candles WHERE symbol='AAPL' AND interval='1s' AND open_time BETWEEN ? AND ?"
                " ORDER BY open_time",
                (locked_at_ms, unlocked_at_ms - 2_000),
            )
        ]
    # Every second of the lock is there: demo ticks come every 50 ms, so no second is without one.
    expected = list(range(seconds[0], seconds[-1] + 1, 1000))
    assert seconds == expected and len(seconds) >= 3
