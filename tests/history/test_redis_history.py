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

from tests.support.redis_server import RedisServer, open_redis_server
from tests.support.scaleout_workers import Worker, elected, open_workers, scale_out_settings

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
        with trio.fail_after(WAIT):  # its answer includes what it has not written yet
            while len(from_leader := await closed_seconds(leader, until := int(time.time() * 1000) - 1_500)) < 2:
                await trio.sleep(0.2)
        with trio.fail_after(WAIT):  # the follower reads Redis only: the same once the leader has written
            while (from_follower := await closed_seconds(follower, until)) != from_leader:
                await trio.sleep(0.1)
        assert all(int(c["trades"]) > 0 and float(c["volume"]) > 0 for c in from_follower)
        leader_health, follower_health = await history_of(leader), await history_of(follower)
        assert (leader_health["store"], leader_health["writing"], leader_health["state"]) == ("redis", True, "ok")
        assert follower_health["writing"] is False and leader_health["written"] > 0
        follower_leader = follower.node.leader
        if follower_leader is not None and follower_leader.terms == 0:  # it never led (a loaded machine may flip them)
            assert follower_health["written"] == 0  # followers only read


async def test_redis_frozen_for_a_while_keeps_prices_and_loses_no_candle() -> None:
    async with open_redis_server() as server, two_workers(server) as workers:
        leader, [follower] = await elected(workers)
        with trio.fail_after(WAIT):  # the leader's answer is what it stores
            while len(written := await closed_seconds(leader, until := int(time.time() * 1000) - 1_500)) < 2:
                await trio.sleep(0.2)
        with trio.fail_after(WAIT):  # and the follower's, which reads Redis first: they are what Redis keeps
            while await closed_seconds(follower, until) != written:
                await trio.sleep(0.1)
        server.pause()
        try:
            with trio.fail_after(WAIT):
                while [(await history_of(worker))["state"] for worker in workers] != ["unavailable"] * 2:
                    await trio.sleep(0.1)
            for worker in workers:  # every worker still serves its last prices
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
        with trio.fail_after(WAIT):  # written again after the freeze, by whichever worker leads now
            while not any(c["open_time"] > frozen_at for c in await closed_seconds(follower, 2**53)):
                await trio.sleep(0.2)
        after = {c["open_time"]: c for c in await closed_seconds(follower, 2**53)}
        assert all(after.get(c["open_time"]) == c for c in written)  # every candle written before is still there
