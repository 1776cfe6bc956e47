"""TICKER_ADMIN_BIND against real servers bound to two ports: operations on one, the public app on the other.

The public bind then answers a status-only /healthz and no /metrics; the admin bind answers the full
/healthz and /metrics, and nothing else. Requests are told apart by the local address they arrived on.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import orjson
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import ConnectionRejected, open_websocket_url

from tests.support.helpers import FULL_PROTOCOL, make_settings, read_welcome
from tests.support.live_server import serve_app
from tests.support.process import HYPERCORN, running
from tests.support.well_behaved import well_behaved_client
from trio_ticker.app import create_app
from trio_ticker.edge.access import AccessPolicy
from trio_ticker.settings import ConfigError, load_settings

TOKEN = "admin-test-token-0123456789"


@pytest.mark.parametrize(
    ("value", "bind", "address"),
    [
        ("127.0.0.1:9100", "127.0.0.1:9100", ("127.0.0.1", 9100)),
        (" 0.0.0.0:9100 ", "0.0.0.0:9100", ("0.0.0.0", 9100)),
        ("[0:0::1]:9100", "[::1]:9100", ("::1", 9100)),  # the form a socket reports
        ("", None, None),
    ],
)
def test_the_admin_bind_is_an_address_and_a_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, bind: str | None, address: tuple[str, int] | None
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TICKER_ADMIN_BIND", value)
    settings = load_settings()
    assert (settings.admin_bind, settings.admin_address) == (bind, address)


@pytest.mark.parametrize(
    "value", ["localhost:9100", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:9100", "[127.0.0.1]:9100"]
)
def test_a_bad_admin_bind_stops_startup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TICKER_ADMIN_BIND", value)
    with pytest.raises(ConfigError, match="TICKER_ADMIN_BIND: must be IP:PORT"):
        load_settings()
    monkeypatch.setenv("TICKER_ADMIN_BIND", "127.0.0.1:8000")  # the public bind's own address
    with pytest.raises(ConfigError, match="TICKER_ADMIN_BIND must differ"):
        load_settings()


def test_a_request_is_on_the_admin_bind_when_it_arrived_at_that_address() -> None:
    loopback = AccessPolicy((), (), ("127.0.0.1", 9100))
    assert loopback.on_admin_bind({"server": ("127.0.0.1", 9100)})
    assert not loopback.on_admin_bind({"server": ("127.0.0.1", 8000)})
    assert not loopback.on_admin_bind({"server": ("10.0.0.5", 9100)})
    assert not loopback.on_admin_bind({"server": ("/run/ticker.sock", None)})
    assert not loopback.on_admin_bind({})
    anywhere = AccessPolicy((), (), ("::", 9100))
    assert anywhere.on_admin_bind({"server": ("::ffff:10.0.0.5", 9100)})
    assert not AccessPolicy((), ()).on_admin_bind({"server": ("127.0.0.1", 9100)})


def free_port() -> int:
    """A port nothing listens on now (the admin bind needs a real one: the app compares it to each request's)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def check_public_and_admin(public: str, admin: str, *, token_required: bool) -> None:
    """What either documented command must answer on each bind, with TICKER_ADMIN_BIND set."""
    bearer = {"Authorization": f"Bearer {TOKEN}"} if token_required else {}
    async with httpx.AsyncClient(base_url=f"http://{public}") as http:
        health = await http.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        metrics = await http.get("/metrics", headers=bearer)
        assert (metrics.status_code, metrics.json()["code"]) == (404, "not_found")
        assert (await http.get("/prices", headers=bearer)).status_code == 200
        assert (await http.get("/")).status_code == 200
    async with httpx.AsyncClient(base_url=f"http://{admin}") as http:
        health = (await http.get("/healthz")).json()
        assert health["status"] == "ok"
        assert health["sources"]["demo"]["state"] == "live"
        assert health["clients"] >= 1  # the public client streaming alongside
        metrics = await http.get("/metrics")  # no token: the bind is the protection
        assert metrics.status_code == 200
        names = {family.name for family in text_string_to_metric_families(metrics.text)}
        assert {"ticker_clients", "ticker_source_state"} <= names
        for path in ("/prices", "/price", "/symbols", "/", "/index.html"):
            refused = await http.get(path, headers=bearer)
            assert (refused.status_code, refused.json()["code"]) == (404, "not_found"), path
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(f"ws://{admin}/ws?token={TOKEN}"):
            pass
    assert rejected.value.status_code == 404


async def test_python_m_serves_operations_on_the_admin_bind_only() -> None:
    admin = f"127.0.0.1:{free_port()}"
    settings = make_settings(demo_interval=0.02, admin_bind=admin, auth_tokens=TOKEN)
    app = create_app(settings)
    async with serve_app(app, settings) as public:
        assert public != admin
        async with well_behaved_client(f"ws://{public}/ws?token={TOKEN}") as ticks:
            await check_public_and_admin(public, admin, token_required=True)
            await ticks.wait_for_more()


async def test_without_an_admin_bind_health_is_detailed_and_metrics_public() -> None:
    settings = make_settings()
    async with serve_app(create_app(settings), settings) as address, httpx.AsyncClient() as http:
        health = (await http.get(f"http://{address}/healthz")).json()
        assert set(health) >= {"status", "mode", "clients", "connections", "sources", "statistics"}
        assert (await http.get(f"http://{address}/metrics")).status_code == 200


@pytest.mark.slow
async def test_the_hypercorn_command_with_a_second_bind_keeps_operations_on_it() -> None:
    admin = f"127.0.0.1:{free_port()}"
    command = [HYPERCORN, "trio_ticker.app:app", "--worker-class", "trio", "--bind", "127.0.0.1:0", "--bind", admin]
    async with running(command, TICKER_ADMIN_BIND=admin) as server:
        async with open_websocket_url(f"ws://{server.address}/ws", subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            await ws.send_message('{"action":"ping"}')
            with trio.fail_after(10):
                assert orjson.loads(await ws.get_message())["type"] == "pong"
            await check_public_and_admin(server.address, admin, token_required=False)
        server.process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            await server.process.wait()
    assert b"Traceback" not in server.stderr
