"""Real server subprocesses for the process tests: started from the repository, read until they listen,
their output drained, killed at the end of the block if still running; and a client's first tick from one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import trio
from trio_websocket import WebSocketConnection

REPO = Path(__file__).resolve().parents[2]
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
