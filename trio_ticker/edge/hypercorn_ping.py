"""Hypercorn's WebSocket pings, each one due on the run's connection timers instead of a loop task per connection.

Hypercorn 0.18 spawns a ping loop as it accepts each WebSocket: a ping at the handshake, then a sleep of a whole
ping interval before it looks at `closed` again, and the connection's task group (which closes the socket
last) waited for that loop, so a departed client kept its socket, tasks and memory for up to an interval.
`install()` arms the first ping one interval after the handshake instead; each ping, when due and the stream is
still open, is a short task in the connection's task group that sends it and arms the next; a stream that closes
disarms its ping at once.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

import trio
from hypercorn.protocol.events import Event
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.trio.task_group import TaskGroup
from wsproto.events import Ping

from .connection_timers import Timer, connection_timers

Handler = Callable[[WSStream, Event], Coroutine[Any, Any, None]]
Spawn = Callable[..., None]
NextPings = weakref.WeakKeyDictionary[WSStream, Timer]


def install() -> None:
    """Patch Hypercorn once per process; calling it again changes nothing."""
    if getattr(TaskGroup.spawn, "pings_on_timers", False):
        return
    next_pings: NextPings = weakref.WeakKeyDictionary()
    TaskGroup.spawn = _schedule_pings_instead(next_pings, TaskGroup.spawn)  # type: ignore[method-assign]
    WSStream.handle = _handle_then_stop_pings(next_pings, WSStream.handle)  # type: ignore[method-assign,assignment]


def _schedule_pings_instead(next_pings: NextPings, hypercorn_spawn: Spawn) -> Spawn:
    def spawn(task_group: Any, func: Callable[..., Any], *args: Any) -> None:
        stream = getattr(func, "__self__", None)
        if isinstance(stream, WSStream) and getattr(func, "__name__", None) == "_send_pings" and not args:
            # No ping at the handshake: a new client has just proved it is there, and in a reconnect storm that
            # ping is one send (and one pong read) more per connection while thousands wait for their handshake.
            _arm_next_ping(next_pings, stream, task_group)
            return
        hypercorn_spawn(task_group, func, *args)

    spawn.pings_on_timers = True  # type: ignore[attr-defined]
    spawn.__wrapped__ = hypercorn_spawn  # type: ignore[attr-defined]
    return spawn


def _arm_next_ping(next_pings: NextPings, stream: WSStream, task_group: Any) -> None:
    interval = stream.config.websocket_ping_interval  # read afresh: JitteredPingConfig draws each one
    if interval is None or stream.closed:
        return
    next_pings[stream] = connection_timers().call_at(
        trio.current_time() + interval, _start_ping(next_pings, weakref.ref(stream), task_group)
    )


def _start_ping(next_pings: NextPings, stream_ref: weakref.ref[WSStream], task_group: Any) -> Callable[[], None]:
    def start_ping() -> None:
        stream = stream_ref()
        nursery = task_group._nursery
        if stream is None or stream.closed or nursery is None:
            return
        with contextlib.suppress(RuntimeError):  # its task group is closing: the connection is ending anyway
            nursery.start_soon(_ping, next_pings, stream, task_group)

    return start_ping


async def _ping(next_pings: NextPings, stream: WSStream, task_group: Any) -> None:
    await stream._send_wsproto_event(Ping())  # as Hypercorn's loop: the next interval starts once it is sent
    _arm_next_ping(next_pings, stream, task_group)


def _handle_then_stop_pings(next_pings: NextPings, hypercorn_handle: Handler) -> Handler:
    async def handle(stream: WSStream, event: Event) -> None:
        await hypercorn_handle(stream, event)
        if stream.closed and (timer := next_pings.pop(stream, None)) is not None:
            timer.cancel()

    handle.__wrapped__ = hypercorn_handle  # type: ignore[attr-defined]
    return handle
