"""Candles shared through a real redis-server by two real workers: the ingest leader writes, the
follower reads the same history; Redis frozen for a while loses nothing and prices keep coming."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from tests.redis_server import RedisServer, open_redis_server
from tests.test_scaleout_redis import Worker, elected, open_workers, scale_out_settings

pytestmark = pytest.mark.slow
WAIT = 30.0


async def get(worker: Worker, path: str) -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"http://{worker.address}{path}")).json()


async def history_of(worker: Worker) -> dict[str, Any]:
    return (await worker.health())["history"]  # type: ignore[no-any-return]


@asynccontextmanager
async def two_workers(server: RedisServer) -> AsyncIterator[list[Worker]]:
    settings = scale_out_settings(server, history_flush_interval=0.2, history_retry_max_delay=1.0)
    async with open_workers(settings) as workers:
        yield workers


async def closed_seconds(worker: Worker, until_ms: int) -> list[dict[str, Any]]:
    body = await get(worker, f"/candles?symbol=AAPL&interval=1s&end={until_ms}&limit=1000")
    return [candle for candle in body["candles"] if candle["closed"]]


async def test_the_leader_writes_and_every_worker_serves_the_same_candles() -> None:
    async with open_redis_server() as server, two_workers(server) as workers:
        leader, [follower] = await elected(workers)
        await trio.sleep(3.0)
        until = int(time.time() * 1000) - 1_500  # seconds closed by now
        from_leader = await closed_seconds(leader, until)  # its answer includes what it has not written yet
        assert len(from_leader) >= 2
        with trio.fail_after(WAIT):  # the follower reads Redis only: the same once the leader has written
            while (from_follower := await closed_seconds(follower, until)) != from_leader:
                await trio.sleep(0.1)
        assert all(int(c["trades"]) > 0 and float(c["volume"]) > 0 for c in from_follower)
        leader_health, follower_health = await history_of(leader), await history_of(follower)
        assert (leader_health["store"], leader_health["writing"], leader_health["state"]) == ("redis", True, "ok")
        assert (follower_health["writing"], follower_health["written"]) == (False, 0)  # followers only read
        assert leader_health["written"] > 0


async def test_redis_frozen_for_a_while_keeps_prices_and_loses_no_candle() -> None:
    async with open_redis_server() as server, two_workers(server) as workers:
        await elected(workers)
        await trio.sleep(2.0)
        server.pause()
        try:
            with trio.fail_after(WAIT):
                while [(await history_of(worker))["state"] for worker in workers] != ["unavailable"] * 2:
                    await trio.sleep(0.1)
            for worker in workers:  # every worker still serves its last prices, marked stale
                price = await get(worker, "/price?symbol=AAPL")
                assert price["symbol"] == "AAPL"
            frozen_at = int(time.time() * 1000)
            await trio.sleep(2.0)
        finally:
            server.resume()
        with trio.fail_after(WAIT):
            while [(await history_of(worker))["state"] for worker in workers] != ["ok"] * 2:
                await trio.sleep(0.1)
        _, [follower] = await elected(workers)
        await trio.sleep(3.0)
        seconds = await closed_seconds(follower, int(time.time() * 1000) - 1_500)
        # Ticks stop while Redis is frozen (they travel through it), so seconds with trades end near the
        # freeze and start again after it; before the freeze none is missing.
        before = [c["open_time"] for c in seconds if c["open_time"] < frozen_at - 2_000]
        assert len(before) >= 2 and before == list(range(before[0], before[-1] + 1000, 1000))
        assert any(c["open_time"] > frozen_at for c in seconds)  # written again after it
