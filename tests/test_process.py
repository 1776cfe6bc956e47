"""The two ways users start the server, as real subprocesses, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import sys

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.support.helpers import FULL_PROTOCOL, read_welcome
from tests.support.process import HYPERCORN, REPO, receive_a_tick, running


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
            await read_welcome(ws)
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
