"""The idle timer Hypercorn's connections use instead of its own: same behaviour, installed once, and the
Hypercorn code it stands in for unchanged (if a release changes it, these source checks fail: re-read it)."""

from __future__ import annotations

import inspect
import textwrap
from functools import partial

import hypercorn.trio.tcp_server
import trio
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import TrioSingleTask

from tests.helpers import make_settings
from trio_ticker import hypercorn_idle
from trio_ticker.app import create_app
from trio_ticker.hypercorn_idle import IdleTimer
from trio_ticker.server import hypercorn_config, serve
from trio_ticker.service import TickerService

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


class TaskGroup:
    """What the timer uses of Hypercorn's task group: its nursery."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery


def test_installing_twice_patches_once_and_only_the_tcp_server() -> None:
    hypercorn_idle.install()
    hypercorn_idle.install()
    assert hypercorn.trio.tcp_server.TrioSingleTask is IdleTimer  # type: ignore[attr-defined]
    assert "self.idle_task = TrioSingleTask()" in inspect.getsource(TCPServer.__init__)


def test_hypercorn_still_has_the_timer_the_patch_replaces() -> None:
    assert textwrap.dedent(inspect.getsource(TrioSingleTask)) == HYPERCORN_SINGLE_TASK
    source = inspect.getsource(TCPServer)
    assert source.count("self.idle_task.restart(self._task_group, self._idle_timeout)") == 2
    assert source.count("self.idle_task.stop()") == 1


async def test_restart_runs_the_action_and_replaces_the_previous_one(autojump_clock: trio.abc.Clock) -> None:
    finished: list[str] = []

    async def action(name: str, seconds: float) -> None:
        await trio.sleep(seconds)
        finished.append(name)

    timer = IdleTimer()
    async with trio.open_nursery() as nursery:
        group = TaskGroup(nursery)
        await timer.restart(group, partial(action, "never ran", 1))  # replaced before its task first ran
        await timer.restart(group, partial(action, "replaced while waiting", 5))
        await trio.sleep(2)
        await timer.restart(group, partial(action, "ran", 5))
        await trio.sleep(10)
        assert finished == ["ran"]
        await timer.restart(group, partial(action, "stopped", 5))
        await trio.sleep(1)
        await timer.stop()
        await timer.stop()  # twice is harmless
    assert finished == ["ran"]
    assert trio.current_time() == 13  # nothing left running: the nursery closed at once


async def test_a_connection_that_sends_nothing_is_closed_after_the_keep_alive_timeout() -> None:
    settings = make_settings(host="127.0.0.1", port=0)
    config = hypercorn_config(settings)
    config.keep_alive_timeout = 0.5
    app = create_app(settings, TickerService(settings))
    shutdown = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, app, settings, config, shutdown_trigger=shutdown.wait))
            host, port = binds[0].removeprefix("http://").split(":")
            silent = await trio.open_tcp_stream(host, int(port))
            keep_alive = await trio.open_tcp_stream(host, int(port))
            await keep_alive.send_all(b"GET /symbols HTTP/1.1\r\nHost: x\r\n\r\n")  # then idle between requests
            started = trio.current_time()
            for stream in (silent, keep_alive):
                while await stream.receive_some():  # the response, then the server's close
                    pass
            closed_after = trio.current_time() - started
            shutdown.set()
    assert 0.4 <= closed_after < 10
