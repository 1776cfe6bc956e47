"""Scale-out workers for the Redis tests: each an assembled app served by a real Hypercorn on port 0, the
settings that point them at a test's redis-server, and the wait until exactly one of them leads."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import trio

from tests.support.helpers import make_settings
from tests.support.live_server import serve_app
from tests.support.redis_server import RedisServer
from trio_ticker.app import assemble
from trio_ticker.catalogue.directory import SymbolDirectory
from trio_ticker.ingest.scaleout.node import ScaleOutNode
from trio_ticker.settings import Settings

LEASE = 1.0
prefixes = itertools.count()


def scale_out_settings(server: RedisServer, **overrides: Any) -> Settings:
    return make_settings(
        redis_url=server.url,
        redis_prefix=f"test{next(prefixes)}",
        redis_lease=LEASE,
        redis_command_timeout=0.5,
        redis_reconnect_initial_delay=0.05,
        redis_reconnect_max_delay=0.2,
        demo_interval=0.02,
        **overrides,
    )


class Worker:
    """One worker's assembled app served by a real Hypercorn on port 0."""

    def __init__(self, settings: Settings, directory: SymbolDirectory | None = None) -> None:
        self.assembly = assemble(settings, directory=directory)
        self.app = self.assembly.app
        self.address = ""

    @property
    def leading(self) -> bool:
        assert self.node.leader is not None
        return self.node.leader.leading

    @property
    def node(self) -> ScaleOutNode:
        assert isinstance(self.assembly.ingest, ScaleOutNode)
        return self.assembly.ingest

    async def health(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://{self.address}/healthz")
        result: dict[str, Any] = response.json()
        return result


@asynccontextmanager
async def open_workers(
    settings: Settings, count: int = 2, *, directory: SymbolDirectory | None = None
) -> AsyncIterator[list[Worker]]:
    workers = [Worker(settings, directory) for _ in range(count)]
    async with AsyncExitStack() as stack:
        for worker in workers:
            worker.address = await stack.enter_async_context(serve_app(worker.app, settings))
        yield workers


async def elected(workers: list[Worker]) -> tuple[Worker, list[Worker]]:
    """The leader and the others, once exactly one worker leads. Workers serve before any of them leads (a
    follower needs no leader to serve), so on a loaded machine the first campaign may end after both started."""
    with trio.fail_after(5 * LEASE):
        while sum(worker.leading for worker in workers) != 1:
            await trio.sleep(0.01)
    leader = next(worker for worker in workers if worker.leading)
    return leader, [worker for worker in workers if worker is not leader]
