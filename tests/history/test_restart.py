"""A real `python -m trio_ticker` in demo mode, stopped and started again on the same data directory:
the chart opens full at once, and the restarted server serves every candle the first one had."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.support.process import running

pytestmark = pytest.mark.slow
WAIT = 30.0
COMMAND = [sys.executable, "-m", "trio_ticker"]


async def get(address: str, path: str) -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://{address}{path}")
    assert response.status_code == 200, response.text
    return response.json()


async def wait_until_written(address: str) -> None:
    """Until the writer has nothing left but the open candles (one per symbol and interval)."""
    with trio.fail_after(WAIT):
        while (history := (await get(address, "/healthz"))["history"])["written"] == 0 or history["pending"] > 42:
            await trio.sleep(0.1)


async def test_a_restarted_server_serves_the_same_candles(tmp_path: Path) -> None:
    environment = {
        "TICKER_PORT": "0",
        "TICKER_DATA_DIR": str(tmp_path),
        "TICKER_HISTORY_FLUSH_INTERVAL": "0.2",
        "TICKER_DEMO_SEED": "11",
    }
    async with running(COMMAND, **environment) as first:
        await wait_until_written(first.address)
        before = (await get(first.address, "/candles?symbol=BTCUSDT&interval=1m&limit=1500"))["candles"]
        hours_before = (await get(first.address, "/candles?symbol=ETHUSDT&interval=1h"))["candles"]
        await trio.sleep(1.0)
        first.process.send_signal(signal.SIGTERM)
        with trio.fail_after(WAIT):
            await first.process.wait()
    assert first.process.returncode == 0 and b"Traceback" not in first.stderr
    assert 1441 <= len(before) <= 1442  # the generated day, then the live minute(s): the chart opens full
    assert all(c["closed"] for c in before[:-1]) and not before[-1]["closed"]

    async with running(COMMAND, **environment) as second:
        await wait_until_written(second.address)
        after = (await get(second.address, "/candles?symbol=BTCUSDT&interval=1m&limit=1500"))["candles"]
        hours_after = (await get(second.address, "/candles?symbol=ETHUSDT&interval=1h"))["candles"]
        second.process.send_signal(signal.SIGTERM)
        with trio.fail_after(WAIT):
            await second.process.wait()
    by_time = {c["open_time"]: c for c in after}
    assert all(by_time[c["open_time"]] == c for c in before[:-1])  # every closed candle, to the digit
    was_open = by_time[before[-1]["open_time"]]  # the minute open across the restart holds both runs' ticks
    assert was_open["trades"] >= before[-1]["trades"] and was_open["open"] == before[-1]["open"]
    hours = {c["open_time"]: c for c in hours_after}
    assert all(hours[c["open_time"]] == c for c in hours_before if c["closed"])
    assert b"event=history_store_failed" not in first.stderr + second.stderr
