"""`python -m trio_ticker --workers N` as real processes: a killed worker under load is replaced while the others
keep streaming and the ingest lease moves; Ctrl-C, a killed supervisor, the refusal without Redis; and what the
bare `hypercorn --workers` command does instead."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.support.helpers import FULL_PROTOCOL, read_welcome
from tests.support.process import HYPERCORN, REPO, ServerProcess, running
from tests.support.redis_server import RedisServer, open_redis_server

pytestmark = pytest.mark.slow
SYMBOLS = ("AAPL", "BTCUSDT")
LEASE = 2.0
HANDOVER = LEASE + LEASE / 3  # docs: a dead leader is replaced within lease + lease/3
SLACK = 1.5  # on top, for a loaded 2-core test machine (the leader's last tick, delivery, scheduling)
GRACEFUL = 5.0
STOP_TIMEOUT = GRACEFUL + 15  # the workers' graceful shutdown, the supervisor's grace before SIGKILL, a loaded machine
STARTUP_TIMEOUT = 60.0
SUPERVISOR = [sys.executable, "-m", "trio_ticker"]
SERVING = re.compile(rb"event=worker_serving slot=(\d+) pid=(\d+)")


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async with open_redis_server() as server:
        yield server


def scale_out_env(redis: RedisServer) -> dict[str, str]:
    return {
        "TICKER_PORT": "0",
        "TICKER_REDIS_URL": redis.url,
        "TICKER_REDIS_LEASE": str(LEASE),
        "TICKER_DEMO_INTERVAL": "0.05",
        "TICKER_STOCK_SYMBOLS": SYMBOLS[0],
        "TICKER_CRYPTO_SYMBOLS": SYMBOLS[1],
        "TICKER_GRACEFUL_TIMEOUT": str(GRACEFUL),
    }


async def wait_for_log(server: ServerProcess, needle: bytes, count: int = 1) -> None:
    with trio.fail_after(STARTUP_TIMEOUT):
        while server.stderr.count(needle) < count:
            await trio.sleep(0.05)


def serving_pids(server: ServerProcess) -> dict[int, int]:
    """pid -> slot of every worker the supervisor has reported serving, in order."""
    return {int(pid): int(slot) for slot, pid in SERVING.findall(server.stderr)}


async def health(address: str) -> dict[str, Any]:
    """/healthz over a new connection, so any worker may answer."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://{address}/healthz")
    result: dict[str, Any] = response.json()
    return result


async def wait_for_health(address: str, pids: set[int], *, leader: bool = False) -> dict[str, Any]:
    """The redis block of /healthz as answered by one of `pids` (with `leader`: by the one that leads)."""
    with trio.fail_after(STARTUP_TIMEOUT):
        while True:
            block: dict[str, Any] = (await health(address))["redis"]
            if block["pid"] in pids and (block["leader"] or not leader):
                return block
            await trio.sleep(0.02)


def is_gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts: it serves nothing)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


async def wait_gone(pid: int) -> None:
    with trio.fail_after(20):
        while not is_gone(pid):
            await trio.sleep(0.05)


def serving_process(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of `pids` holds the server side of the TCP connection from `client_port` (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            if (local, remote) == (server_port, client_port):
                inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        with suppress(FileNotFoundError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with suppress(FileNotFoundError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return pid
    return None


def hypercorn_workers(master: int) -> list[int]:
    """The worker processes of a Hypercorn master (its other child is multiprocessing's resource tracker)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


class StreamingClient:
    """A batching WebSocket client of both symbols: records each tick's (seq, arrival time) and how it ended."""

    def __init__(self) -> None:
        self.ticks: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.port = 0
        self.close_code: int | None = None
        self.ended = trio.Event()
        self._scope = trio.CancelScope()

    async def run(self, address: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self._scope:
            try:
                async with open_websocket_url(f"ws://{address}/ws?batch=1", subprotocols=FULL_PROTOCOL) as ws:
                    await read_welcome(ws)
                    self.port = ws.local.port
                    await ws.send_message(orjson.dumps({"action": "subscribe", "symbols": list(SYMBOLS)}).decode())
                    task_status.started()
                    while True:
                        for message in orjson.loads(await ws.get_message()):
                            if message["type"] == "tick":
                                self.ticks[message["ticker"]].append((message["seq"], trio.current_time()))
            except ConnectionClosed as closed:
                self.close_code = closed.reason.code
            finally:
                self.ended.set()

    def stop(self) -> None:
        self._scope.cancel()

    def ticks_after(self, moment: float) -> int:
        return min(sum(arrived > moment for _, arrived in self.ticks[symbol]) for symbol in SYMBOLS)

    def longest_silence(self) -> float:
        arrivals = sorted(arrived for symbol in SYMBOLS for _, arrived in self.ticks[symbol])
        return max(later - earlier for earlier, later in itertools.pairwise(arrivals))

    def seqs_are_continuous(self) -> bool:
        """Per symbol every seq is the previous one plus one: nothing skipped, repeated or going backwards."""
        return all(
            later == earlier + 1
            for symbol in SYMBOLS
            for (earlier, _), (later, _) in itertools.pairwise(self.ticks[symbol])
        )


async def clients_on_every_worker(
    nursery: trio.Nursery, address: str, pids: list[int], per_worker: int
) -> dict[int, list[StreamingClient]]:
    """Connect until each worker serves `per_worker` of our clients (the kernel picks the worker that accepts)."""
    port = int(address.rsplit(":", 1)[1])
    placed: dict[int, list[StreamingClient]] = {pid: [] for pid in pids}
    for _ in range(40 * len(pids) * per_worker):
        if all(len(clients) >= per_worker for clients in placed.values()):
            return placed
        client = StreamingClient()
        await nursery.start(client.run, address)
        owner = serving_process(port, client.port, pids)
        if owner is not None and len(placed[owner]) < per_worker:
            placed[owner].append(client)
        else:
            client.stop()
    raise AssertionError(f"the workers did not all accept connections: {[len(c) for c in placed.values()]}")


async def test_a_killed_leader_worker_is_replaced_while_the_other_workers_keep_streaming(
    redis_server: RedisServer,
) -> None:
    async with running([*SUPERVISOR, "--workers", "3"], **scale_out_env(redis_server)) as server:
        await wait_for_log(server, b"workers=3")  # the supervisor's own event=serving: all three serve
        pids = list(serving_pids(server))
        assert len(pids) == 3
        leader = await wait_for_health(server.address, set(pids), leader=True)
        killed = leader["pid"]

        async with trio.open_nursery() as nursery:
            placed = await clients_on_every_worker(nursery, server.address, pids, per_worker=2)
            survivors = [client for pid, clients in placed.items() if pid != killed for client in clients]
            with trio.fail_after(STARTUP_TIMEOUT):
                while any(client.ticks_after(0) < 10 for client in survivors):
                    await trio.sleep(0.05)

            os.kill(killed, signal.SIGKILL)
            killed_at = trio.current_time()
            with trio.fail_after(10):
                for client in placed[killed]:
                    await client.ended.wait()
            # A replacement serves, and the lease has moved to a live worker.
            await wait_for_log(server, b"event=worker_serving", count=4)
            (replacement,) = set(serving_pids(server)) - set(pids)
            assert serving_pids(server)[replacement] == serving_pids(server)[killed]  # the dead one's slot
            await wait_for_health(server.address, {replacement})
            live = {replacement, *pids} - {killed}
            new_leader = await wait_for_health(server.address, live, leader=True)
            assert new_leader["fencing_token"] > leader["fencing_token"]
            with trio.fail_after(STARTUP_TIMEOUT):
                while any(client.ticks_after(killed_at + HANDOVER) < 20 for client in survivors):
                    await trio.sleep(0.05)
            assert all(not client.ended.is_set() for client in survivors)

            server.process.send_signal(signal.SIGTERM)
            with trio.fail_after(STOP_TIMEOUT):
                await server.process.wait()
                for client in survivors:
                    await client.ended.wait()

    assert [client.close_code for client in placed[killed]] == [1006, 1006]  # their worker died
    assert all(client.seqs_are_continuous() for client in survivors)
    silences = [client.longest_silence() for client in survivors]
    assert max(silences) <= HANDOVER + SLACK, silences  # the handover, and nothing more
    assert [client.close_code for client in survivors] == [1001] * len(survivors)
    assert server.process.returncode == 0
    assert server.stderr.count(b"event=worker_stopped") == 3
    assert len(re.findall(rb"event=worker_stopped slot=\d pid=\d+ status=0\n", server.stderr)) == 3
    assert b"Traceback" not in server.stderr


async def test_ctrl_c_in_a_terminal_stops_each_worker_once_and_gracefully() -> None:
    # The terminal sends SIGINT to the foreground process group; the workers are not in it.
    command = [*SUPERVISOR, "--workers", "1"]
    async with running(command, process_group=0, TICKER_PORT="0", TICKER_REDIS_URL="") as server:
        await wait_for_log(server, b"workers=1")
        (worker,) = serving_pids(server)
        async with open_websocket_url(f"ws://{server.address}/ws", subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            await ws.send_message('{"action":"subscribe","symbol":"AAPL"}')
            await ws.get_message()
            os.killpg(server.process.pid, signal.SIGINT)
            with pytest.raises(ConnectionClosed) as closed, trio.fail_after(10):
                while True:
                    await ws.get_message()
        with trio.fail_after(STOP_TIMEOUT):
            await server.process.wait()
    assert closed.value.reason.code == 1001
    assert server.process.returncode == 0
    assert f"event=worker_stopped slot=0 pid={worker} status=0\n".encode() in server.stderr
    assert server.stderr.count(b"event=shutdown signal=") == 2  # the supervisor's SIGINT, the worker's SIGTERM
    assert b"Traceback" not in server.stderr


async def test_a_worker_whose_supervisor_is_killed_shuts_down_instead_of_holding_the_port() -> None:
    async with running([*SUPERVISOR, "--workers", "1"], TICKER_PORT="0", TICKER_REDIS_URL="") as server:
        await wait_for_log(server, b"workers=1")
        (worker,) = serving_pids(server)
        server.process.kill()
        await server.process.wait()
        await wait_gone(worker)
        await wait_for_log(server, b"event=service_stopped")
    assert b"event=supervisor_gone" in server.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--workers", "2"], b"trio_ticker: --workers 2 needs TICKER_REDIS_URL: without Redis each worker"),
        (["--listen-fd", "0"], b"trio_ticker: --listen-fd 0 is not an inherited listening TCP socket:"),
    ],
)
async def test_a_worker_option_that_cannot_work_is_refused_with_one_line(arguments: list[str], message: bytes) -> None:
    with trio.fail_after(30):
        result = await trio.run_process(
            [*SUPERVISOR, *arguments],
            cwd=REPO,
            env={**os.environ, "TICKER_REDIS_URL": "", "TICKER_PORT": "0"},
            stdin=subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count(b"\n") == 1


async def test_bare_hypercorn_workers_all_stop_when_one_is_killed() -> None:
    """What the README warns about: Hypercorn's master restarts nothing, it stops every worker and exits."""
    command = [HYPERCORN, "trio_ticker.app:app", "--worker-class", "trio", "--workers", "2", "--bind", "127.0.0.1:0"]
    async with running(command) as server:
        await wait_for_log(server, b"Running on http://", count=2)
        workers = hypercorn_workers(server.process.pid)
        assert len(workers) == 2
        try:
            os.kill(workers[0], signal.SIGKILL)
            with trio.fail_after(30):
                await server.process.wait()
            await wait_gone(workers[1])
        finally:
            for pid in workers:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    with pytest.raises(OSError):
        host, port = server.address.split(":")
        await trio.open_tcp_stream(host, int(port))
