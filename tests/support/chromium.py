"""Where the browser tests find Debian's chromium, how they launch it, and what happens without it.

Without the browser the tests skip with the install command, except under CI=true, where they
fail: CI installs chromium (.ci/run), so a missing browser there is a broken setup.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium(path: Path = CHROMIUM) -> None:
    if path.exists():
        return
    message = f"{path} is missing; install it with: sudo apt-get install -y chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests must run in CI: {message}")
    pytest.skip(message)
