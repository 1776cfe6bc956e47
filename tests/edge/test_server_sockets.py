"""The listening sockets `python -m trio_ticker` serves on pass their stall timeout and send buffer on."""

from __future__ import annotations

import socket

import pytest
from hypercorn.config import Config

from trio_ticker.edge.hypercorn_server import open_sockets


@pytest.mark.parametrize(("send_buffer", "doubled"), [(131_072, 262_144), (65_536, 131_072)])
def test_accepted_connections_inherit_the_stall_timeout_and_send_buffer(send_buffer: int, doubled: int) -> None:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    listener = open_sockets(config, send_stall_timeout=2.5, send_buffer=send_buffer).insecure_sockets[0]
    with listener, socket.create_connection(listener.getsockname()):
        accepted, _ = listener.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 2500
            assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == doubled  # Linux doubles SO_SNDBUF


def accepted_send_buffer(listener: socket.socket) -> int:
    with socket.create_connection(listener.getsockname()):
        accepted, _ = listener.accept()
        with accepted:
            return accepted.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)


def test_zero_leaves_the_send_buffer_to_the_kernel() -> None:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    ours = open_sockets(config, send_stall_timeout=30, send_buffer=0).insecure_sockets[0]
    with ours, socket.create_server(("127.0.0.1", 0)) as plain:
        assert accepted_send_buffer(ours) == accepted_send_buffer(plain)
