"""Fuzz: thousands of hostile WebSocket connections against a real server; nothing ends it, nothing leaks.

Each connection is drawn from a seeded `random.Random` (tests/support/hostile.py): pipelined frames, invalid
UTF-8, RSV bits, unmasked frames, bad opcodes, truncated and huge headers, lying lengths, a hang-up in
the middle of the handshake, random bytes. Meanwhile a batching client streams and must miss no tick.
After each half of the run every socket and task is given back; RSS, whose high-water mark the first
half raises (the allocator keeps its arenas: 7-12 MB measured), grows less than RSS_GROWTH_BOUND in the second.

Soak runs: TICKER_FUZZ_CONNECTIONS=50000 (default 2000; the bare-hypercorn run takes a quarter of it), and
TICKER_FUZZ_SEED to draw other connections.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.helpers import FULL_PROTOCOL, count_tasks, make_settings, read_welcome
from tests.support.hostile import HostileCase, hostile_case, run_hostile
from tests.support.live_server import serve_app
from tests.support.process import HYPERCORN, receive_a_tick, running
from tests.support.well_behaved import well_behaved_client
from trio_ticker.app import assemble

CONNECTIONS = int(os.environ.get("TICKER_FUZZ_CONNECTIONS", "2000"))
SEED = int(os.environ.get("TICKER_FUZZ_SEED", "14"))
CONCURRENCY = 48
WARM_UP = 200  # connections more in the first half: first-use imports and caches are not a leak
RSS_GROWTH_BOUND = 8 * 1024 * 1024  # bytes the second half may add (measured: 1 MB per 2000, 3 MB per 40 000)
SETTLE_TIMEOUT = 30.0  # rejected requests' tasks end at Hypercorn's keep-alive timeout (5 s), WebSockets' at a ping


async def fuzz(address: str, count: int, rng: random.Random) -> None:
    """`count` hostile connections, CONCURRENCY at a time."""
    send_cases, receive_cases = trio.open_memory_channel[HostileCase](CONCURRENCY)

    async def client(cases: trio.MemoryReceiveChannel[HostileCase]) -> None:
        async with cases:
            async for case in cases:
                await run_hostile(address, case)

    async with trio.open_nursery() as nursery:
        for _ in range(CONCURRENCY):
            nursery.start_soon(client, receive_cases.clone())
        await receive_cases.aclose()
        async with send_cases:
            for _ in range(count):
                await send_cases.send(hostile_case(rng, address))


def task_tree() -> str:
    """Every live task with where it waits: the failure message when tasks do not drain."""
    lines: list[str] = []
    stack = [(trio.lowlevel.current_root_task(), 0)]
    while stack:
        task, depth = stack.pop()
        assert task is not None
        frames, coro = [], task.coro
        while coro is not None and (frame := getattr(coro, "cr_frame", None)) is not None:
            frames.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            coro = getattr(coro, "cr_await", None)
        lines.append(f"{'  ' * depth}{task.name} {' > '.join(frames[-3:])}")
        stack.extend((child, depth + 1) for nursery in task.child_nurseries for child in nursery.child_tasks)
    return "\n".join(lines)


def hypercorn_worker(supervisor: int) -> int:
    """The worker process Hypercorn's supervisor spawned (beside it: multiprocessing's resource tracker)."""
    for child in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split():
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    raise AssertionError("no Hypercorn worker")


def rss_bytes(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


async def wait_until(condition: Callable[[], bool], describe: Callable[[], object]) -> None:
    """Poll `condition` for up to SETTLE_TIMEOUT; the failure message shows `describe()`."""
    with trio.move_on_after(SETTLE_TIMEOUT):
        while not condition():
            await trio.sleep(0.1)
        return
    raise AssertionError(f"not settled after {SETTLE_TIMEOUT} s: {describe()}")


async def test_thousands_of_hostile_connections_leave_the_server_serving_and_nothing_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A short ping interval: a closed WebSocket's ping task notices the close at its next ping.
    settings = make_settings(demo_interval=0.05, ws_ping_interval=1.0, ws_read_timeout=2.0, log_level="WARNING")
    assembly = assemble(settings)
    app, connections = assembly.app, assembly.connections
    rng = random.Random(SEED)
    caplog.set_level(logging.WARNING)
    logging.getLogger("trio_ticker").addHandler(caplog.handler)
    try:
        with trio.fail_after(120 + CONNECTIONS * 0.05):
            async with serve_app(app, settings) as address, well_behaved_client(f"ws://{address}/ws") as ticks:
                tasks_before = count_tasks()

                async def fuzz_and_settle(count: int) -> int:
                    """Run `count` connections, wait until only the well-behaved client is left; RSS then."""
                    await fuzz(address, count, rng)
                    await wait_until(
                        lambda: connections.statistics().open == 1 and count_tasks() == tasks_before,
                        lambda: f"{connections.statistics()}, {tasks_before} tasks before:\n{task_tree()}",
                    )
                    return rss_bytes()

                rss_first_half = await fuzz_and_settle(WARM_UP + CONNECTIONS // 2)
                rss_second_half = await fuzz_and_settle(CONNECTIONS - CONNECTIONS // 2)
                async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as late:
                    await read_welcome(late)
                    await receive_a_tick(late)  # still accepting and streaming
                await ticks.wait_for_more()  # and the client streaming all along missed no tick
    finally:
        logging.getLogger("trio_ticker").removeHandler(caplog.handler)
    assert rss_second_half - rss_first_half < RSS_GROWTH_BOUND, (rss_first_half, rss_second_half)
    assert assembly.hub.statistics().clients == 0
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]
    assert connections.statistics().failed == 0  # nothing raised out of Hypercorn: the races are fixed


@pytest.mark.slow
async def test_the_bare_hypercorn_command_survives_the_fuzz_and_gives_back_its_sockets() -> None:
    command = [HYPERCORN, "trio_ticker.app:app", "--worker-class", "trio", "--bind", "127.0.0.1:0"]
    command += ["--websocket-ping-interval", "1", "--read-timeout", "2"]
    rng = random.Random(SEED + 1)
    async with running(command, TICKER_DEMO_INTERVAL="0.05") as server:
        try:
            worker = hypercorn_worker(server.process.pid)
            with trio.fail_after(120 + CONNECTIONS * 0.05):
                async with well_behaved_client(f"ws://{server.address}/ws") as ticks:
                    sockets_before = open_sockets(worker)

                    async def fuzz_and_settle(count: int) -> int:
                        await fuzz(server.address, count, rng)
                        assert server.process.returncode is None
                        await wait_until(
                            lambda: open_sockets(worker) == sockets_before,
                            lambda: f"{open_sockets(worker)} sockets open, {sockets_before} before",
                        )
                        return rss_bytes(worker)

                    rss_first_half = await fuzz_and_settle(WARM_UP + CONNECTIONS // 8)
                    rss_second_half = await fuzz_and_settle(CONNECTIONS // 8)
                    async with open_websocket_url(f"ws://{server.address}/ws", subprotocols=FULL_PROTOCOL) as late:
                        await read_welcome(late)
                        await receive_a_tick(late)
                    await ticks.wait_for_more()
        finally:  # SIGTERM, so that the supervisor stops its worker (a SIGKILL would orphan it)
            server.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(15):
                await server.process.wait()
    assert rss_second_half - rss_first_half < RSS_GROWTH_BOUND, (rss_first_half, rss_second_half)
    assert b"Traceback" not in server.stderr
    assert b"[ERROR]" not in server.stderr and b"level=ERROR" not in server.stderr
    assert b"event=connection_failed" not in server.stderr
