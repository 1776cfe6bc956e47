"""A well-behaved WebSocket client for real-server tests: subscribes once and counts ticks.

Limit tests run one beside the offender and assert it kept receiving ticks, in order, on the
same connection, after the offender was refused. It batches (`?batch=1`): a batching client is sent
every tick it keeps up with, so "no gap" holds even when a loaded test machine stalls the server for
a moment (a single-frame client then skips superseded ticks, docs/protocol.md "Ordering and gaps").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import trio
from trio_websocket import open_websocket_url

from tests.support.helpers import FULL_PROTOCOL, read_welcome


class TickCounter:
    def __init__(self) -> None:
        self.seqs: list[int] = []
        self._changed = trio.Event()

    def add(self, seq: int) -> None:
        self.seqs.append(seq)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for_more(self, count: int = 3) -> None:
        """Return once `count` more ticks arrived (10 s at most); their sequence numbers have no gap."""
        target = len(self.seqs) + count
        with trio.fail_after(10):
            while len(self.seqs) < target:
                await self._changed.wait()
        assert self.seqs == list(range(self.seqs[0], self.seqs[0] + len(self.seqs)))


async def _count_ticks(url: str, symbol: str, counter: TickCounter, task_status: trio.TaskStatus[None]) -> None:
    async with open_websocket_url(url + ("&" if "?" in url else "?") + "batch=1", subprotocols=FULL_PROTOCOL) as ws:
        await read_welcome(ws)
        await ws.send_message(orjson.dumps({"action": "subscribe", "symbol": symbol}).decode())
        ack, *snapshot = orjson.loads(await ws.get_message())
        assert ack["type"] == "subscribed"
        task_status.started()
        messages = snapshot
        while True:
            for message in messages:
                if message["type"] == "tick":
                    assert message["ticker"] == symbol
                    counter.add(message["seq"])
            messages = orjson.loads(await ws.get_message())


@asynccontextmanager
async def well_behaved_client(url: str, symbol: str = "AAPL") -> AsyncIterator[TickCounter]:
    """A client streaming `symbol` for the duration of the block (a close or error fails the test)."""
    counter = TickCounter()
    async with trio.open_nursery() as nursery:
        await nursery.start(_count_ticks, url, symbol, counter)
        await counter.wait_for_more(1)
        yield counter
        nursery.cancel_scope.cancel()
