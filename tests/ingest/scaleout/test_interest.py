"""On-demand symbols across workers, against a real redis-server: a client of a follower worker makes the
leader subscribe upstream (its interest in Redis, under a lease), gets the first price through Redis, and
the leader drops the symbol once the follower's linger ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.demand import ListedDirectory
from tests.support.helpers import FULL_PROTOCOL
from tests.support.redis_server import RedisServer, open_redis_server
from tests.support.scaleout_workers import elected, open_workers, scale_out_settings

pytestmark = pytest.mark.slow
CONFIGURED = ("AAPL", "BTCUSDT")
LINGER = 0.5


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async with open_redis_server() as server:
        yield server


async def test_a_follower_workers_client_drives_the_leaders_upstream(redis_server: RedisServer) -> None:
    settings = scale_out_settings(
        redis_server,
        stock_symbols=("AAPL",),
        crypto_symbols=("BTCUSDT",),
        default_symbol="BTCUSDT",
        symbol_linger=LINGER,
    )
    directory = ListedDirectory("demo", (*CONFIGURED, "DOGEUSDT"), precision=5)
    with trio.fail_after(30):
        async with open_workers(settings, directory=directory) as workers:
            leader, (follower,) = await elected(workers)
            (demo,) = leader.assembly.sources
            assert demo.symbols == CONFIGURED
            url = f"ws://{follower.address}/ws"
            async with open_websocket_url(url, subprotocols=FULL_PROTOCOL) as ws:
                await ws.send_message(orjson.dumps({"action": "subscribe", "symbols": ["DOGEUSDT"]}).decode())
                while (message := orjson.loads(await ws.get_message()))["type"] != "tick":
                    assert message["type"] in ("welcome", "subscribed", "status")
                assert message["ticker"] == "DOGEUSDT"
                assert demo.symbols == (*CONFIGURED, "DOGEUSDT")
                assert leader.node.leader is not None
                assert leader.node.leader.interest.streaming() == {"DOGEUSDT"}
                await ws.send_message(orjson.dumps({"action": "unsubscribe", "symbols": ["DOGEUSDT"]}).decode())
                unsubscribed_at = trio.current_time()
                while demo.symbols != CONFIGURED:
                    await trio.sleep(0.02)
                assert trio.current_time() - unsubscribed_at >= LINGER  # the follower's linger, then the leader
            assert follower.node.interest.symbols() == frozenset()
