"""The two ways users start the server, as real subprocesses, stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tests.helpers import FULL_PROTOCOL

REPO = Path(__file__).resolve().parent.parent
HYPERCORN = str(Path(sys.executable).parent / "hypercorn")
URL_PATTERN = re.compile(rb"(?:Running on|urls=)\s*http://(127\.0\.0\.1:\d+)")


class ServerProcess:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.stderr = bytearray()
        self.stdout = bytearray()  # only with `running(..., capture_stdout=True)`
        self.address = ""

    async def read_until_listening(self) -> None:
        assert self.process.stderr is not None
        while not (match := URL_PATTERN.search(self.stderr)):
            chunk = await self.process.stderr.receive_some()
            if not chunk:
                raise AssertionError(f"server exited before listening:\n{self.stderr.decode()}")
            self.stderr += chunk
        self.address = match.group(1).decode()

    async def drain_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.receive_some():
            self.stderr += chunk

    async def drain_stdout(self) -> None:
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.receive_some():
            self.stdout += chunk


@asynccontextmanager
async def running(
    command: Sequence[str], *, capture_stdout: bool = False, process_group: int | None = None, **env: str
) -> AsyncIterator[ServerProcess]:
    """`command` started from the repository, until it listens; killed at the end of the block if still running.

    `process_group=0` starts it in a process group of its own, as a shell does (a terminal's Ctrl-C goes to it).
    """
    environment = {**os.environ, "DEMO_MODE": "true", "TICKER_DEMO_INTERVAL": "0.1", **env}
    stdout = subprocess.PIPE if capture_stdout else subprocess.DEVNULL  # Hypercorn's `--access-logfile -`
    process = await trio.lowlevel.open_process(
        list(command),
        cwd=REPO,
        env=environment,
        stdout=stdout,
        stderr=subprocess.PIPE,
        process_group=process_group,
    )
    server = ServerProcess(process)
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(30):
                await server.read_until_listening()
            nursery.start_soon(server.drain_stderr)
            if capture_stdout:
                nursery.start_soon(server.drain_stdout)
            yield server
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def receive_a_tick(ws: WebSocketConnection) -> dict[str, object]:
    await ws.send_message('{"action":"subscribe","symbol":"AAPL"}')
    with trio.fail_after(10):
        while (message := orjson.loads(await ws.get_message()))["type"] != "tick":
            pass
    assert message["ticker"] == "AAPL"
    return message  # type: ignore[no-any-return]


@pytest.mark.slow
async def test_the_hypercorn_command_streams_and_exits_cleanly_on_sigterm() -> None:
    command = [HYPERCORN, "trio_ticker.app:app", "--worker-class", "trio", "--bind", "127.0.0.1:0"]
    async with (
        running(command) as server,
        open_websocket_url(f"ws://{server.address}/ws", subprotocols=FULL_PROTOCOL) as ws,
    ):
        await receive_a_tick(ws)
        server.process.send_signal(signal.SIGTERM)
        started = trio.current_time()
        with trio.fail_after(10):
            await server.process.wait()
        elapsed = trio.current_time() - started
    assert server.process.returncode == 0
    assert elapsed < 3 + 2  # Hypercorn's default graceful timeout is 3 s
    assert b"Traceback" not in server.stderr
    assert b"event=service_stopped" in server.stderr


@pytest.mark.slow
async def test_python_m_closes_clients_with_going_away_then_exits() -> None:
    command = [sys.executable, "-m", "trio_ticker"]
    async with running(command, TICKER_PORT="0", TICKER_GRACEFUL_TIMEOUT="5") as server:
        async with open_websocket_url(f"ws://{server.address}/ws", subprotocols=FULL_PROTOCOL) as ws:
            await receive_a_tick(ws)
            server.process.send_signal(signal.SIGTERM)
            started = trio.current_time()
            with pytest.raises(ConnectionClosed) as closed, trio.fail_after(10):
                while True:
                    await ws.get_message()
            assert closed.value.reason.code == 1001
            assert closed.value.reason.reason == "server shutting down"
        with trio.fail_after(10):
            await server.process.wait()
        elapsed = trio.current_time() - started
    assert server.process.returncode == 0
    assert elapsed < 5
    assert b"Traceback" not in server.stderr
    assert b"event=shutdown signal=SIGTERM clients=1" in server.stderr
    assert b"event=service_stopped" in server.stderr  # sources cancelled and closed, after the clients
    assert server.stderr.index(b"event=client_closed") < server.stderr.index(b"event=service_stopped")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "status"),
    [
        ([sys.executable, "-m", "trio_ticker"], 2),
        # Hypercorn's multi-process supervisor loses its worker's exit status (it reports 0),
        # so for this command the message and the refusal to serve are what we can check.
        ([HYPERCORN, "trio_ticker.app:app", "--worker-class", "trio", "--bind", "127.0.0.1:0"], None),
    ],
)
async def test_a_bad_setting_stops_startup_with_one_clear_message(command: list[str], status: int | None) -> None:
    with trio.fail_after(30):
        result = await trio.run_process(
            command,
            cwd=REPO,
            env={**os.environ, "TICKER_DEMO_INTERVAL": "soon"},
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    if status is not None:
        assert result.returncode == status
    assert result.stderr.startswith(b"trio_ticker: invalid configuration:\n  TICKER_DEMO_INTERVAL: Input should be")
    assert b"Traceback" not in result.stderr
    assert b"Running on" not in result.stderr
