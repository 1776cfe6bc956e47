"""The board page as the browser tests read it: a symbol's row, the price format, how long to wait."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page

PRICE = re.compile(r"^\d{1,3}(,\d{3})*\.\d{2}$")
WAIT_MS = 20_000


def row(page: Page, symbol: str) -> Any:
    return page.locator(f'#rows tr[data-symbol="{symbol}"]')
