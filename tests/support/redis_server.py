"""A throwaway `redis-server` for the scale-out tests: a free port, no persistence, stopped after.

Without the binary the tests skip with the install command, except under CI=true, where they fail:
.ci/run installs redis-server, so a missing one there is a broken setup.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio

READY_TIMEOUT = 10.0


def require_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is not None:
        return path
    message = "redis-server is not installed; install it with: sudo apt-get install -y redis-server"
    if os.environ.get("CI") == "true":
        pytest.fail(f"scale-out tests must run in CI: {message}")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on a fixed port, which `stop` and `start` can take down and bring back
    (its data lost, as without persistence) and `pause` and `resume` can freeze (its data kept)."""

    def __init__(self, binary: str, nursery: trio.Nursery) -> None:
        self._binary = binary
        self._nursery = nursery
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: trio.Process | None = None

    async def start(self) -> None:
        command = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._process = await self._nursery.start(
            partial(trio.run_process, command, stdout=subprocess.DEVNULL, check=False)
        )
        with trio.fail_after(READY_TIMEOUT):
            while not await self._answers_ping():
                await trio.sleep(0.02)

    async def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            await self._process.wait()
            self._process = None

    def pause(self) -> None:
        """SIGSTOP: Redis stops answering (clients time out) but keeps its data, unlike `stop`."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    async def _answers_ping(self) -> bool:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        except OSError:
            return False
        async with stream:
            await stream.send_all(b"PING\r\n")
            return (await stream.receive_some(64)).startswith(b"+PONG")


@asynccontextmanager
async def open_redis_server() -> AsyncIterator[RedisServer]:
    binary = require_redis_server()
    async with trio.open_nursery() as nursery:
        server = RedisServer(binary, nursery)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()
