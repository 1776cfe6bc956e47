"""The split deployment as real processes: `python -m trio_ticker ingest` writes the candles to a real
redis-server, and a `TICKER_ROLE=fanout` worker serves them over REST and streams them live."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import coredis
import httpx
import orjson
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.support.helpers import FULL_PROTOCOL
from tests.support.process import REPO, ServerProcess, running
from tests.support.redis_server import RedisServer, open_redis_server
from trio_ticker.history.candles import Interval
from trio_ticker.history.frames import candle_fields
from trio_ticker.history.redis_store import open_redis_candle_store

pytestmark = pytest.mark.slow
SYMBOL = "BTCUSDT"
PREFIX = "split"
WAIT = 40.0
DEMO_HOURS = 2


def split_env(redis: RedisServer) -> dict[str, str]:
    return {
        "DEMO_MODE": "true",
        "TICKER_DEMO_INTERVAL": "0.05",
        "TICKER_STOCK_SYMBOLS": "AAPL",
        "TICKER_CRYPTO_SYMBOLS": SYMBOL,
        "TICKER_REDIS_URL": redis.url,
        "TICKER_REDIS_PREFIX": PREFIX,
        "TICKER_REDIS_LEASE": "2",
        "TICKER_HISTORY_FLUSH_INTERVAL": "0.2",
        "TICKER_DEMO_HISTORY_HOURS": str(DEMO_HOURS),
    }


@asynccontextmanager
async def ingest_process(redis: RedisServer, log: Path) -> AsyncIterator[trio.Process]:
    """`python -m trio_ticker ingest`, once it holds the lease, its log in `log`; killed at the end if still running."""
    environment = {**os.environ, **split_env(redis)}
    command = [sys.executable, "-m", "trio_ticker", "ingest"]
    with log.open("wb") as output:
        process = await trio.lowlevel.open_process(command, cwd=REPO, env=environment, stderr=output)
    try:
        async with coredis.Redis.from_url(redis.url, decode_responses=True) as client:
            with trio.fail_after(WAIT):
                while await client.get(f"{PREFIX}:leader") is None:
                    await trio.sleep(0.05)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def get(server: ServerProcess, path: str) -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"http://{server.address}{path}")).json()


async def stored_candle(redis: RedisServer, interval: Interval) -> dict[str, Any] | None:
    """The newest candle of `interval` in Redis, as the ingest process wrote it."""
    async with open_redis_candle_store(redis.url, prefix=PREFIX, command_timeout=5) as store:
        found = await store.read(SYMBOL, interval, start=None, end=None, limit=1)
    return candle_fields(found[0]) if found else None


async def candle_frames(ws: WebSocketConnection, interval: str) -> AsyncIterator[dict[str, Any]]:
    while True:
        message = orjson.loads(await ws.get_message())
        if message["type"] == "candle" and message["interval"] == interval:
            yield message


async def test_the_ingest_process_writes_candles_that_a_fanout_worker_serves_and_streams(tmp_path: Path) -> None:
    ingest_log = tmp_path / "ingest.log"
    async with (
        open_redis_server() as redis,
        ingest_process(redis, ingest_log) as ingest,
        running(
            [sys.executable, "-m", "trio_ticker"], TICKER_ROLE="fanout", TICKER_PORT="0", **split_env(redis)
        ) as fanout,
    ):
        await check_the_fanout_worker(redis, fanout)
        for process in (fanout.process, ingest):
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(WAIT):
                await process.wait()
        assert fanout.process.returncode == 0 and b"Traceback" not in fanout.stderr, fanout.stderr[-3000:].decode()
        assert ingest.returncode == 0 and "Traceback" not in ingest_log.read_text(), ingest_log.read_text()[-3000:]


async def check_the_fanout_worker(redis: RedisServer, fanout: ServerProcess) -> None:
    # The generated past and every closed minute since were written by the ingest process, not by the worker.
    with trio.fail_after(WAIT):
        while len(body := (await get(fanout, f"/candles?symbol={SYMBOL}&interval=1m&limit=1000"))["candles"]) < 60:
            await trio.sleep(0.2)
    assert all(candle["closed"] for candle in body[:-1])
    history = (await get(fanout, "/healthz"))["history"]
    assert (history["store"], history["writing"], history["written"]) == ("redis", False, 0)
    assert await stored_candle(redis, Interval.M1) is not None  # in Redis, where the ingest process put it

    # Live: the open second's updates, then `closed: true` once at its rollover.
    async with open_websocket_url(f"ws://{fanout.address}/ws", subprotocols=FULL_PROTOCOL) as ws:
        await ws.send_message(orjson.dumps({"action": "subscribe", "symbols": [SYMBOL], "candles": "1s"}).decode())
        closed: list[int] = []
        with trio.fail_after(WAIT):
            async for frame in candle_frames(ws, "1s"):
                if frame["closed"]:
                    closed.append(frame["open_time"])
                    if len(closed) == 3:
                        break
        assert closed == sorted(set(closed))  # each second closed once, in order
