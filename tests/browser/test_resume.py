"""The board in Chromium resumes after its connection (not the server) is cut for 3 s: it resubscribes with
`since` and the epoch, the server replays what it missed, and every tick's seq arrives exactly once, in order,
with no ticks counted as skipped."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, WebSocketRoute, expect

from tests.support.board_page import PRICE, WAIT_MS, row
from tests.support.browser_server import ServerProcess

pytestmark = pytest.mark.slow
OUTAGE = 3.0


def messages(payload: str | bytes) -> list[dict[str, Any]]:
    decoded = json.loads(payload)
    return decoded if isinstance(decoded, list) else [decoded]


def test_a_connection_cut_for_3_s_leaves_no_gap(browser: Browser, server: ServerProcess, artifacts: Path) -> None:
    received: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    live_routes: list[tuple[WebSocketRoute, WebSocketRoute]] = []  # (the page's side, the server's side)
    cut_routes: set[int] = set()
    cut_until = 0.0

    def intercept(route: WebSocketRoute) -> None:
        if time.monotonic() < cut_until:
            route.close()  # the network is still down for this page: no server behind it
            return
        upstream = route.connect_to_server()

        def from_server(payload: str | bytes) -> None:
            if id(route) not in cut_routes:  # what the page really got
                received.extend(messages(payload))
                route.send(payload)

        def from_page(payload: str | bytes) -> None:
            sent.extend(messages(payload))
            upstream.send(payload)

        upstream.on_message(from_server)
        route.on_message(from_page)
        live_routes.append((route, upstream))

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        page = context.new_page()
        page.route_web_socket(re.compile(r"/ws\?batch=1$"), intercept)
        page.goto(server.url + "/")
        expect(row(page, "MSFT").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
        page.wait_for_timeout(1000)  # a few live ticks first
        epoch = next(m["epoch"] for m in received if m["type"] == "welcome")
        cut_until = time.monotonic() + OUTAGE
        page_side, server_side = live_routes[0]
        cut_routes.add(id(page_side))  # the link is dead both ways: nothing more reaches the page
        page_side.close()  # the page's connection drops, as a dead network link would end it
        server_side.close()
        expect(page.locator("#connection")).to_have_attribute("data-state", re.compile("reconnecting|connecting"))
        page.wait_for_timeout(OUTAGE * 1000)
        expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        page.wait_for_function("() => document.querySelectorAll('#rows tr').length === 6", timeout=WAIT_MS)
        with_since = [m for m in sent if m.get("action") == "subscribe" and "since" in m]
        page.wait_for_timeout(1500)  # live ticks after the replay
        page.screenshot(path=str(artifacts / "board-resumed.png"))
        acks = [m for m in received if m["type"] == "subscribed" and "recovered" in m]
        assert with_since and with_since[-1]["epoch"] == epoch
        assert acks and acks[-1]["recovered"]["MSFT"] is True
        for symbol in ("MSFT", "BTCUSDT"):
            seqs = [m["seq"] for m in received if m["type"] == "tick" and m["ticker"] == symbol]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), symbol  # each once, in order: no hole
            assert len(seqs) > OUTAGE / server.demo_interval  # ticks from before, during and after the cut
        expect(page.locator("#skipped")).to_have_text("")
        expect(page.locator("#notice")).not_to_contain_text("restarted")
    finally:
        context.close()
