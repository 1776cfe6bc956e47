"""Recovery across an ingest leader change, with a real redis-server and two workers on real sockets: every
worker names the stream with the epoch stored in Redis, seqs go on under the new leader, and a client of the
stopped leader that resubscribes on the other worker with `since` sees every seq exactly once, in order."""

from __future__ import annotations

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.support.full_protocol_reader import MessageReader
from tests.support.helpers import FULL_PROTOCOL
from tests.support.live_server import serve_app
from tests.support.redis_server import open_redis_server
from tests.support.scaleout_workers import LEASE, Worker, scale_out_settings

SYMBOL = "BTCUSDT"
WAIT = 10 * LEASE


async def serve_worker(worker: Worker, scope: trio.CancelScope, *, task_status: trio.TaskStatus[None]) -> None:
    with scope:
        async with serve_app(worker.app, worker.assembly.settings) as address:
            worker.address = address
            task_status.started()
            await trio.sleep_forever()


async def first_ticks(address: str, seen: list[int]) -> str:
    """A client subscribes plainly and appends its first 10 seqs to `seen`, then leaves; the stream's epoch."""
    async with open_websocket_url(f"ws://{address}/ws?batch=1", subprotocols=FULL_PROTOCOL) as ws:
        reader = MessageReader(ws)
        epoch: str = (await reader.welcome())["epoch"]
        await reader.send({"action": "subscribe", "symbol": SYMBOL})
        assert (await reader.reply())["type"] == "subscribed"
        while len(seen) < 10:
            seen.append((await reader.tick())["seq"])
    return epoch


async def resume(address: str, epoch: str, seen: list[int]) -> None:
    """A client comes back in `epoch` with `since` = the last seq in `seen`: it must be recovered, and its next 40
    seqs are appended to `seen`."""
    async with open_websocket_url(f"ws://{address}/ws?batch=1", subprotocols=FULL_PROTOCOL) as ws:
        reader = MessageReader(ws)
        assert (await reader.welcome())["epoch"] == epoch
        await reader.send({"action": "subscribe", "symbol": SYMBOL, "since": {SYMBOL: seen[-1]}, "epoch": epoch})
        assert (await reader.reply())["recovered"] == {SYMBOL: True}
        resumed_at = len(seen)
        while len(seen) < resumed_at + 40:
            seen.append((await reader.tick())["seq"])


async def test_a_client_of_a_stopped_leader_recovers_on_another_worker() -> None:
    async with open_redis_server() as server, trio.open_nursery() as nursery:
        settings = scale_out_settings(server)
        workers = [Worker(settings), Worker(settings)]
        scopes = [trio.CancelScope(), trio.CancelScope()]
        for worker, scope in zip(workers, scopes, strict=True):
            await nursery.start(serve_worker, worker, scope)
        with trio.fail_after(WAIT):
            while sum(worker.leading for worker in workers) != 1:
                await trio.sleep(0.01)
        leader_index = next(index for index, worker in enumerate(workers) if worker.leading)
        leader, other = workers[leader_index], workers[1 - leader_index]

        seen: list[int] = []
        with trio.fail_after(WAIT):
            async with open_websocket_url(f"ws://{leader.address}/ws?batch=1", subprotocols=FULL_PROTOCOL) as ws:
                reader = MessageReader(ws)
                epoch = (await reader.welcome())["epoch"]
                await reader.send({"action": "subscribe", "symbol": SYMBOL})
                assert (await reader.reply())["type"] == "subscribed"
                while len(seen) < 10:
                    seen.append((await reader.tick())["seq"])
                scopes[leader_index].cancel()  # the leader stops: its clients are cut off, the lease moves
                try:
                    while True:
                        seen.append((await reader.tick())["seq"])
                except ConnectionClosed:
                    pass
            while not other.leading:
                await trio.sleep(0.01)
            while (tick := other.assembly.hub.latest(SYMBOL)) is None or tick.seq < seen[-1] + 20:
                await trio.sleep(0.01)  # the new leader has numbered on

        with trio.fail_after(WAIT):
            await resume(other.address, epoch, seen)  # the same stream, under the same epoch, on every worker
        nursery.cancel_scope.cancel()
    assert seen == list(range(seen[0], seen[0] + len(seen)))  # every seq once, in order, across the handover


async def test_a_worker_started_later_recovers_a_client_from_the_ticks_in_the_redis_stream() -> None:
    """Worker B starts after the ticks its client missed were published: it never served them, but its follower
    read them from the stream into its recovery history, so the resubscribe recovers them all."""
    async with open_redis_server() as server, trio.open_nursery() as nursery:
        settings = scale_out_settings(server)
        first = Worker(settings)
        await nursery.start(serve_worker, first, trio.CancelScope())
        with trio.fail_after(WAIT):
            while not first.leading:
                await trio.sleep(0.01)

        seen: list[int] = []
        with trio.fail_after(WAIT):
            epoch = await first_ticks(first.address, seen)
            while (tick := first.assembly.hub.latest(SYMBOL)) is None or tick.seq < seen[-1] + 20:
                await trio.sleep(0.01)  # published while the client is away, before the second worker exists

        second = Worker(settings)
        await nursery.start(serve_worker, second, trio.CancelScope())
        with trio.fail_after(WAIT):
            await resume(second.address, epoch, seen)
        assert not second.leading  # every tick it gave came through Redis from the first worker
        nursery.cancel_scope.cancel()
    assert seen == list(range(seen[0], seen[0] + len(seen)))  # every seq once, in order: the missed ones, then live
