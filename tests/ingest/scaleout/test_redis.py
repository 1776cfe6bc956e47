"""Scale-out against a real redis-server: the fencing proof, two workers sharing one demo feed,
leader failover, and a Redis restart mid-stream (tests/support/redis_server.py starts and stops Redis).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import coredis
import orjson
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.support.helpers import FULL_PROTOCOL, read_welcome
from tests.support.redis_server import RedisServer, open_redis_server
from tests.support.scaleout_workers import LEASE, elected, open_workers, scale_out_settings
from trio_ticker.app import assemble
from trio_ticker.ingest.scaleout.codec import decode_entry, last_id_of_ms, stream_id_ms
from trio_ticker.ingest.scaleout.node import ScaleOutNode
from trio_ticker.ingest.scaleout.redis_store import open_redis_store
from trio_ticker.model import (
    DayStats,
    Listing,
    Mode,
    PriceUpdate,
    SourceState,
    SourceStatus,
    StaleChange,
    SymbolRejected,
    Tick,
)

pytestmark = pytest.mark.slow
SYMBOL = "BTCUSDT"
DAY_KEYS = ("precision", "open", "high", "low", "volume")


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async with open_redis_server() as server:
        yield server


def update(price: float) -> PriceUpdate:
    return PriceUpdate(SYMBOL, price, 100.0, ts=1_700_000_000_000, mode=Mode.DEMO, decimals=2)


async def test_a_deposed_leader_is_fenced_out_and_seq_continues(redis_server: RedisServer) -> None:
    async with open_redis_store(redis_server.url, prefix="fence", stream_maxlen=1000, connect_timeout=1) as store:
        first = await store.try_acquire(0.2)
        assert first is not None
        assert await store.try_acquire(5.0) is None  # held
        assert await store.publish(first, [update(101.0), StaleChange(SYMBOL, True, 5)])
        await trio.sleep(0.3)  # the first leader hangs past its lease
        second = await store.try_acquire(5.0)
        assert second is not None and second > first
        assert not await store.renew(first, 5.0)
        assert not await store.publish(first, [update(999.0)])  # refused: nothing is written
        assert await store.publish(second, [update(102.0), SourceStatus("demo", SourceState.LIVE, 7)])

        snapshot = await store.load_snapshot()
        entries = await store.read("0-0", 0.1)
    assert [(tick.symbol, tick.seq, tick.price, tick.stale) for tick in snapshot.ticks] == [(SYMBOL, 2, 102.0, False)]
    assert snapshot.statuses == (SourceStatus("demo", SourceState.LIVE, 7),)
    assert snapshot.cursor == entries[-1][0]
    items = [decode_entry(fields) for _, fields in entries]
    assert [getattr(item, "price", None) for item in items] == [101.0, None, 102.0, None]
    assert [getattr(item, "seq", None) for item in items] == [1, None, 2, None]


async def test_the_24h_statistics_survive_the_stream_and_the_snapshot(redis_server: RedisServer) -> None:
    day = DayStats(open=100.0, high=104.5, low=97.25, volume=18234.5)
    published = dataclasses.replace(update(101.0), decimals=3, day_stats=day)
    async with open_redis_store(redis_server.url, prefix="stats", stream_maxlen=1000, connect_timeout=1) as store:
        token = await store.try_acquire(5.0)
        assert token is not None and await store.publish(token, [published])
        snapshot = await store.load_snapshot()
        entries = await store.read("0-0", 0.1)
    streamed = decode_entry(entries[0][1])
    assert isinstance(streamed, Tick)
    assert [(tick.precision, tick.day_stats) for tick in (*snapshot.ticks, streamed)] == [(3, day), (3, day)]


async def test_a_refusal_goes_through_the_stream_but_not_into_the_snapshot(redis_server: RedisServer) -> None:
    async with open_redis_store(redis_server.url, prefix="refusal", stream_maxlen=1000, connect_timeout=1) as store:
        token = await store.try_acquire(5.0)
        assert token is not None
        assert await store.publish(token, [update(101.0), SymbolRejected("GONEUSDT", "binance", "2 Invalid")])
        snapshot = await store.load_snapshot()
        entries = await store.read("0-0", 0.1)
    assert snapshot.statuses == ()
    assert decode_entry(entries[-1][1]) == SymbolRejected("GONEUSDT", "binance", "2 Invalid")


async def test_a_range_of_the_stream_is_read_in_pages_on_the_clock_of_the_snapshot(redis_server: RedisServer) -> None:
    async with open_redis_store(redis_server.url, prefix="range", stream_maxlen=1000, connect_timeout=1) as store:
        token = await store.try_acquire(5.0)
        assert token is not None and await store.publish(token, [update(100.0 + step) for step in range(5)])
        snapshot = await store.load_snapshot()
        ids = [entry_id for entry_id, _ in await store.read("0-0", 0.1)]
        first_page = await store.read_range("0-0", snapshot.cursor, 2)
        rest = await store.read_range(first_page[-1][0], ids[3], 1000)
        none_older = await store.read_range(last_id_of_ms(stream_id_ms(ids[-1])), snapshot.cursor, 1000)
    assert abs(snapshot.now_ms - time.time() * 1000) < 1000  # Redis's TIME, the clock of its stream ids
    assert stream_id_ms(ids[-1]) <= snapshot.now_ms and snapshot.cursor == ids[-1]
    assert [entry_id for entry_id, _ in first_page] == ids[:2]  # after is excluded, count is kept to
    assert [entry_id for entry_id, _ in rest] == ids[2:4]  # until is included, nothing after it
    assert [getattr(decode_entry(fields), "seq", None) for _, fields in first_page + rest] == [1, 2, 3, 4]
    assert none_older == []  # nothing after the last id of the newest entry's millisecond


async def test_a_workers_interest_counts_until_its_lease_ends(redis_server: RedisServer) -> None:
    doge = Listing("DOGEUSDT", "binance", "DOGE/USDT", 5, "DOGE", "USDT")
    async with open_redis_store(redis_server.url, prefix="interest", stream_maxlen=1000, connect_timeout=1) as store:
        await store.publish_interest("w1", {"DOGEUSDT": doge}, 0.3)
        await store.publish_interest("w2", {}, 5.0)
        assert await store.read_interest() == {"DOGEUSDT": doge}
        await trio.sleep(0.4)  # w1 stopped renewing
        assert await store.read_interest() == {}


async def test_a_released_lease_is_free_at_once(redis_server: RedisServer) -> None:
    async with open_redis_store(redis_server.url, prefix="release", stream_maxlen=1000, connect_timeout=1) as store:
        token = await store.try_acquire(60.0)
        assert token is not None
        await store.release(token + 1)  # not ours: stays held
        assert await store.try_acquire(60.0) is None
        await store.release(token)
        assert await store.try_acquire(60.0) == token + 1


class TickLog:
    """A real WebSocket client subscribed to SYMBOL, recording (seq, price, ts) of every tick it gets."""

    def __init__(self) -> None:
        self.ticks: list[tuple[int, float, int]] = []
        self.day_stats: dict[int, tuple[object, ...]] = {}  # seq -> precision, open, high, low, volume
        self.stale_changes: list[bool] = []
        self.changed = trio.Event()

    async def run(self, address: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            await ws.send_message(orjson.dumps({"action": "subscribe", "symbols": [SYMBOL]}).decode())
            task_status.started()
            await self._record(ws)

    async def _record(self, ws: WebSocketConnection) -> None:
        while True:
            message = orjson.loads(await ws.get_message())
            if message.get("type") == "tick":
                self.ticks.append((message["seq"], message["price"], message["ts"]))
                self.day_stats[message["seq"]] = tuple(message[key] for key in DAY_KEYS)
            elif message.get("type") == "status" and message.get("ticker") == SYMBOL:
                self.stale_changes.append(message["stale"])
            self.changed.set()
            self.changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(10):
            while len(self.ticks) < count:
                await self.changed.wait()

    async def wait_past(self, seq: int) -> None:
        with trio.fail_after(10):
            while not self.ticks or self.ticks[-1][0] <= seq:
                await self.changed.wait()

    def seqs(self) -> list[int]:
        return [seq for seq, _, _ in self.ticks]


def strictly_increasing(values: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


async def test_two_workers_give_their_clients_the_same_feed(redis_server: RedisServer) -> None:
    settings = scale_out_settings(redis_server)
    async with open_workers(settings) as workers, trio.open_nursery() as nursery:
        await elected(workers)  # one leads, the other follows: both clients get the leader's feed through Redis
        logs = [TickLog(), TickLog()]
        for log, worker in zip(logs, workers, strict=True):
            await nursery.start(log.run, worker.address)
        for log in logs:
            await log.wait_for(40)
        nursery.cancel_scope.cancel()

        first, second = ({seq: tick for seq, *tick in log.ticks} for log in logs)
        common = sorted(first.keys() & second.keys())
        assert len(common) >= 30
        assert all(first[seq] == second[seq] for seq in common)  # same price and event time per seq
        first_day, second_day = (log.day_stats for log in logs)
        assert all(first_day[seq] == second_day[seq] for seq in common)  # and the same 24 h statistics
        assert all(None not in first_day[seq] for seq in common)  # the demo's, known from its first tick
        assert all(strictly_increasing(log.seqs()) for log in logs)

        health = [await worker.health() for worker in workers]
        assert [h["redis"]["state"] for h in health] == ["connected", "connected"]
        assert sorted(h["redis"]["leader"] for h in health) == [False, True]
        assert health[0]["sources"]["redis"]["state"] == "live"
        assert "demo" in health[1]["sources"]  # the leader's source state reaches every worker


async def test_a_new_worker_starts_with_the_shared_snapshot(redis_server: RedisServer) -> None:
    settings = scale_out_settings(redis_server)
    async with open_workers(settings, count=1) as (first,):
        await trio.sleep(0.2)
        latecomer = assemble(settings.model_copy(update={"role": "fanout"}))
        async with trio.open_nursery() as nursery:
            await nursery.start(latecomer.service.run)
            late = latecomer.hub.latest(SYMBOL)
            early = first.assembly.hub.latest(SYMBOL)
            assert late is not None and early is not None
            assert late.seq > 1 and abs(late.seq - early.seq) <= 2  # the leader keeps publishing meanwhile
            assert isinstance(latecomer.ingest, ScaleOutNode) and latecomer.ingest.leader is None
            nursery.cancel_scope.cancel()


async def test_killing_the_leader_moves_ingest_and_seq_keeps_increasing(redis_server: RedisServer) -> None:
    settings = scale_out_settings(redis_server)
    async with open_workers(settings) as workers, trio.open_nursery() as nursery:
        leader, (follower,) = await elected(workers)
        log = TickLog()
        await nursery.start(log.run, follower.address)
        await log.wait_for(10)

        leader.assembly.service.stop()
        stopped_at = trio.current_time()
        with trio.fail_after(LEASE):
            while not follower.leading:
                await trio.sleep(0.01)
        took_over_after = trio.current_time() - stopped_at
        before = log.seqs()[-1]
        await log.wait_past(before + 10)
        nursery.cancel_scope.cancel()
    assert took_over_after < LEASE
    assert strictly_increasing(log.seqs())


async def test_both_workers_recover_when_redis_restarts_mid_stream(redis_server: RedisServer) -> None:
    settings = scale_out_settings(redis_server)
    async with open_workers(settings) as workers, trio.open_nursery() as nursery:
        logs = [TickLog(), TickLog()]
        for log, worker in zip(logs, workers, strict=True):
            await nursery.start(log.run, worker.address)
        for log in logs:
            await log.wait_for(100)

        await redis_server.stop()
        with trio.fail_after(5):
            while any(log.stale_changes[-1:] != [True] for log in logs):
                await trio.sleep(0.02)
        health = [await worker.health() for worker in workers]
        assert [h["redis"]["state"] for h in health] == ["disconnected", "disconnected"]
        assert all(h["sources"]["redis"]["state"] == "reconnecting" for h in health)
        last_seen = [log.seqs()[-1] for log in logs]

        await redis_server.start()  # empty: Redis lost the seq counters and the lease
        with trio.fail_after(5):
            while any(not worker.node.follower.connected for worker in workers):
                await trio.sleep(0.01)
        # Each worker raised the counter to what its clients saw before the new leader got that far.
        async with coredis.Redis.from_url(redis_server.url, decode_responses=True) as client:
            assert int(await client.hget(f"{settings.redis_prefix}:seq", SYMBOL) or 0) >= max(last_seen)
        for log, seen in zip(logs, last_seen, strict=True):
            await log.wait_past(seen + 5)
        nursery.cancel_scope.cancel()

        health = [await worker.health() for worker in workers]
        assert [h["redis"]["state"] for h in health] == ["connected", "connected"]
        assert sorted(h["redis"]["leader"] for h in health) == [False, True]
        assert all(log.stale_changes[-1] is False for log in logs)
        assert all(strictly_increasing(log.seqs()) for log in logs)


async def test_a_killed_ingest_process_is_replaced_when_its_lease_expires(redis_server: RedisServer) -> None:
    settings = scale_out_settings(redis_server)
    environment = {
        **os.environ,
        "DEMO_MODE": "true",
        "TICKER_DEMO_INTERVAL": "0.02",
        "TICKER_REDIS_URL": redis_server.url,
        "TICKER_REDIS_PREFIX": settings.redis_prefix,
        "TICKER_REDIS_LEASE": str(LEASE),
    }
    command = [sys.executable, "-m", "trio_ticker", "ingest"]
    ingest = await trio.lowlevel.open_process(command, env=environment, stderr=subprocess.DEVNULL)
    try:
        async with coredis.Redis.from_url(redis_server.url, decode_responses=True) as client:
            with trio.fail_after(30):
                while await client.get(f"{settings.redis_prefix}:leader") is None:
                    await trio.sleep(0.05)
        async with open_workers(settings, count=1) as (worker,), trio.open_nursery() as nursery:
            log = TickLog()
            await nursery.start(log.run, worker.address)
            await log.wait_for(10)
            assert not worker.leading  # the ingest process holds the lease

            ingest.kill()  # no release: the lease has to expire
            await ingest.wait()
            killed_at = trio.current_time()
            with trio.fail_after(LEASE * 2):
                while not worker.leading:
                    await trio.sleep(0.01)
            took_over_after = trio.current_time() - killed_at
            await log.wait_past(log.seqs()[-1] + 10)
            nursery.cancel_scope.cancel()
    finally:
        if ingest.returncode is None:
            ingest.kill()
    # The lease had between 2/3 and all of its time left; the worker's next attempt comes within lease/3.
    assert took_over_after <= LEASE + LEASE / 3 + 0.3
    assert strictly_increasing(log.seqs())
