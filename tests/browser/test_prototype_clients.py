"""The prototypes' own browser clients, unmodified but for the WebSocket's host and port, in a real Chromium.

Two fixture pages behave exactly like the prototypes' clients (tests/browser/prototype_pages/): the crypto
broadcaster's, which only listens, and the stock streamer's, which subscribes to four stocks on open. Against a
real server in demo mode, and in live mode with the fake upstreams through a stale period, a recorder (injected
by the test, not part of the pages) notes everything they ever show: never undefined or NaN, prices that move,
and every stock's arrow flipping both ways.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, WebSocket

from tests.fakes.binance_server import ConnectionPlan, FakeBinance
from tests.fakes.finnhub_server import FakeFinnhub
from tests.helpers import PRICE_OBJECT_KEYS

from .fake_upstreams import FakeUpstreamsThread
from .server_process import ServerProcess

pytestmark = pytest.mark.slow

PAGES = Path(__file__).parent / "prototype_pages"
PROTOTYPE_WS_URL = "ws://localhost:8000/ws"  # what the prototypes' pages connect to; the tests change only this
STOCKS = ["AAPL", "GOOGL", "AMZN", "MSFT"]
FLIP_WAIT_MS = 60_000  # "the arrows flip both ways within a minute"; the fast feeds make it seconds
WAIT_MS = 30_000
BROADCAST_LINE = re.compile(r"^BTCUSDT \| \$\d+\.\d{2} \| -?\d+\.\d{2}% \| \d{1,2}:\d{2}:\d{2}\W+[AP]M$")
# A loaded test machine may run the stock page's onopen late; the delay keeps the default symbol from it anyway.
SERVER_ENV = {"TICKER_PROTOTYPE_DEFAULT_DELAY": "3", "TICKER_STOCK_SYMBOLS": ",".join(STOCKS)}

RECORDER = """
(() => {
  const seen = { texts: [], broadcast: [], cards: {} };
  window.__seen = seen;
  const record = () => {
    const text = document.body.innerText;
    if (seen.texts.at(-1) !== text) seen.texts.push(text);
    const price = document.getElementById("price");
    if (price && seen.broadcast.at(-1) !== price.textContent) seen.broadcast.push(price.textContent);
    for (const card of document.querySelectorAll(".card")) {
      const state = (seen.cards[card.id] ??= { arrows: [], prices: [], modes: [] });
      for (const [field, selector] of [["arrows", ".arrow"], ["prices", ".price"], ["modes", ".mode"]]) {
        const shown = card.querySelector(selector).textContent;
        if (state[field].at(-1) !== shown) state[field].push(shown);
      }
    }
  };
  document.addEventListener("DOMContentLoaded", () => {
    record();
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
})();
"""
EVERY_STOCK_FLIPPED_BOTH_WAYS = """
(stocks) => stocks.every((symbol) => {
  const arrows = window.__seen.cards[`card-${symbol}`]?.arrows.join("") ?? "";
  return arrows.includes("▲▼") && arrows.includes("▼▲");
})
"""

PRICES_MOVED_SINCE = """
(counts) => Object.entries(counts).every(
  ([symbol, count]) => window.__seen.cards[`card-${symbol}`].prices.length > count,
)
"""


class PrototypePage:
    """One prototype page in the browser, with every frame its WebSocket received."""

    def __init__(self, context: BrowserContext, page_file: str, server: ServerProcess, directory: Path) -> None:
        html = (PAGES / page_file).read_text()
        assert html.count(PROTOTYPE_WS_URL) == 1
        copy = directory / page_file  # as a user would: the page with only the WebSocket's host and port changed
        copy.write_text(html.replace(PROTOTYPE_WS_URL, server.url.replace("http://", "ws://") + "/ws"))
        self.frames: list[dict[str, Any]] = []
        self.page = context.new_page()
        self.page.on("websocket", self._watch)
        self.page.goto(copy.as_uri())

    def _watch(self, socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: self.frames.append(json.loads(payload)))

    def seen(self) -> dict[str, Any]:
        return self.page.evaluate("window.__seen")  # type: ignore[no-any-return]

    def wait(self, condition: str, arg: object = None, timeout: float = WAIT_MS) -> None:
        self.page.wait_for_function(condition, arg=arg, timeout=timeout)

    def wait_for_frames(self, found: Any, timeout_ms: int = WAIT_MS) -> None:
        """Let Playwright deliver frame events until `found(frames)` holds."""
        for _ in range(timeout_ms // 100):
            if found(self.frames):
                return
            self.page.wait_for_timeout(100)
        raise AssertionError(f"not seen within {timeout_ms} ms; last frames: {self.frames[-5:]}")

    def assert_only_price_objects_were_received(self) -> None:
        assert self.frames
        odd = [frame for frame in self.frames if set(frame) != PRICE_OBJECT_KEYS]
        assert not odd, f"frames a prototype client would misdraw: {odd[:5]}"

    def assert_never_showed_undefined_or_nan(self) -> None:
        texts = self.seen()["texts"]
        bad = [text for text in texts if any(word in text for word in ("undefined", "NaN", "Invalid Date"))]
        assert not bad, f"the page showed: {bad[:3]}"


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile with the recorder in every page; fails the test on page errors."""
    context = browser.new_context(viewport={"width": 1024, "height": 700}, locale="en-US")
    context.add_init_script(RECORDER)
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    yield context
    context.close()
    assert not errors, f"uncaught errors in the pages: {errors}"


def check_broadcaster(broadcaster: PrototypePage, mode: str) -> None:
    broadcaster.wait("() => window.__seen.broadcast.length >= 4")  # the waiting text, then three prices
    shown = broadcaster.seen()["broadcast"]
    assert shown[0] == "waiting for the first price…"
    assert all(BROADCAST_LINE.match(line) for line in shown[1:]), shown[1:4]
    assert {frame["symbol"] for frame in broadcaster.frames} == {"BTCUSDT"}  # the default symbol, unasked
    assert {frame["mode"] for frame in broadcaster.frames} == {mode}
    assert broadcaster.page.locator("#status").inner_text() == "connected"


def check_stock_streamer(streamer: PrototypePage, mode: str) -> None:
    streamer.wait(EVERY_STOCK_FLIPPED_BOTH_WAYS, STOCKS, timeout=FLIP_WAIT_MS)
    cards = streamer.page.locator(".card")
    assert sorted(cards.evaluate_all("cards => cards.map(card => card.id)")) == sorted(f"card-{s}" for s in STOCKS)
    for symbol in STOCKS:
        card = streamer.seen()["cards"][f"card-{symbol}"]
        assert len(card["prices"]) >= 3  # prices update
        assert all(re.fullmatch(r"\$\d+\.\d{2}", price) for price in card["prices"])
        assert card["modes"] == [mode]
    assert {frame["ticker"] for frame in streamer.frames} == set(STOCKS)  # never the default symbol


@contextmanager
def prototype_pages(
    context: BrowserContext, directory: Path, mode: str, env: dict[str, str], **server_options: Any
) -> Iterator[tuple[PrototypePage, PrototypePage]]:
    """A real server, then both prototype pages on it, each showing prices and (the streamer) flipped arrows;
    when the block ends, checks that they only ever received price objects and never showed undefined or NaN."""
    server = ServerProcess(env={**SERVER_ENV, **env}, **server_options)
    server.start()
    try:
        pages = (
            PrototypePage(context, "crypto_broadcaster.html", server, directory),
            PrototypePage(context, "stock_streamer.html", server, directory),
        )
        check_broadcaster(pages[0], mode)
        check_stock_streamer(pages[1], mode)
        yield pages
        for page in pages:
            page.assert_only_price_objects_were_received()
            page.assert_never_showed_undefined_or_nan()
    finally:
        server.stop()
        print("server log (last lines):", *server.log, sep="\n")


def test_the_prototypes_clients_work_against_the_demo(context: BrowserContext, tmp_path: Path, artifacts: Path) -> None:
    fast_demo = {"TICKER_DEMO_SPEED": "3600"}
    with prototype_pages(context, tmp_path, "demo", fast_demo, demo_interval=0.05) as (_, streamer):
        streamer.page.screenshot(path=str(artifacts / "prototype-stock-streamer-demo.png"))


def stale_then_fresh(symbols: list[str]) -> Any:
    """True once every symbol had a stale price object followed by a fresh one with a newer seq."""

    def found(frames: list[dict[str, Any]]) -> bool:
        for symbol in symbols:
            mine = [frame for frame in frames if frame["ticker"] == symbol]
            stale = next((index for index, frame in enumerate(mine) if frame["stale"]), None)
            if stale is None or not any(
                not frame["stale"] and frame["seq"] > mine[stale]["seq"] for frame in mine[stale:]
            ):
                return False
        return True

    return found


def test_the_prototypes_clients_work_live_through_a_stale_period(
    context: BrowserContext, tmp_path: Path, artifacts: Path
) -> None:
    binance = FakeBinance(plans=[ConnectionPlan(), ConnectionPlan()])  # the first one is stalled mid-test
    finnhub = FakeFinnhub(prices={"AAPL": 189.5, "GOOGL": 171.2, "AMZN": 185.6, "MSFT": 418.3})
    stale_after = {"TICKER_BINANCE_STALE_AFTER": "1", "TICKER_FINNHUB_STALE_AFTER": "1"}
    with (
        FakeUpstreamsThread(binance, finnhub) as fakes,
        prototype_pages(context, tmp_path, "live", {**fakes.server_env(), **stale_after}) as (broadcaster, streamer),
    ):
        # Both feeds go quiet: Binance's connection stalls (the server replaces it), Finnhub sends no trades
        # while its quote shows a newer one (so the quiet is not a closed market).
        def go_quiet() -> None:
            binance.plans[0].events_before = 0
            finnhub.trades = False
            finnhub.quote_ts += 3600

        fakes.call(go_quiet)
        streamer.wait_for_frames(
            lambda frames: all(any(f["stale"] and f["ticker"] == s for f in frames) for s in STOCKS)
        )
        streamer.page.screenshot(path=str(artifacts / "prototype-stock-streamer-stale.png"))
        fakes.call(lambda: setattr(finnhub, "trades", True))
        broadcaster.wait_for_frames(stale_then_fresh(["BTCUSDT"]))
        streamer.wait_for_frames(stale_then_fresh(STOCKS))
        moved_at = {symbol: len(streamer.seen()["cards"][f"card-{symbol}"]["prices"]) for symbol in STOCKS}
        streamer.wait(PRICES_MOVED_SINCE, moved_at)  # and prices move again
        assert binance.connections == 2  # the stalled connection was replaced
