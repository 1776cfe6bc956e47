"""The idle timer Hypercorn's connections use instead of its own: the same closes at the same times with no task
per connection, installed once, and the Hypercorn code it stands in for unchanged (if a release changes it, these
source checks fail: re-read it)."""

from __future__ import annotations

import gc
import inspect
import math
import textwrap
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from types import SimpleNamespace

import hypercorn.trio.tcp_server
import trio
import trio.testing
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import TrioSingleTask, WorkerContext

from tests.support.helpers import count_tasks, make_settings
from trio_ticker.app import create_app
from trio_ticker.edge import hypercorn_idle
from trio_ticker.edge.connection_timers import connection_timers
from trio_ticker.edge.hypercorn_idle import IdleTimer
from trio_ticker.edge.hypercorn_server import hypercorn_config, serve

HYPERCORN_SINGLE_TASK = """\
class TrioSingleTask:
    def __init__(self) -> None:
        self._handle: trio.CancelScope | None = None
        self._lock = trio.Lock()

    async def restart(self, task_group: TaskGroup, action: Callable) -> None:
        async with self._lock:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = await task_group._nursery.start(_cancel_wrapper(action))  # type: ignore

    async def stop(self) -> None:
        async with self._lock:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = None
"""


HYPERCORN_IDLE_TIMEOUT = """\
async def _idle_timeout(self) -> None:
    with trio.move_on_after(self.config.keep_alive_timeout):
        await self.context.terminated.wait()

    with trio.CancelScope(shield=True):
        await self._initiate_server_close()
"""


def test_installing_twice_patches_once_and_only_the_tcp_server() -> None:
    hypercorn_idle.install()
    hypercorn_idle.install()
    assert hypercorn.trio.tcp_server.TrioSingleTask is IdleTimer  # type: ignore[attr-defined]
    assert "self.idle_task = TrioSingleTask()" in inspect.getsource(TCPServer.__init__)


def test_hypercorn_still_has_the_timer_and_the_timeout_the_patch_replaces() -> None:
    assert textwrap.dedent(inspect.getsource(TrioSingleTask)) == HYPERCORN_SINGLE_TASK
    # The timer stands in for the timeout's wait, and runs what follows it.
    assert textwrap.dedent(inspect.getsource(TCPServer._idle_timeout)) == HYPERCORN_IDLE_TIMEOUT
    source = inspect.getsource(TCPServer)
    assert source.count("self.idle_task.restart(self._task_group, self._idle_timeout)") == 2
    assert source.count("self.idle_task.stop()") == 1


class IdleConnection:
    """A TCPServer with what its idle timeout reads and does; `closed_at` says when it closed."""

    def __init__(self, nursery: trio.Nursery, keep_alive_timeout: float = 5.0) -> None:
        self.server = TCPServer.__new__(TCPServer)
        self.server.config = SimpleNamespace(keep_alive_timeout=keep_alive_timeout)  # type: ignore[assignment]
        self.server.context = WorkerContext(None)
        self.server._task_group = SimpleNamespace(_nursery=nursery)  # type: ignore[assignment]
        self.server._initiate_server_close = self._close  # type: ignore[method-assign]
        self.timer = IdleTimer()
        self.closed_at: list[float] = []

    async def _close(self) -> None:
        assert trio.current_effective_deadline() == math.inf  # shielded, as Hypercorn's close
        self.closed_at.append(trio.current_time())

    async def restart(self) -> None:
        await self.timer.restart(self.server._task_group, self.server._idle_timeout)


async def test_a_restart_arms_the_close_a_keep_alive_timeout_later_and_replaces_the_previous_one(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        connection = IdleConnection(nursery)
        await connection.restart()
        await trio.sleep(2)
        await connection.restart()  # the request after the first one: the timeout runs from here
        await trio.sleep(10)
        assert connection.closed_at == [7]
        await connection.restart()
        await trio.sleep(1)
        await connection.timer.stop()
        await connection.timer.stop()  # twice is harmless
        await trio.sleep(10)
    assert connection.closed_at == [7]  # stopped before it was due
    assert connection_timers().pending() == 0


async def test_arming_and_disarming_runs_no_task(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        connection = IdleConnection(nursery)
        await connection.restart()  # a connection opens: its timer is armed
        await trio.testing.wait_all_tasks_blocked()
        tasks = count_tasks()  # the run's timer task and the context's watcher, from the first one on
        for _ in range(100):
            await connection.restart()
            await connection.timer.stop()  # its request arrived
        assert not nursery.child_tasks
        assert count_tasks() == tasks
        await trio.sleep(10)
    assert connection.closed_at == []


async def test_termination_closes_every_idle_connection_at_once_and_each_one_idle_after_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        idle = [IdleConnection(nursery) for _ in range(3)]
        context = idle[0].server.context
        for connection in idle:
            connection.server.context = context  # one worker
            await connection.restart()
        await idle[2].timer.stop()  # busy with a request
        await trio.sleep(1)
        await context.terminated.set()
        await trio.sleep(0.5)
        assert [connection.closed_at for connection in idle] == [[1], [1], []]
        await idle[2].restart()  # idle again after the termination: Hypercorn's wait returns at once
        await trio.testing.wait_all_tasks_blocked()
        assert idle[2].closed_at == [1.5]


async def test_a_connection_gone_before_its_timeout_is_not_kept_nor_closed(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        connection = IdleConnection(nursery)
        await connection.restart()
    collected = weakref.ref(connection.server)
    connection.server._task_group._nursery = None  # type: ignore[attr-defined]  # its task group has exited
    del connection
    gc.collect()
    assert collected() is None  # the armed timer does not keep the connection alive
    await trio.sleep(10)  # and falls due harmlessly


@asynccontextmanager
async def serving(keep_alive_timeout: float, graceful_timeout: float = 5.0) -> AsyncIterator[tuple[str, trio.Event]]:
    """The app served by Hypercorn with this keep-alive timeout; yields its address and the shutdown trigger."""
    settings = make_settings(host="127.0.0.1", port=0, graceful_timeout=graceful_timeout)
    config = hypercorn_config(settings)
    config.keep_alive_timeout = keep_alive_timeout
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            partial(serve, create_app(settings), settings, config, shutdown_trigger=shutdown.wait)
        )
        try:
            yield binds[0].removeprefix("http://"), shutdown
        finally:
            shutdown.set()


async def test_a_connection_that_sends_nothing_is_closed_after_the_keep_alive_timeout() -> None:
    with trio.fail_after(20):
        async with serving(keep_alive_timeout=0.5) as (address, _):
            host, port = address.split(":")
            silent = await trio.open_tcp_stream(host, int(port))
            keep_alive = await trio.open_tcp_stream(host, int(port))
            await keep_alive.send_all(b"GET /symbols HTTP/1.1\r\nHost: x\r\n\r\n")  # then idle between requests
            started = trio.current_time()
            for stream in (silent, keep_alive):
                while await stream.receive_some():  # the response, then the server's close
                    pass
            closed_after = trio.current_time() - started
    assert 0.4 <= closed_after < 10


async def test_a_shutdown_closes_an_idle_keep_alive_connection_at_once() -> None:
    with trio.fail_after(20):
        async with serving(keep_alive_timeout=60.0, graceful_timeout=30.0) as (address, shutdown):
            host, port = address.split(":")  # neither timeout is what closes it
            keep_alive = await trio.open_tcp_stream(host, int(port))
            await keep_alive.send_all(b"GET /symbols HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await keep_alive.receive_some()).startswith(b"HTTP/1.1 200")
            shutdown.set()
            started = trio.current_time()
            while await keep_alive.receive_some():  # the server's close
                pass
            closed_after = trio.current_time() - started
    assert closed_after < 5
