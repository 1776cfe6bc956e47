"""Keeps whatever one client sends inside its own connection: a guard around Hypercorn's per-connection task.

Hypercorn 0.18 runs each accepted socket as `TCPServer.run` in the worker's server nursery, so anything
raised there ends the worker process (pgjones/hypercorn#225). `install()` wraps that task, and fixes the
races that raised or hung there; `create_app` calls it, so the bare `hypercorn` command is guarded too.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from hypercorn.protocol.events import Body, Data, StreamClosed
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import TCPServer

CONNECTIONS_STATE_KEY = "trio_ticker.connections"
"""The app puts its ConnectionRegistry in the ASGI lifespan state; Hypercorn hands a copy to every TCPServer."""
GUARD_MARK = "_trio_ticker_guard"
MAX_ERROR_TEXT = 300

log = logging.getLogger(__name__)


class HypercornChangedError(RuntimeError):
    """The Hypercorn internals the guard wraps are not there: re-check hypercorn_guard.py against it."""


def install() -> None:
    """Guard Hypercorn's trio connections in this process (idempotent)."""
    if installed():
        return
    _check_internals()
    for owner, name, wrap in _patches():
        original = getattr(owner, name)
        wrapper = _mark(wrap(original))
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]  # inspect.unwrap reaches Hypercorn's code
        setattr(owner, name, wrapper)


def installed() -> bool:
    # TCPServer.run is the guard's alone: other patches (hypercorn_ping) may wrap the other methods again on top.
    return bool(getattr(TCPServer.run, GUARD_MARK, False))


Wrapper = Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]


def _patches() -> tuple[tuple[type, str, Wrapper], ...]:
    """Each Hypercorn method the guard wraps, and how."""
    return (
        (TCPServer, "run", _guard_connection_task),
        (TCPServer, "_close", _close_without_racing_a_send),
        (WSStream, "handle", lambda handle: _drop_input_for_a_finished_app(_refuse_data_before_accept(handle))),
        (HTTPStream, "handle", _drop_input_for_a_finished_app),
        (TaskGroup, "spawn_app", _close_the_queue_when_the_app_returns),
    )


def _check_internals() -> None:
    init = TCPServer.__init__.__code__.co_varnames[: TCPServer.__init__.__code__.co_argcount]
    wanted = {
        "TCPServer.__init__(self, app, config, context, state, stream)": init
        == ("self", "app", "config", "context", "state", "stream"),
        "TCPServer.run": callable(getattr(TCPServer, "run", None)),
        "TCPServer._close": callable(getattr(TCPServer, "_close", None)),
        "WSStream.handle": callable(getattr(WSStream, "handle", None)),
        "HTTPStream.handle": callable(getattr(HTTPStream, "handle", None)),
        "WSStream._send_error_response": callable(getattr(WSStream, "_send_error_response", None)),
        "TaskGroup.spawn_app": callable(getattr(TaskGroup, "spawn_app", None)),
    }
    missing = [name for name, present in wanted.items() if not present]
    if missing:
        raise HypercornChangedError(f"this Hypercorn has no {', '.join(missing)}")


def _mark(function: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    setattr(function, GUARD_MARK, True)  # our own wrapper: how `install` knows it already ran
    return function


def _guard_connection_task(run: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    async def guarded_run(server: Any) -> None:
        registry = server.state.get(CONNECTIONS_STATE_KEY)
        with trio.CancelScope() as cancel_scope:
            if registry is not None and not registry.admit(server.stream, partial(_abort, server.stream, cancel_scope)):
                _reset(server.stream)
                return
            try:
                if registry is not None:
                    await _start_in_turn(registry, server.stream)
                await run(server)
            except* Exception as group:
                # Hypercorn's own close already ran (its `finally`); this connection alone ends.
                log.warning(
                    "event=connection_failed peer=%s error=%r", _peer(server), _describe(group)[:MAX_ERROR_TEXT]
                )
                if registry is not None:
                    registry.count_failure()
            finally:
                if registry is not None:
                    registry.finished(server.stream)

    return guarded_run


async def _start_in_turn(registry: Any, stream: Any) -> None:
    """Wait for this connection's turn to start, before Hypercorn reads a byte of its request."""
    try:
        await registry.wait_admission()
    except BaseException:
        _reset(stream)  # cancelled (an abort, a shutdown) before Hypercorn held it: nobody else closes it
        raise


def _close_without_racing_a_send(close: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """Hypercorn's close sends EOF without its send lock, so it collided with a ping in flight (BusyResourceError)."""

    async def close_after_sends(server: Any) -> None:
        try:
            if server.send_lock.locked():
                # A send is in flight, perhaps pinned by a peer that stopped reading. Closing the socket ends it
                # with ClosedResourceError, which Hypercorn's send handles; an EOF now would collide with it.
                await trio.aclose_forcefully(server.stream)
                return
            server.send_lock.acquire_nowait()
            try:
                await close(server)
            finally:
                server.send_lock.release()
        finally:
            registry = server.state.get(CONNECTIONS_STATE_KEY)
            if registry is not None:
                registry.socket_closed(server.stream)

    return close_after_sends


def _refuse_data_before_accept(handle: Callable[[Any, Any], Awaitable[None]]) -> Callable[[Any, Any], Awaitable[None]]:
    """Frames before the 101 get Hypercorn's 400 (RFC 6455 4.1: a client waits for it), without racing the app.

    Hypercorn sent that 400 while the app's accept could still go out: h11 then raised into both tasks. The
    stream is marked closed first, so the app's accept is dropped; the app is told the client left.
    """

    async def handle_refusing_early_data(stream: Any, event: Any) -> None:
        if not isinstance(event, Body | Data) or stream.closed or stream.handshake.accepted:
            await handle(stream, event)
            return
        stream.closed = True
        client = stream.client
        log.warning(
            "event=handshake_refused peer=%s reason=data_before_accept status=400",
            f"{client[0]}:{client[1]}" if client else "unknown",
        )
        await stream._send_error_response(400)
        if stream.app_put is not None:
            await stream.app_put({"type": "websocket.disconnect", "code": 1006})
        await stream.send(StreamClosed(stream_id=stream.stream_id))

    return handle_refusing_early_data


def _close_the_queue_when_the_app_returns(spawn_app: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Hypercorn's reader went on queueing a client's frames for an app that had returned (say, after closing
    the client for its rate): once the queue was full it waited forever, holding the socket. With the queue
    closed that delivery fails at once, and `_drop_input_for_a_finished_app` drops it."""

    async def spawn_app_closing_its_queue(task_group: Any, app: Any, *args: Any) -> Any:
        return await spawn_app(task_group, _AppThatStopsReceiving(app), *args)

    return spawn_app_closing_its_queue


class _AppThatStopsReceiving:
    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any, sync_spawn: Any, call_soon: Any) -> None:
        try:
            await self._app(scope, receive, send, sync_spawn, call_soon)
        finally:
            receive.__self__.close()  # the task group hands the app its queue's `receive`


def _drop_input_for_a_finished_app(
    handle: Callable[[Any, Any], Awaitable[None]],
) -> Callable[[Any, Any], Awaitable[None]]:
    async def handle_while_the_app_listens(stream: Any, event: Any) -> None:
        with contextlib.suppress(trio.BrokenResourceError):  # the app has returned: what it would read is moot
            await handle(stream, event)

    return handle_while_the_app_listens


def _describe(group: BaseExceptionGroup[Exception]) -> str:
    leaves: list[str] = []
    pending: list[BaseException] = [group]
    while pending:
        error = pending.pop()
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        elif (text := f"{type(error).__name__}: {error}") not in leaves:
            leaves.append(text)
    return "; ".join(leaves)


def _socket(stream: Any) -> Any:
    return stream.socket if hasattr(stream, "socket") else stream.transport_stream.socket


def _peer(server: Any) -> str:
    """The peer address Hypercorn read as the connection opened (no system call per connection; the socket
    may be closed by the time a failure is logged)."""
    client = getattr(getattr(server, "protocol", None), "client", None)
    return f"{client[0]}:{client[1]}" if client else "unknown"


def _reset(stream: Any) -> None:
    """Close at once with a TCP reset: nothing queued is sent and no TIME_WAIT is left here."""
    sock = _socket(stream)
    with contextlib.suppress(OSError):  # already closed, or reset by the peer
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # wakes a send pinned on it with ClosedResourceError


def _abort(stream: Any, cancel_scope: trio.CancelScope) -> None:
    _reset(stream)
    cancel_scope.cancel()
