"""The patched Hypercorn ping loop: installed once, still pinging, and the internals it replaces unchanged.

If a Hypercorn release changes what `trio_ticker/edge/hypercorn_ping.py` replaces, the source checks here fail:
read the new code, then adapt (or drop) the patch.
"""

from __future__ import annotations

import inspect
import random
import textwrap
from functools import partial

import trio
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.trio.task_group import TaskGroup

from tests.support.helpers import make_settings
from tests.support.ping_watch import ping_times
from trio_ticker.app import create_app
from trio_ticker.edge import hypercorn_ping
from trio_ticker.edge.hypercorn_server import hypercorn_config, serve
from trio_ticker.settings import PING_JITTER

HYPERCORN_PING_LOOP = """\
async def _send_pings(self) -> None:
    while not self.closed:
        await self._send_wsproto_event(Ping())
        await self.context.sleep(self.config.websocket_ping_interval)
"""


HYPERCORN_SPAWN = """\
def spawn(self, func: Callable, *args: Any) -> None:
    self._nursery.start_soon(func, *args)
"""


def hypercorn_source(function: object) -> str:
    return textwrap.dedent(inspect.getsource(inspect.unwrap(function)))  # type: ignore[arg-type]


def test_installing_twice_patches_once() -> None:
    hypercorn_ping.install()
    spawn, handle = TaskGroup.spawn, WSStream.handle
    hypercorn_ping.install()
    assert (TaskGroup.spawn, WSStream.handle) == (spawn, handle)
    # Hypercorn's own methods at the bottom, each wrapped by this patch once (the guard may wrap `handle` too)
    assert inspect.unwrap(spawn).__qualname__ == "TaskGroup.spawn"
    assert inspect.unwrap(handle).__qualname__ == "WSStream.handle"
    assert wrapper_names(spawn).count("_schedule_pings_instead.<locals>.spawn") == 1
    assert [name.split(".<locals>")[0] for name in wrapper_names(handle)].count("_handle_then_stop_pings") == 1


def wrapper_names(function: object) -> list[str]:
    names = []
    while hasattr(function, "__wrapped__"):
        names.append(function.__qualname__)  # type: ignore[attr-defined]
        function = function.__wrapped__
    return names


def test_hypercorn_still_runs_the_ping_loop_the_patch_replaces() -> None:
    hypercorn_ping.install()
    assert hypercorn_source(WSStream._send_pings) == HYPERCORN_PING_LOOP
    # The loop is spawned once per accepted WebSocket, in the connection's task group (which the patch's spawn
    # turns into the first ping's timer)...
    assert "self.task_group.spawn(self._send_pings)" in hypercorn_source(WSStream._accept)
    assert hypercorn_source(TaskGroup.spawn) == HYPERCORN_SPAWN
    # ...and every way a stream ends goes through `handle(StreamClosed)`, which sets `closed`.
    handle = hypercorn_source(WSStream.handle)
    assert "if self.closed:\n        return" in handle
    assert "elif isinstance(event, StreamClosed):\n        self.closed = True" in handle


async def test_the_first_ping_waits_an_interval_and_the_loop_keeps_pinging() -> None:
    interval = 0.3
    settings = make_settings(ws_ping_interval=interval, ws_read_timeout=None, host="127.0.0.1", port=0)
    app = create_app(settings)
    shutdown = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            config = hypercorn_config(settings, random.Random(5))
            binds = await nursery.start(partial(serve, app, settings, config, shutdown_trigger=shutdown.wait))
            connecting = trio.current_time()
            times = await ping_times(binds[0].removeprefix("http://"), duration=2.0)
            shutdown.set()
    assert len(times) >= 4
    assert times[0] - connecting >= interval * (1 - PING_JITTER) - 0.005  # no ping right at the handshake
