"""A missing browser skips on a developer machine with the install command, and fails under CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chromium import require_chromium


def test_missing_chromium_skips_with_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"sudo apt-get install -y chromium"):
        require_chromium(tmp_path / "chromium")


def test_missing_chromium_fails_under_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"must run in CI: .* sudo apt-get install -y chromium"):
        require_chromium(tmp_path / "chromium")


def test_present_chromium_lets_the_tests_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    browser = tmp_path / "chromium"
    browser.touch()
    require_chromium(browser)  # neither skips nor fails
