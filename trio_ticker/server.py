"""Serving the app with Hypercorn's trio worker from our own process (`python -m`, tests).

Besides the Hypercorn config from Settings, this sets TCP_USER_TIMEOUT on the listening
sockets: Hypercorn sends each frame in a cancel-shielded `send_all`, so a peer that stops
reading pins its connection task until the kernel gives up on the unacknowledged data;
and it spreads Hypercorn's WebSocket pings (`JitteredPingConfig`).
"""

from __future__ import annotations

import random
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from .settings import PING_JITTER, Settings


class JitteredPingConfig(Config):
    """Hypercorn's config, except that each connection's next ping comes `websocket_ping_interval` ± PING_JITTER later.

    Hypercorn pings a WebSocket at its handshake and then sleeps `websocket_ping_interval`, which it reads
    again before every sleep. Clients that connected together (everyone reconnecting after a restart) would
    be pinged, and pong back, within the same few seconds for as long as they stay connected: at 3 000
    clients that burst added about 50 ms to the p99 of the seconds it fell in (docs/benchmarks.md). Drawn
    afresh at each read, the intervals drift the connections' pings apart within a few rounds.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        super().__init__()
        self._rng = rng or random.Random()
        self._ping_interval: float | None = None

    @property  # read-write, where Hypercorn declares a plain attribute
    def websocket_ping_interval(self) -> float | None:
        if self._ping_interval is None:
            return None
        return self._ping_interval * self._rng.uniform(1 - PING_JITTER, 1 + PING_JITTER)

    @websocket_ping_interval.setter
    def websocket_ping_interval(self, seconds: float | None) -> None:
        self._ping_interval = seconds


def hypercorn_config(settings: Settings, rng: random.Random | None = None) -> Config:
    config = JitteredPingConfig(rng)
    config.bind = [f"{settings.host}:{settings.port}"]
    config.backlog = settings.backlog
    if settings.admin_bind is not None:
        config.bind.append(settings.admin_bind)  # told apart by the local address (AccessPolicy.on_admin_bind)
    config.graceful_timeout = settings.graceful_timeout
    config.websocket_ping_interval = settings.ws_ping_interval
    config.read_timeout = settings.ws_read_timeout  # type: ignore[assignment]  # Hypercorn takes floats
    # Hypercorn closes with 1009 past this; the session checks it too, for the bare `hypercorn` command.
    config.websocket_max_message_size = settings.ws_max_message_size
    config.accesslog = None
    return config


def open_sockets(config: Config, send_stall_timeout: float, send_buffer: int = 0) -> Sockets:
    """Hypercorn's listening sockets; accepted connections inherit the stall timeout and send buffer.

    A bounded kernel send buffer (instead of autotuning up to megabytes) makes a peer that stops
    reading fill it, and so show up as behind, in seconds rather than minutes.
    """
    sockets = config.create_sockets()
    for sock in sockets.insecure_sockets + sockets.secure_sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(send_stall_timeout * 1000))
            if send_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        sock.listen(config.backlog)
    return sockets


async def serve(
    app: Any,
    settings: Settings,
    config: Config | None = None,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    sockets: Sockets | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` until `shutdown_trigger` returns; reports the bound URLs once listening.

    `sockets` are listening sockets opened elsewhere (a worker's, inherited from `--workers`); by default
    this binds the config's address.
    """
    config = config or hypercorn_config(settings)
    await worker_serve(
        wrap_app(app, config.wsgi_max_body_size, None),
        config,
        sockets=sockets or open_sockets(config, settings.send_stall_timeout, settings.send_buffer),
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )
