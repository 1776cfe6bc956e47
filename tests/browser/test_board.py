"""The price board in a real browser against a real demo server: fill, remove, persist, reconnect.

Every test drives Debian's chromium through Playwright and reads what a user sees (the table,
the banner, the chart) plus the WebSocket frames the page really exchanged.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, WebSocket, WebSocketRoute, expect

from tests.support.board_page import PRICE, WAIT_MS, row
from tests.support.browser_server import ServerProcess

pytestmark = pytest.mark.slow

ALL_SYMBOLS = ["AAPL", "GOOGL", "AMZN", "MSFT", "BTCUSDT", "ETHUSDT"]


class FrameLog:
    """Every JSON message the page's sockets sent and received, in order (batches flattened)."""

    def __init__(self, page: Page) -> None:
        self.received: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        page.on("websocket", self._watch)

    def _watch(self, socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: self.received.extend(_messages(payload)))
        socket.on("framesent", lambda payload: self.sent.extend(_messages(payload)))

    def ticks_for(self, symbol: str, since: int = 0) -> list[dict[str, Any]]:
        return [m for m in self.received[since:] if m.get("type") == "tick" and m.get("ticker") == symbol]


def _messages(payload: str | bytes) -> list[dict[str, Any]]:
    decoded = json.loads(payload)
    return decoded if isinstance(decoded, list) else [decoded]


def wait_until(page: Page, found: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Poll `found` while Playwright delivers frame events, until it returns something."""
    for _ in range(WAIT_MS // 100):
        if result := found():
            return result
        page.wait_for_timeout(100)
    raise AssertionError(f"nothing found within {WAIT_MS} ms")


def seq_of(page: Page, symbol: str) -> int:
    return int(row(page, symbol).get_attribute("data-seq") or 0)


def wait_for_seq_above(page: Page, symbol: str, seq: int) -> None:
    page.wait_for_function(
        "([symbol, seq]) => Number(document.querySelector(`#rows tr[data-symbol='${symbol}']`)"
        "?.dataset.seq ?? 0) > seq",
        arg=[symbol, seq],
        timeout=WAIT_MS,
    )


def test_board_fills_with_live_prices_that_change(page: Page, artifacts: Path) -> None:
    banner = page.locator("#connection")
    expect(banner).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(page.locator("#connection-text")).to_have_text("Live")
    expect(page.locator("#rows tr")).to_have_count(len(ALL_SYMBOLS))
    assert page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.symbol)") == ALL_SYMBOLS
    for symbol in ALL_SYMBOLS:
        expect(row(page, symbol).locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
        expect(row(page, symbol).locator("td.percent")).to_have_text(re.compile(r"^[+-]?\d+\.\d{2}%$"))
        expect(row(page, symbol).locator("time")).to_have_text(re.compile(r"^\d{2}:\d{2}:\d{2}$"))

    before = {symbol: row(page, symbol).locator("td.price").inner_text() for symbol in ALL_SYMBOLS}
    page.wait_for_function(
        "before => Object.entries(before).some(([symbol, text]) => "
        "document.querySelector(`#rows tr[data-symbol='${symbol}'] td.price`).textContent !== text)",
        arg=before,
        timeout=WAIT_MS,
    )
    expect(page.locator("#rows td.price[data-moved]").first).to_be_visible()

    expect(page.locator("#mode")).to_have_text("Demo data")
    expect(page.locator('#sources li[data-source="demo"]')).to_have_text("demo feed: live")
    expect(page.locator("#chart-symbol")).to_have_text("BTCUSDT")  # the server's default symbol
    expect(row(page, "BTCUSDT")).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#chart canvas").first).to_be_visible()
    expect(page.locator("#chart-meta")).to_have_text(re.compile(r"[\d,]+ 1m candles$"), timeout=WAIT_MS)

    page.get_by_role("button", name="ETHUSDT", exact=True).click()
    expect(page.locator("#chart-symbol")).to_have_text("ETHUSDT")
    expect(page.get_by_role("button", name="ETHUSDT", exact=True)).to_have_attribute("aria-pressed", "true")

    desktop = artifacts / "board-desktop.png"
    page.screenshot(path=str(desktop), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    phone = artifacts / "board-phone.png"
    page.screenshot(path=str(phone), full_page=True)
    assert desktop.stat().st_size > 20_000 and phone.stat().st_size > 20_000
    # Phone width: nothing overflows sideways and every row's remove button is on screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for symbol in ALL_SYMBOLS:
        box = page.get_by_role("button", name=f"Remove {symbol}").bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390


def test_removing_a_symbol_stops_its_updates_and_the_choice_survives_reload(page: Page) -> None:
    frames = FrameLog(page)
    page.reload()
    expect(row(page, "AAPL").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)

    # Keyboard only: focus the remove button and press Enter.
    page.get_by_role("button", name="Remove AAPL").focus()
    page.keyboard.press("Enter")
    expect(row(page, "AAPL")).to_have_count(0)
    expect(page.locator("#rows tr")).to_have_count(len(ALL_SYMBOLS) - 1)
    expect(page.get_by_role("button", name="Remove GOOGL")).to_be_focused()  # focus stays in the table
    expect(page.locator("#announcer")).to_have_text("Removed AAPL.")

    acks = wait_until(page, lambda: [m for m in frames.received if m.get("type") == "unsubscribed"])
    assert acks[0]["symbols"] == ["AAPL"]
    after_ack = frames.received.index(acks[0]) + 1
    seq_before = seq_of(page, "MSFT")
    wait_for_seq_above(page, "MSFT", seq_before + 5)  # at least five more ticks went by for others
    assert frames.ticks_for("AAPL", since=after_ack) == []
    assert frames.ticks_for("MSFT", since=after_ack)
    expect(row(page, "AAPL")).to_have_count(0)

    sent_before_reload = len(frames.sent)
    page.reload()
    expect(page.locator("#rows tr")).to_have_count(len(ALL_SYMBOLS) - 1, timeout=WAIT_MS)
    expect(row(page, "AAPL")).to_have_count(0)
    subscribes = wait_until(
        page, lambda: [m for m in frames.sent[sent_before_reload:] if m.get("action") == "subscribe"]
    )
    assert subscribes[0]["symbols"] == [s for s in ALL_SYMBOLS if s != "AAPL"]

    # Add it back from the search box, again by keyboard: typed, then the Add button.
    page.get_by_label("Add symbol").press_sequentially("aapl")
    page.get_by_role("button", name="Add", exact=True).focus()
    page.keyboard.press("Enter")
    expect(row(page, "AAPL").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
    expect(page.locator("#rows tr")).to_have_count(len(ALL_SYMBOLS))  # every symbol is on the board again


OUTAGE_S = 3.0  # the server stays down this long before it starts again
BACK_WITHIN_MS = 2000  # from the restarted server's serving line to the page live again (the quick phase's wait)
NOTICE_GONE_MS = 12_000
OUTAGE_VIEW = """() => ({
  dot: document.querySelector('#connection').dataset.state,
  text: document.querySelector('#connection-text').textContent,
  chips: [...document.querySelectorAll('#sources li')].map(li => li.textContent),
  retry: !document.querySelector('#retry').hidden,
})"""


def watch_outage(page: Page, seconds: float) -> list[dict[str, Any]]:
    """What the banner and chips say, every 100 ms, while "Retry now" is pressed every half second."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    presses = 0
    while time.monotonic() < deadline:
        seen.append(page.evaluate(OUTAGE_VIEW))
        if len(seen) % 5 == 0 and seen[-1]["retry"]:
            page.locator("#retry").click()
            presses += 1
        page.wait_for_timeout(100)
    assert presses >= 3, f"Retry now was pressed only {presses} times"
    return seen


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "terminated"])
def test_server_restart_shows_an_outage_consistently_and_is_live_again_within_two_seconds(
    page: Page, server: ServerProcess, how: signal.Signals, artifacts: Path, tmp_path: Path
) -> None:
    frames = FrameLog(page)
    page.reload()
    expect(row(page, "MSFT").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
    expect(page.locator('#sources li[data-source="demo"]')).to_have_text("demo feed: live", timeout=WAIT_MS)
    for symbol in ("AAPL", "GOOGL", "AMZN", "BTCUSDT"):
        page.get_by_role("button", name=f"Remove {symbol}").click()
    kept = ["MSFT", "ETHUSDT"]
    expect(page.locator("#rows tr")).to_have_count(len(kept))
    # Let the first server's numbering run well ahead of what the restarted one will reach.
    wait_for_seq_above(page, "MSFT", 30)
    board_box = page.locator("#board").bounding_box()

    if how == signal.SIGKILL:
        server.kill()
    else:
        server.stop()
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    why = "Connection lost." if how == signal.SIGKILL else "Server restarting."
    expect(page.locator("#announcer")).to_have_text(f"{why} Reconnecting.")
    page.screenshot(path=str(artifacts / f"board-reconnecting-{how.name}.png"))

    # During the outage the dot, the banner and the chips agree: nothing is live, no source is known, and
    # "Retry now", pressed again and again, never makes the next wait longer than the quick phase's.
    outage = watch_outage(page, OUTAGE_S)
    for view in outage:
        assert view["dot"] == "reconnecting", view
        assert re.fullmatch(r"Reconnecting in [0-2] s|Reconnecting…", view["text"]), view
        assert view["chips"] == ["demo feed: unknown"], view
        assert view["retry"], view
    assert any(view["text"].startswith("Reconnecting in") for view in outage)
    sent_before_restart, received_before_restart = len(frames.sent), len(frames.received)

    # The restarted server ticks once a second, so its numbers stay far below the first run's; without the first
    # one's data directory it starts a numbering of its own (a new epoch).
    restarted = ServerProcess(port=server.port, demo_interval=1.0, env={"TICKER_DATA_DIR": str(tmp_path)})
    restarted.start()
    try:
        expect(page.locator("#connection-text")).to_have_text("Live", timeout=WAIT_MS)
        live_since = float(page.locator("#connection").get_attribute("data-since") or 0)
        assert restarted.serving_since_ms is not None
        back_after_ms = live_since - restarted.serving_since_ms
        print(f"live again {back_after_ms:.0f} ms after the restarted server began serving")
        assert back_after_ms <= BACK_WITHIN_MS
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(page.locator('#sources li[data-source="demo"]')).to_have_text("demo feed: live", timeout=WAIT_MS)
        expect(page.locator("#announcer")).to_have_text("Connected: prices are live.", timeout=WAIT_MS)
        resubscribes = wait_until(
            page, lambda: [m for m in frames.sent[sent_before_restart:] if m.get("action") == "subscribe"]
        )
        assert resubscribes[0]["symbols"] == kept
        # The board follows the new server's numbering (its snapshot), then its live ticks.
        page.wait_for_function(
            "() => Number(document.querySelector(\"#rows tr[data-symbol='MSFT']\")?.dataset.seq) < 30",
            timeout=WAIT_MS,
        )
        wait_for_seq_above(page, "MSFT", seq_of(page, "MSFT"))
        assert page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.symbol)") == kept
        assert frames.ticks_for("AAPL", since=received_before_restart) == []  # removed ones stay removed

        # The notice says what happened, over the page (the board does not move), and then goes away.
        notice = page.locator("#notice")
        expect(notice).to_contain_text("The server restarted")
        assert page.locator("#board").bounding_box() == board_box
        page.screenshot(path=str(artifacts / f"board-restarted-{how.name}.png"))
        expect(notice).to_be_hidden(timeout=NOTICE_GONE_MS)
        assert page.locator("#board").bounding_box() == board_box
    finally:
        restarted.stop()
        print("restarted server log:", *restarted.log, sep="\n")


def test_stale_marks_source_states_and_seq_gaps_from_injected_server_messages(
    browser: Browser, artifacts: Path
) -> None:
    # A demo server that publishes its start prices and then stays quiet for a minute, so only the
    # messages injected into the page's real connection change what the board shows.
    quiet = ServerProcess(demo_interval=60.0)
    quiet.start()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    routes: list[WebSocketRoute] = []

    def intercept(route: WebSocketRoute) -> None:
        route.connect_to_server()  # both directions are forwarded unchanged
        routes.append(route)

    try:
        page = context.new_page()
        page.route_web_socket(re.compile(r"/ws\?batch=1$"), intercept)
        page.goto(quiet.url + "/")
        expect(row(page, "AAPL").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
        assert seq_of(page, "AAPL") == 1
        inject = routes[0].send

        inject(json.dumps([{"type": "status", "ticker": "AAPL", "stale": True, "ts": 1}]))
        expect(row(page, "AAPL")).to_have_class(re.compile(r"\bstale\b"))
        expect(row(page, "AAPL").locator(".stale-badge")).to_be_visible()
        expect(page.locator("#announcer")).to_have_text("AAPL is stale: no update for a while.")
        page.screenshot(path=str(artifacts / "board-stale.png"))

        price = float(row(page, "AAPL").locator("td.price").inner_text().replace(",", ""))
        fresh = {"type": "tick", "ticker": "AAPL", "price": price + 1, "change": 1.0, "change_percent": 0.5}
        inject(json.dumps([{**fresh, "mode": "demo", "ts": 1_800_000_000_000, "seq": 2, "stale": False}]))
        expect(row(page, "AAPL")).not_to_have_class(re.compile(r"\bstale\b"))
        expect(row(page, "AAPL").locator(".stale-badge")).to_be_hidden()
        expect(row(page, "AAPL").locator("td.price")).to_have_attribute("data-moved", "up")

        inject(json.dumps([{**fresh, "mode": "demo", "ts": 1_800_000_001_000, "seq": 7, "stale": False}]))
        expect(page.locator("#skipped")).to_have_text(re.compile(r"^4 ticks skipped since this page opened"))

        source = {"type": "status", "source": "demo", "ts": 2, "reconnects": 1}
        inject(json.dumps({**source, "state": "reconnecting"}))  # a single message, not a batch
        expect(page.locator('#sources li[data-source="demo"]')).to_have_text("demo feed: reconnecting")
        expect(page.locator("#announcer")).to_have_text("demo feed: reconnecting")
        inject("this is not JSON")
        bad_frame = "Ignored a bad message from the server: frame is not valid JSON"
        expect(page.locator("#notice-text")).to_have_text(bad_frame)
        # The socket still works; the dot agrees with the chip: amber, naming the source that is not live.
        expect(page.locator("#connection")).to_have_attribute("data-state", "degraded")
        expect(page.locator("#connection-text")).to_have_text("Live · demo feed: reconnecting")
        inject(json.dumps({**source, "state": "live"}))
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(page.locator("#connection-text")).to_have_text("Live")
    finally:
        context.close()
        quiet.stop()
