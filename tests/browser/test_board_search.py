"""The board's search box, 24 h columns, sparklines and precision in a real browser against a real demo server:
type "DO", arrow down, Enter adds DOGEUSDT (on demand) with its 5 decimals, its 24 h high, low and volume and a
sparkline (seeded from /candles where the server has them, else from the ticks); a symbol no listing has is
refused clearly; Escape closes, then clears. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, Request, expect

from tests.support.board_page import PRICE, WAIT_MS, row

pytestmark = pytest.mark.slow

FIVE_DECIMALS = re.compile(r"^0\.\d{5}$")


def searched_queries(page: Page) -> list[str]:
    """The `q` of every GET /symbols?q= the page makes from now on."""
    queries: list[str] = []

    def seen(request: Request) -> None:
        url = urlsplit(request.url)
        if url.path == "/symbols" and "q" in parse_qs(url.query):
            queries.append(parse_qs(url.query)["q"][0])

    page.on("request", seen)
    return queries


def test_type_arrow_enter_adds_dogeusdt_with_its_precision_24h_columns_and_sparklines(
    page: Page, artifacts: Path
) -> None:
    expect(row(page, "AAPL").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
    queries = searched_queries(page)
    box = page.get_by_role("combobox", name="Add symbol")
    listbox = page.get_by_role("listbox", name="Matching symbols")
    box.press_sequentially("do", delay=20)

    # The catalogue answers (one request for the whole word: debounced); its first suggestion is active.
    expect(listbox).to_be_visible(timeout=WAIT_MS)
    expect(box).to_have_attribute("aria-expanded", "true")
    options = listbox.get_by_role("option")
    expect(options.first).to_contain_text("DOTUSDT")
    expect(options.first).to_have_attribute("aria-selected", "true")
    assert queries == ["DO"]
    page.screenshot(path=str(artifacts / "board-search-suggestions.png"))

    page.keyboard.press("ArrowDown")
    dogecoin = listbox.get_by_role("option", name=re.compile("DOGEUSDT"))
    expect(dogecoin).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", dogecoin.get_attribute("id") or "")
    expect(options.first).to_have_attribute("aria-selected", "false")
    page.keyboard.press("Enter")

    doge = row(page, "DOGEUSDT")
    expect(doge.locator("td.price")).to_have_text(FIVE_DECIMALS, timeout=WAIT_MS)
    expect(doge).to_have_attribute("data-precision", "5")
    expect(doge.locator("td.high")).to_have_text(FIVE_DECIMALS)
    expect(doge.locator("td.low")).to_have_text(FIVE_DECIMALS)
    expect(doge.locator("td.volume")).to_have_text(re.compile(r"^[\d.,]+[KMBT]?$"))
    for cell in ("td.high", "td.low", "td.volume"):
        expect(doge.locator(cell)).to_be_visible()
    high, low = (float(doge.locator(cell).inner_text()) for cell in ("td.high", "td.low"))
    assert low <= high
    # An always-on symbol's sparkline is seeded with the last 24 h of 15 m candles, full at once.
    btc_spark = row(page, "BTCUSDT").locator("svg.spark")
    expect(btc_spark).to_have_attribute("data-seeded", "true")
    assert int(btc_spark.get_attribute("data-points") or 0) >= 48
    assert (btc_spark.locator("path").get_attribute("d") or "").count("L") >= 47
    expect(btc_spark).to_have_attribute("aria-label", re.compile(r"^Last 24 h: (up|down|flat) from [\d,]+\.\d{2} to "))
    # DOGEUSDT, subscribed on demand, has only the candle its first tick opened: its sparkline follows its ticks.
    spark = doge.locator("svg.spark")
    expect(spark).to_have_attribute("data-seeded", "false")
    expect(spark).to_have_attribute("data-points", re.compile(r"^([2-9]|\d{2,})$"), timeout=WAIT_MS)
    expect(spark.locator("path")).to_have_attribute("d", re.compile(r"^M0 [\d.]+L"))
    since_added = re.compile(r"^Since added: (up|down|flat) from 0\.\d{5} to 0\.\d{5}$")
    expect(spark).to_have_attribute("aria-label", since_added)
    # The others keep their own precision.
    expect(row(page, "BTCUSDT").locator("td.price")).to_have_text(PRICE)

    expect(listbox).to_be_hidden()
    expect(box).to_have_value("")
    expect(box).to_be_focused()
    expect(page.locator("#announcer")).to_have_text("Added DOGEUSDT.")
    page.screenshot(path=str(artifacts / "board-search-added-dogeusdt.png"))

    # Kept over a reload, though it is not one of the always-on symbols.
    page.reload()
    expect(row(page, "DOGEUSDT").locator("td.price")).to_have_text(FIVE_DECIMALS, timeout=WAIT_MS)


def test_a_symbol_no_listing_has_is_refused_clearly_and_escape_closes_then_clears(page: Page) -> None:
    expect(row(page, "AAPL").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
    box = page.get_by_role("combobox", name="Add symbol")
    listbox = page.get_by_role("listbox", name="Matching symbols")

    box.press_sequentially("zzqq9")
    page.keyboard.press("Enter")  # before the (empty) answer: Enter waits for it, then sends the typed symbol
    hint = page.locator("#add-hint")
    expect(hint).to_have_text("ZZQQ9: not a symbol this server knows (unknown_symbol).", timeout=WAIT_MS)
    expect(box).to_have_attribute("aria-describedby", "add-hint")
    expect(row(page, "ZZQQ9")).to_have_count(0)
    expect(page.locator("#rows tr")).to_have_count(6)  # the others were not touched
    expect(row(page, "MSFT").locator("td.price")).to_have_text(PRICE)

    box.press_sequentially("a")
    expect(hint).to_be_hidden()  # typing again clears the explanation
    expect(listbox).to_be_visible(timeout=WAIT_MS)
    page.keyboard.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    expect(box).to_have_value("a")
    page.keyboard.press("ArrowDown")  # opens it again
    expect(listbox).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    expect(box).to_have_value("")


def test_an_empty_box_lists_the_always_on_symbols_not_on_the_board(page: Page) -> None:
    expect(row(page, "AAPL").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
    page.get_by_role("button", name="Remove MSFT").click()
    box = page.get_by_role("combobox", name="Add symbol")
    box.click()
    listbox = page.get_by_role("listbox", name="Matching symbols")
    expect(listbox.get_by_role("option")).to_have_count(1)
    expect(listbox.get_by_role("option").first).to_contain_text("MSFT")
    listbox.get_by_role("option").first.click()
    expect(row(page, "MSFT").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
    expect(box).to_be_focused()
