"""The candlestick chart in a real browser against a real demo server: it opens full from /candles,
switches timeframe at once, updates live, and a reload shows the same chart (screenshots kept)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser_server import ServerProcess

pytestmark = pytest.mark.slow
WAIT_MS = 20_000
DAY_OF_MINUTES = 1440


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """The board's demo server (conftest's `page` opens it), with an empty data directory of its own: its chart
    history is the generated day."""
    process = ServerProcess(env={"TICKER_DATA_DIR": str(tmp_path), "TICKER_HISTORY_FLUSH_INTERVAL": "0.2"})
    process.start()
    yield process
    process.stop()
    print("server log (last lines):", *process.log, sep="\n")


def chart(page: Page) -> Any:
    return page.locator("#chart")


def candles_shown(page: Page) -> int:
    return int(chart(page).get_attribute("data-candles") or 0)


def wait_loaded(page: Page, interval: str, at_least: int) -> int:
    page.wait_for_function(
        "([interval, count]) => { const c = document.querySelector('#chart'); return c.dataset.interval === interval"
        " && c.dataset.loaded === 'true' && Number(c.dataset.candles) >= count; }",
        arg=[interval, at_least],
        timeout=WAIT_MS,
    )
    return candles_shown(page)


def test_the_chart_opens_full_switches_at_once_updates_live_and_survives_a_reload(page: Page, artifacts: Path) -> None:
    candle_frames: list[dict[str, Any]] = []

    def watch(socket: Any) -> None:
        def received(payload: str | bytes) -> None:
            decoded = json.loads(payload)
            for message in decoded if isinstance(decoded, list) else [decoded]:
                if message.get("type") == "candle":
                    candle_frames.append(message)

        socket.on("framereceived", received)

    page.on("websocket", watch)
    page.reload()
    expect(page.locator("#chart-symbol")).to_have_text("BTCUSDT")
    minutes = wait_loaded(page, "1m", DAY_OF_MINUTES + 1)  # the generated day, then the live minute
    assert minutes <= DAY_OF_MINUTES + 2
    expect(page.locator("#chart-meta")).to_have_text(re.compile(r"^[\d,]+\.\d{2} · 1,44\d 1m candles$"))
    expect(page.get_by_role("button", name="1m", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#chart canvas").first).to_be_visible()
    page.screenshot(path=str(artifacts / "chart-1m.png"))

    # Live: candle frames of the charted symbol and timeframe arrive and move the last candle.
    before = page.locator("#chart-meta").inner_text()
    page.wait_for_function(
        "before => document.querySelector('#chart-meta').textContent !== before", arg=before, timeout=WAIT_MS
    )
    assert candle_frames and {(m["ticker"], m["interval"]) for m in candle_frames} == {("BTCUSDT", "1m")}

    page.get_by_role("button", name="1h", exact=True).click()
    hours = wait_loaded(page, "1h", 25)
    assert hours == 25  # 24 h generated (the day's first hour is partial) and the live one
    expect(page.get_by_role("button", name="1h", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="1m", exact=True)).to_have_attribute("aria-pressed", "false")
    page.screenshot(path=str(artifacts / "chart-1h.png"))

    # Back to 1 m: drawn from what the page already has, before any answer from the server.
    page.get_by_role("button", name="1m", exact=True).click()
    assert chart(page).get_attribute("data-interval") == "1m" and candles_shown(page) >= minutes

    page.get_by_role("button", name="15m", exact=True).click()
    quarters = wait_loaded(page, "15m", 96)
    page.get_by_role("button", name="ETHUSDT", exact=True).click()  # another symbol keeps the timeframe
    wait_loaded(page, "15m", 96)
    expect(page.locator("#chart-symbol")).to_have_text("ETHUSDT")
    shown_before_reload = candles_shown(page)
    page.screenshot(path=str(artifacts / "chart-15m-before-reload.png"))

    page.reload()
    after_reload = wait_loaded(page, "15m", 96)
    expect(page.locator("#chart-symbol")).to_have_text("ETHUSDT")
    expect(page.get_by_role("button", name="15m", exact=True)).to_have_attribute("aria-pressed", "true")
    assert after_reload in (shown_before_reload, shown_before_reload + 1)  # the same chart (a new quarter may open)
    assert quarters in (after_reload, after_reload - 1)
    page.screenshot(path=str(artifacts / "chart-15m-after-reload.png"))
    for name in ("chart-1m", "chart-1h", "chart-15m-before-reload", "chart-15m-after-reload"):
        assert (artifacts / f"{name}.png").stat().st_size > 20_000
