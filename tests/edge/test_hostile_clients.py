"""Against real servers: bytes a client sends that used to end the whole server process.

A frame pipelined behind the upgrade request, and frames wsproto rejects right after the handshake,
once raised out of Hypercorn's per-connection task and took the worker down (pgjones/hypercorn#225).
Now each such connection is closed, logged at most once at WARNING without a traceback, and
everyone else keeps streaming: in-process, under `python -m trio_ticker` and the bare hypercorn command.
"""

from __future__ import annotations

import logging
import random
import signal
import sys

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.helpers import FULL_PROTOCOL, make_settings, read_welcome
from tests.support.hostile import HostileCase, frame, run_hostile, upgrade_request
from tests.support.live_server import serve_app
from tests.support.process import HYPERCORN, receive_a_tick, running
from tests.support.well_behaved import well_behaved_client
from trio_ticker.app import create_app

ATTEMPTS = 40  # the unguarded server died within a few of each
PING = b'{"action":"ping"}'


def crashing_cases(address: str) -> dict[str, HostileCase]:
    upgrade = upgrade_request(address)
    return {
        "pipelined_ping": HostileCase("pipelined_ping", upgrade + frame(PING), b"", reset=False),
        "invalid_utf8": HostileCase("invalid_utf8", upgrade, frame(b'{"a":"\xff\xfe"}'), reset=False),
        "rsv_bits": HostileCase("rsv_bits", upgrade, frame(PING, rsv=2), reset=False),
        "unmasked": HostileCase("unmasked", upgrade, frame(PING, mask=None), reset=False),
    }


@pytest.mark.parametrize("kind", ["pipelined_ping", "invalid_utf8", "rsv_bits", "unmasked"])
async def test_a_hostile_connection_is_closed_and_logged_once_and_the_others_keep_streaming(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(demo_interval=0.02)
    app = create_app(settings)
    caplog.set_level(logging.INFO)
    logging.getLogger("trio_ticker").addHandler(caplog.handler)
    try:
        with trio.fail_after(60):
            async with serve_app(app, settings) as address, well_behaved_client(f"ws://{address}/ws") as ticks:
                case = crashing_cases(address)[kind]
                for _ in range(ATTEMPTS):
                    await run_hostile(address, case)
                async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as late:
                    await read_welcome(late)
                    await receive_a_tick(late)  # the server still accepts and streams
                await ticks.wait_for_more()
    finally:
        logging.getLogger("trio_ticker").removeHandler(caplog.handler)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not [record for record in caplog.records if record.exc_info]
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) <= ATTEMPTS  # at most one line per bad connection
    assert len({record.getMessage() for record in warnings}) == len(warnings)  # each names its own peer


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "trio_ticker"],
        [HYPERCORN, "trio_ticker.app:app", "--worker-class", "trio", "--bind", "127.0.0.1:0"],
    ],
    ids=["python-m", "hypercorn"],
)
async def test_no_hostile_connection_ends_the_server_process(command: list[str]) -> None:
    rng = random.Random(14)
    async with running(command, TICKER_PORT="0", TICKER_DEMO_INTERVAL="0.05") as server:
        cases = list(crashing_cases(server.address).values())
        async with well_behaved_client(f"ws://{server.address}/ws") as ticks:
            with trio.fail_after(60):
                for _ in range(ATTEMPTS * 3):
                    await run_hostile(server.address, rng.choice(cases))
                    assert server.process.returncode is None, server.stderr.decode()
                async with open_websocket_url(f"ws://{server.address}/ws", subprotocols=FULL_PROTOCOL) as late:
                    await read_welcome(late)
                    await receive_a_tick(late)
            await ticks.wait_for_more()
        server.process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            await server.process.wait()
    assert server.process.returncode == 0
    assert b"Traceback" not in server.stderr
    assert b"[ERROR]" not in server.stderr and b"level=ERROR" not in server.stderr
