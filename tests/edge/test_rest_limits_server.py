"""REST access control, query bounds, CORS and /metrics against a real Hypercorn server on port 0.

As in test_limits_server.py, a well-behaved WebSocket client streams throughout each test.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import open_websocket_url

from tests.support.helpers import FULL_PROTOCOL, make_settings, read_welcome
from tests.support.live_server import serve_app
from tests.support.well_behaved import well_behaved_client
from trio_ticker.app import Assembly, assemble

TOKEN = "rest-token-0123456789abcdef"


def build(**overrides: Any) -> tuple[Assembly, Any]:
    settings = make_settings(demo_interval=0.02, **overrides)
    assembly = assemble(settings)
    return assembly, assembly.app


async def test_with_tokens_set_the_data_routes_need_a_bearer_token() -> None:
    assembly, app = build(auth_tokens=TOKEN)
    async with (
        serve_app(app, assembly.settings) as address,
        well_behaved_client(f"ws://{address}/ws?token={TOKEN}") as ticks,
        httpx.AsyncClient(base_url=f"http://{address}") as http,
    ):
        for path in ("/price?symbol=AAPL", "/prices", "/symbols", "/metrics"):
            for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}):
                refused = await http.get(path, headers=headers)
                assert refused.status_code == 401, (path, headers)
                assert refused.headers["WWW-Authenticate"] == "Bearer"
                assert refused.json() == {
                    "type": "error",
                    "code": "unauthorized",
                    "message": "a valid bearer token is required",
                }
            allowed = await http.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert allowed.status_code == 200, path
        assert (await http.get("/healthz")).status_code == 200  # probes and the page stay open
        assert (await http.get("/")).status_code == 200
        await ticks.wait_for_more()


async def test_a_query_string_over_the_limit_gets_414() -> None:
    assembly, app = build(max_query_length=128)
    async with (
        serve_app(app, assembly.settings) as address,
        well_behaved_client(f"ws://{address}/ws") as ticks,
        httpx.AsyncClient(base_url=f"http://{address}") as http,
    ):
        response = await http.get("/price", params={"symbol": "AAPL", "pad": "x" * 128})
        assert response.status_code == 414
        assert response.json()["code"] == "query_too_long"
        assert (await http.get("/price", params={"symbol": "AAPL", "pad": "x" * 100})).status_code == 200
        invalid = await http.get("/price", params={"symbol": "A" * 33})
        assert (invalid.status_code, invalid.json()["code"]) == (400, "invalid_symbol")
        await ticks.wait_for_more()


async def test_cors_follows_the_allowed_origins() -> None:
    assembly, app = build(allowed_origins="https://good.example")
    async with serve_app(app, assembly.settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        good = await http.get("/prices", headers={"Origin": "https://good.example"})
        assert good.headers["Access-Control-Allow-Origin"] == "https://good.example"
        assert "Origin" in good.headers["Vary"]
        evil = await http.get("/prices", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in evil.headers
        preflight = await http.options(
            "/prices",
            headers={
                "Origin": "https://good.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://good.example"
        assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()

    assembly, app = build()
    async with serve_app(app, assembly.settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        anyone = await http.get("/prices", headers={"Origin": "https://anyone.example"})
        assert anyone.headers["Access-Control-Allow-Origin"] == "*"


async def test_a_request_with_two_origin_headers_gets_403() -> None:
    service, app = build(allowed_origins="https://good.example")
    async with serve_app(app, service.settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        for path in ("/prices", "/healthz"):
            refused = await http.get(
                path, headers=[("Origin", "https://evil.example"), ("Origin", "https://good.example")]
            )
            assert refused.status_code == 403, path
            assert refused.json() == {
                "type": "error",
                "code": "origin_not_allowed",
                "message": "more than one Origin header",
            }
            assert "Access-Control-Allow-Origin" not in refused.headers
        assert (await http.get("/prices", headers={"Origin": "https://good.example"})).status_code == 200


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_report_clients_ticks_sources_limits_and_tick_age() -> None:
    assembly, app = build(rate_limit_burst=1, rate_limit_per_second=0.1)
    async with (
        serve_app(app, assembly.settings) as address,
        well_behaved_client(f"ws://{address}/ws") as ticks,
        httpx.AsyncClient(base_url=f"http://{address}") as http,
    ):
        async with open_websocket_url(f"ws://{address}/ws", subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            await ws.send_message('{"action":"ping"}')
            await ws.send_message('{"action":"ping"}')  # over the rate
            with trio.fail_after(5):
                while orjson.loads(await ws.get_message()).get("code") != "rate_limited":
                    pass
            with trio.fail_after(10):  # the tick-age histogram samples every 32nd tick
                while assembly.hub.statistics().ticks_in < 64:
                    await trio.sleep(0.02)
            response = await http.get("/metrics")
        await ticks.wait_for_more()
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    values = samples(response.text)
    assert values[("ticker_clients", ())] == 2
    assert values[("ticker_connections", ())] == 2
    assert values[("ticker_subscriptions", ())] == 1
    assert values[("ticker_rate_limited_total", ())] == 1
    assert values[("ticker_source_state", (("source", "demo"), ("state", "live")))] == 1
    assert values[("ticker_source_state", (("source", "demo"), ("state", "reconnecting")))] == 0
    assert values[("ticker_source_reconnects_total", (("source", "demo"),))] == 0
    assert values[("ticker_ticks_in_total", (("source", "demo"),))] >= 64
    assert values[("ticker_messages_out_total", ())] > 0
    assert values[("ticker_evicted_total", ())] == 0
    assert values[("ticker_tick_age_seconds_count", ())] >= 2
    assert (
        values[("ticker_tick_age_seconds_bucket", (("le", "+Inf"),))] == values[("ticker_tick_age_seconds_count", ())]
    )
