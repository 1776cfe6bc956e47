"""The board's looks in a real browser against one shared demo server: canvases at the device pixel ratio, a
table that fits its panel even with long prices, a layout that uses the height, light and dark themes, the
remembered theme toggle, sortable columns and Enter in the "Add symbol" box. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.support.board_page import PRICE, WAIT_MS, row
from tests.support.browser_server import ServerProcess

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
BACKGROUND = {"dark": "rgb(15, 20, 25)", "light": "rgb(244, 246, 248)"}
LONG_PRICES = {  # longer than any demo price, with long 24 h statistics: the table must still fit
    "BTCUSDT": {
        "price": 1_234_567.89,
        "change": -123_456.78,
        "change_percent": -90.91,
        "precision": 2,
        "high": 1_999_999.99,
        "low": 1_111_111.11,
        "volume": 987_654_321.12,
    },
    "ETHUSDT": {
        "price": 0.00001234,
        "change": -0.00000567,
        "change_percent": -31.47,
        "precision": 8,
        "high": 0.00009999,
        "low": 0.00001111,
        "volume": 0.00012345,
    },
}


@pytest.fixture(scope="module")
def board_server() -> Iterator[ServerProcess]:
    process = ServerProcess()
    process.start()
    yield process
    process.stop()
    print("server log (last lines):", *process.log, sep="\n")


class OpenBoard:
    """A fresh browser profile on the board, with its WebSocket routed so the test can add server messages."""

    def __init__(self, browser: Browser, server: ServerProcess, **context: Any) -> None:
        self.context: BrowserContext = browser.new_context(locale="en-US", **context)
        self.errors: list[str] = []
        self.routes: list[WebSocketRoute] = []
        self.page: Page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.route_web_socket(re.compile(r"/ws\?batch=1$"), self._intercept)
        self.page.goto(server.url + "/")
        expect(row(self.page, "AAPL").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
        self.page.wait_for_function("document.querySelector('#chart').dataset.loaded === 'true'", timeout=WAIT_MS)

    def _intercept(self, route: WebSocketRoute) -> None:
        route.connect_to_server()
        self.routes.append(route)

    def inject_ticks(self, prices: dict[str, dict[str, float]]) -> None:
        """Ticks far ahead in numbering, so they are the latest the board knows of their symbols."""
        ticks = [
            {"type": "tick", "ticker": symbol, "mode": "demo", "ts": 1_800_000_000_000, "seq": 10**9, "stale": False}
            | values
            for symbol, values in prices.items()
        ]
        self.routes[-1].send(json.dumps(ticks))

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"uncaught errors in the page: {self.errors}"


@pytest.fixture
def open_board(browser: Browser, board_server: ServerProcess) -> Iterator[Any]:
    opened: list[OpenBoard] = []

    def open_one(**context: Any) -> OpenBoard:
        opened.append(OpenBoard(browser, board_server, **context))
        return opened[-1]

    yield open_one
    for board in opened:
        board.close()


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not laid out"
    return found


def assert_inside(inner: dict[str, float], outer: dict[str, float], what: str) -> None:
    assert inner["x"] >= outer["x"] - 0.5, f"{what} starts left of its panel: {inner} in {outer}"
    assert inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5, f"{what} overflows: {inner} in {outer}"


def assert_table_fits(page: Page) -> None:
    panel = box(page, "#board")
    assert_inside(box(page, "table.prices"), panel, "the price table")
    scroll = page.locator(".table-scroll").evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert scroll[0] <= scroll[1], f"the table scrolls sideways: {scroll}"
    for button in page.locator("#rows .remove").all():
        found = button.bounding_box()
        assert found is not None
        assert_inside(found, panel, "a remove button")
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def canvas_sizes(page: Page) -> list[dict[str, float]]:
    return page.locator("#chart canvas").evaluate_all(
        "canvases => canvases.map(c => { const r = c.getBoundingClientRect();"
        " return {width: c.width, height: c.height, cssWidth: r.width, cssHeight: r.height}; })"
    )


@pytest.mark.parametrize("scheme", ["dark", "light"])
@pytest.mark.parametrize(
    ("name", "viewport", "scale"), [("desktop", DESKTOP, 1), ("phone", PHONE, 2)], ids=["1440x900", "390x844@2x"]
)
def test_the_board_fits_its_screen_sharply_in_either_theme(
    open_board: Any, artifacts: Path, name: str, viewport: dict[str, int], scale: int, scheme: str
) -> None:
    board: OpenBoard = open_board(viewport=viewport, device_scale_factor=scale, color_scheme=scheme)
    page = board.page
    expect(page.locator("html")).to_have_attribute("data-theme", scheme)
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUND[scheme]
    panel_bg = page.locator("#board").evaluate("e => getComputedStyle(e).backgroundColor")
    assert panel_bg == ("rgb(255, 255, 255)" if scheme == "light" else "rgb(23, 30, 38)")

    # Every chart canvas is drawn at the device's pixel ratio (a blurry 1x canvas on a 2x screen fails).
    sizes = canvas_sizes(page)
    assert len(sizes) >= 3
    for size in sizes:
        assert size["cssWidth"] > 0
        assert abs(size["width"] - size["cssWidth"] * scale) <= 1, sizes
        assert abs(size["height"] - size["cssHeight"] * scale) <= 1, sizes
    assert page.evaluate("devicePixelRatio") == scale

    board.inject_ticks(LONG_PRICES)
    expect(row(page, "BTCUSDT").locator("td.price")).to_have_text("1,234,567.89")
    expect(row(page, "ETHUSDT").locator("td.price")).to_have_text("0.00001234")
    if name == "desktop":  # the 24 h columns are shown where there is room (the phone drops them)
        expect(row(page, "BTCUSDT").locator("td.high")).to_have_text("1,999,999.99")
        expect(row(page, "ETHUSDT").locator("td.low")).to_have_text("0.00001111")
        expect(row(page, "BTCUSDT").locator("td.volume")).to_have_text("987.65M")
        expect(row(page, "BTCUSDT").locator("td.high")).to_be_visible()
    expect(row(page, "BTCUSDT").locator("svg.spark")).to_be_visible()
    assert_table_fits(page)

    chart = box(page, "#chart")
    if name == "desktop":
        # The height is used: the chart reaches down the screen and is the larger panel, the table beside it.
        assert chart["y"] + chart["height"] >= 0.8 * viewport["height"], chart
        assert chart["width"] > box(page, "#board")["width"], chart
        assert page.evaluate("document.documentElement.scrollHeight") <= viewport["height"]
    else:
        assert chart["width"] >= viewport["width"] - 60 and chart["height"] >= 250, chart
    page.screenshot(path=str(artifacts / f"board-{name}-{scheme}.png"), full_page=True)


def test_the_theme_toggle_switches_and_is_remembered_over_the_system_preference(
    open_board: Any, artifacts: Path
) -> None:
    page = open_board(viewport=DESKTOP, color_scheme="light").page
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    toggle = page.get_by_role("button", name="Switch to the dark theme")
    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUND["dark"]
    page.screenshot(path=str(artifacts / "board-toggled-to-dark.png"))  # the chart recoloured too
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")  # kept over the light preference
    page.get_by_role("button", name="Switch to the light theme").focus()
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert page.evaluate("localStorage.getItem('trio_ticker.theme.v1')") == "light"


def shown_rows(page: Page) -> list[tuple[str, float]]:
    """Symbols top to bottom with their shown prices, read in one go (the board may redraw between reads)."""
    pairs = page.locator("#rows tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.symbol, r.querySelector('td.price').textContent])"
    )
    return [(symbol, float(text.replace(",", ""))) for symbol, text in pairs]


def test_columns_sort_by_click_and_keyboard_and_the_order_is_remembered(open_board: Any) -> None:
    page = open_board(viewport=DESKTOP).page
    original = [symbol for symbol, _ in shown_rows(page)]
    price_header = page.locator('th[data-sort="price"]')

    page.get_by_role("button", name="Price", exact=True).click()
    expect(price_header).to_have_attribute("aria-sort", "ascending")
    prices = [price for _, price in shown_rows(page)]
    assert prices == sorted(prices)

    page.get_by_role("button", name="Price", exact=True).focus()
    page.keyboard.press("Enter")
    expect(price_header).to_have_attribute("aria-sort", "descending")
    prices = [price for _, price in shown_rows(page)]
    assert prices == sorted(prices, reverse=True)
    expect(page.get_by_role("button", name="Price", exact=True)).to_be_focused()

    page.reload()
    expect(row(page, "AAPL").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
    expect(price_header).to_have_attribute("aria-sort", "descending")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#rows td.price')].every(td => td.textContent !== '—')", timeout=WAIT_MS
    )
    prices = [price for _, price in shown_rows(page)]
    assert prices == sorted(prices, reverse=True)

    page.get_by_role("button", name="Symbol", exact=True).press("Space")
    expect(page.locator('th[data-sort="symbol"]')).to_have_attribute("aria-sort", "ascending")
    expect(price_header).not_to_have_attribute("aria-sort", re.compile(".+"))
    assert [symbol for symbol, _ in shown_rows(page)] == sorted(original)
    page.get_by_role("button", name="Symbol", exact=True).click()
    page.get_by_role("button", name="Symbol", exact=True).click()  # third click: the user's own order again
    expect(page.locator('th[data-sort="symbol"]')).not_to_have_attribute("aria-sort", re.compile(".+"))
    assert [symbol for symbol, _ in shown_rows(page)] == original


def test_enter_on_the_add_symbol_box_adds_it(open_board: Any) -> None:
    page = open_board(viewport=DESKTOP).page
    page.get_by_role("button", name="Remove MSFT").click()
    page.get_by_role("button", name="Remove AMZN").click()
    expect(page.locator("#rows tr")).to_have_count(4)
    box = page.get_by_label("Add symbol")
    box.focus()
    page.keyboard.press("ArrowDown")  # an empty box lists the always-on symbols not on the board
    options = page.get_by_role("listbox", name="Matching symbols").get_by_role("option")
    expect(options).to_have_count(2)
    expect(options.first).to_contain_text("AMZN")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(row(page, "MSFT").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
    expect(box).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(options).to_have_count(1)  # only AMZN is left
