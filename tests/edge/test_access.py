"""Access control pieces: token checks, Origin checks, where a handshake's token comes from, redaction.

The last test serves the app with Hypercorn's access log on and proves no token reaches it, even for a
handshake Hypercorn refuses itself.
"""

from __future__ import annotations

import logging
from functools import partial

import pytest
import trio
from pydantic import SecretStr
from trio_websocket import open_websocket_url

from tests.support.helpers import FULL_PROTOCOL, make_settings, read_welcome
from tests.support.raw_http import get_raw
from trio_ticker.app import create_app
from trio_ticker.edge.access import AccessPolicy, WebSocketHandshake, bearer_token
from trio_ticker.edge.hypercorn_server import hypercorn_config, serve

TOKEN = "access-token-0123456789"


def test_tokens_match_exactly_and_none_means_open() -> None:
    policy = AccessPolicy((), (SecretStr("first-token-0123456789"), SecretStr(TOKEN)))
    assert policy.requires_token
    assert policy.token_valid(TOKEN)
    assert not policy.token_valid(TOKEN[:-1])
    assert not policy.token_valid(TOKEN + "x")
    assert not policy.token_valid("")
    assert not policy.token_valid(None)
    open_policy = AccessPolicy((), ())
    assert not open_policy.requires_token
    assert open_policy.token_valid(None)


def test_origins_are_compared_case_insensitively_a_missing_origin_passes_and_two_never_do() -> None:
    policy = AccessPolicy(("https://good.example",), ())
    assert policy.origin_allowed(["https://GOOD.example"])
    assert policy.origin_allowed([])
    assert not policy.origin_allowed(["https://good.example.evil"])
    assert not policy.origin_allowed(["null"])
    assert not policy.origin_allowed(["https://evil.example", "https://good.example"])
    assert not policy.origin_allowed(["https://good.example"] * 2)
    assert AccessPolicy((), ()).origin_allowed(["https://anything.example"])
    assert not AccessPolicy((), ()).origin_allowed(["https://anything.example"] * 2)


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer abc", "abc"), ("Basic YTpi", None), ("Bearer", None), (None, None)],
)
def test_bearer_token_reads_only_bearer_headers(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_a_handshake_token_comes_from_header_then_subprotocol_then_query() -> None:
    def scope(headers: list[tuple[bytes, bytes]], subprotocols: list[str], query: bytes) -> dict[str, object]:
        return {"headers": headers, "subprotocols": subprotocols, "query_string": query}

    both = WebSocketHandshake(scope([(b"authorization", b"Bearer from-header")], ["bearer.from-sub"], b"token=q"))
    assert both.token == "from-header"
    offered = ["trio-ticker.v1", "bearer.sub"]
    browser = WebSocketHandshake(scope([(b"origin", b"https://x.example")], offered, b""))
    assert (browser.token, browser.subprotocols, browser.origins) == ("sub", tuple(offered), ("https://x.example",))
    query = WebSocketHandshake(scope([], [], b"batch=1&token=secret"))
    assert (query.token, query.subprotocols) == ("secret", ())


async def test_hypercorns_access_log_never_sees_the_token(caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(auth_tokens=TOKEN, host="127.0.0.1", port=0, graceful_timeout=1.0, ws_ping_interval=0.2)
    app = create_app(settings)  # puts the token filter on Hypercorn's loggers
    config = hypercorn_config(settings)
    config.accesslog = logging.getLogger("hypercorn.access")  # what `--access-logfile` writes to
    config.access_log_format = '"%(R)s" %(s)s query=%(q)s'  # the default format leaves the query string out
    caplog.set_level("INFO", logger="hypercorn.access")
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, settings, config, shutdown_trigger=shutdown.wait))
        address = binds[0].removeprefix("http://")
        async with open_websocket_url(f"ws://{address}/ws?batch=1&token={TOKEN}", subprotocols=FULL_PROTOCOL) as ws:
            await read_welcome(ws)
            await ws.send_message('{"action":"ping"}')
            with trio.fail_after(5):
                await ws.get_message()
        upgrade = (
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "c2FtcGxlIG5vbmNlIDEyMw=="),
        )
        status, _, _ = await get_raw(address, f"/ws?token={TOKEN}", (*upgrade, ("Sec-WebSocket-Version", "8")))
        assert status == 400  # answered by Hypercorn, which never calls the app
        with trio.fail_after(5):
            while caplog.text.count("token=***") < 2:
                await trio.sleep(0.01)
        shutdown.set()
    assert '"GET /ws?batch=1&token=*** 1.1" 101 query=batch=1&token=***' in caplog.text
    assert '"GET /ws?token=*** 1.1" 400 query=token=***' in caplog.text
    assert TOKEN not in caplog.text
