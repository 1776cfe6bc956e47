"""Live-mode configuration: which sources run, the FINNHUB_API_KEY check, validated upstream URLs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import make_settings
from trio_ticker.settings import ConfigError, load_settings
from trio_ticker.sources.build import build_supervised_sources


def test_live_stock_symbols_without_a_key_refuse_to_start_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("DEMO_MODE", "false")
    monkeypatch.delenv("FINNHUB_API_KEY", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "FINNHUB_API_KEY is not set" in message
    assert "AAPL, GOOGL, AMZN, MSFT" in message
    assert "Traceback" not in message


def test_empty_key_counts_as_missing_and_crypto_only_needs_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEMO_MODE", "false")
    monkeypatch.setenv("FINNHUB_API_KEY", "  ")
    with pytest.raises(ConfigError, match="FINNHUB_API_KEY"):
        load_settings()
    monkeypatch.setenv("TICKER_STOCK_SYMBOLS", "")
    monkeypatch.setenv("TICKER_DEFAULT_SYMBOL", "ETHUSDT")
    settings = load_settings()
    assert [source.name for source in build_supervised_sources(settings)] == ["binance"]


def test_live_mode_builds_both_sources_each_supervised() -> None:
    settings = make_settings(demo_mode=False, finnhub_api_key="k")
    sources = build_supervised_sources(settings)
    assert [(source.name, source.symbols) for source in sources] == [
        ("binance", ("BTCUSDT", "ETHUSDT")),
        ("finnhub", ("AAPL", "GOOGL", "AMZN", "MSFT")),
    ]
    assert all(type(source).__name__ == "Supervisor" for source in sources)


def test_demo_mode_supervises_the_demo_feed() -> None:
    (source,) = build_supervised_sources(make_settings())
    assert (source.name, type(source).__name__) == ("demo", "Supervisor")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("binance_ws_url", "https://stream.binance.com"),
        ("finnhub_ws_url", "wss://ws.finnhub.io?token=abc"),
        ("finnhub_rest_url", "wss://finnhub.io/api/v1"),
        ("binance_stale_after", 0),
        ("reconnect_max_delay", 0.5),
    ],
)
def test_invalid_live_settings_name_the_variable(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **{field: value})
    text = str(caught.value)
    assert f"TICKER_{field.upper()}" in text
    assert "abc" not in text  # a token in a rejected URL is not echoed


def test_key_never_appears_in_settings_repr() -> None:
    settings = make_settings(demo_mode=False, finnhub_api_key="super-secret-key")
    assert "super-secret-key" not in repr(settings)


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "trio_ticker"],
        [sys.executable, "-m", "hypercorn", "trio_ticker.app:app", "--worker-class", "trio", "--bind", "127.0.0.1:0"],
    ],
)
def test_both_entry_points_name_the_missing_key_without_a_traceback(command: list[str], tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.endswith("FINNHUB_API_KEY")}
    env["DEMO_MODE"] = "false"
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    if command[2] == "trio_ticker":
        assert done.returncode == 2  # (the hypercorn command itself exits 0 after the app's SystemExit)
    assert "FINNHUB_API_KEY is not set" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
