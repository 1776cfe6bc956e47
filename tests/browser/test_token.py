"""The board against a server that requires a token (TICKER_AUTH_TOKENS), in a real browser.

The token is given once in the link's fragment (`/#token=…`): the page sends it as the WebSocket's
`bearer.` subprotocol and as `Authorization: Bearer` for `/symbols`, keeps it for the tab, and takes
it out of the address bar. Without a valid token the banner says so and the page does not retry.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.support.board_page import PRICE, WAIT_MS, row
from tests.support.browser_server import ServerProcess

pytestmark = pytest.mark.slow

TOKEN = "browser-test-token-0123456789"
OTHER_TOKEN = "rotated-token-9876543210abcdef"


@pytest.fixture
def token_server() -> Iterator[ServerProcess]:
    process = ServerProcess(env={"TICKER_AUTH_TOKENS": TOKEN})
    process.start()
    yield process
    process.stop()
    print("server log (last lines):", *process.log, sep="\n")


@pytest.fixture
def watched_page(browser: Browser) -> Iterator[tuple[Page, list[WebSocket]]]:
    """A fresh profile (empty sessionStorage), and every WebSocket the page opens; fails on page errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    sockets: list[WebSocket] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("websocket", lambda socket: sockets.append(socket))
    yield page, sockets
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def expect_connection(page: Page, state: str) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", state, timeout=WAIT_MS)
    if state == "unauthorized":
        expect(page.locator("#connection-text")).to_contain_text("Not authorized")
        expect(page.get_by_role("button", name="Retry now")).to_be_hidden()


def test_the_token_from_the_link_opens_the_board_and_leaves_the_address_bar(
    watched_page: tuple[Page, list[WebSocket]], token_server: ServerProcess
) -> None:
    page, sockets = watched_page
    page.goto(f"{token_server.url}/#token={TOKEN}")
    expect_connection(page, "live")
    expect(row(page, "AAPL").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
    assert "token" not in page.url
    assert page.evaluate("() => sessionStorage.getItem('trio_ticker.token')") == TOKEN

    page.reload()  # the tab keeps the token: the plain URL works again
    expect_connection(page, "live")
    expect(row(page, "MSFT").locator("td.price")).to_have_text(PRICE, timeout=WAIT_MS)
    assert len(sockets) == 2
    assert not any("token" in socket.url for socket in sockets)  # it travelled as a subprotocol, not in the URL


def test_without_a_valid_token_the_board_says_so_and_does_not_retry(
    watched_page: tuple[Page, list[WebSocket]], token_server: ServerProcess
) -> None:
    page, sockets = watched_page
    for link in (f"{token_server.url}/", f"{token_server.url}/#token={OTHER_TOKEN}"):
        page.goto(link)
        expect_connection(page, "unauthorized")
    page.wait_for_timeout(3000)
    assert sockets == []  # /symbols answered 401: no socket was opened, nothing retries


def test_a_rotated_token_closes_the_socket_with_4001_and_the_board_stops_retrying(
    watched_page: tuple[Page, list[WebSocket]], token_server: ServerProcess
) -> None:
    page, sockets = watched_page
    page.goto(f"{token_server.url}/#token={TOKEN}")
    expect_connection(page, "live")

    token_server.stop()  # the operator restarts the server with a new token on the same address
    rotated = ServerProcess(port=token_server.port, env={"TICKER_AUTH_TOKENS": OTHER_TOKEN})
    rotated.start()
    try:
        expect_connection(page, "unauthorized")
        attempts = len(sockets)
        page.wait_for_timeout(3000)
        assert len(sockets) == attempts  # 4001 is final: no reconnect loop against the server
    finally:
        rotated.stop()
        print("rotated server log:", *rotated.log, sep="\n")
