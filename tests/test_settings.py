"""Settings: env names the prototypes used, `.env` files, and one clear error per bad value."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from trio_ticker.server import hypercorn_config
from trio_ticker.settings import ConfigError, Settings, kernel_max_backlog, load_settings


def test_defaults_serve_the_demo() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.demo_mode is True
    assert settings.symbols == ("AAPL", "GOOGL", "AMZN", "MSFT", "BTCUSDT", "ETHUSDT")
    assert settings.default_symbol == "BTCUSDT"


def test_prototype_variables_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DEMO_MODE=false\nFINNHUB_API_KEY=sekrit\nTICKER_STOCK_SYMBOLS=aapl, tsla\n")
    settings = load_settings()
    assert settings.demo_mode is False
    assert settings.finnhub_api_key is not None
    assert settings.finnhub_api_key.get_secret_value() == "sekrit"
    assert "sekrit" not in repr(settings)
    assert settings.stock_symbols == ("AAPL", "TSLA")


def test_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TICKER_DEMO_INTERVAL=2\n")
    monkeypatch.setenv("TICKER_DEMO_INTERVAL", "0.25")
    assert load_settings().demo_interval == 0.25


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TICKER_DEMO_INTERVAL", "-1", "TICKER_DEMO_INTERVAL: Input should be greater than 0 (got '-1')"),
        ("TICKER_DEMO_INTERVAL", "fast", "TICKER_DEMO_INTERVAL: Input should be a valid number"),
        ("DEMO_MODE", "maybe", "DEMO_MODE: Input should be a valid boolean"),
        ("TICKER_CRYPTO_SYMBOLS", "BTC USDT", "TICKER_CRYPTO_SYMBOLS: invalid symbol(s) 'BTC USDT'"),
        ("TICKER_CRYPTO_SYMBOLS", "btcu\u017fdt", "TICKER_CRYPTO_SYMBOLS: invalid symbol(s) 'btcu\u017fdt'"),
        ("TICKER_CLIENT_BUFFER", "0", "TICKER_CLIENT_BUFFER: Input should be greater than or equal to 1"),
        ("TICKER_PORT", "70000", "TICKER_PORT: Input should be less than or equal to 65535"),
        ("TICKER_DEFAULT_SYMBOL", "DOGE", "TICKER_DEFAULT_SYMBOL 'DOGE' is not among the configured symbols"),
        ("TICKER_WS_READ_TIMEOUT", "20", "TICKER_WS_READ_TIMEOUT needs TICKER_WS_PING_INTERVAL set and shorter"),
        # Pings are spread by +-20 %: pongs can come 24 s apart with the default 20 s interval.
        ("TICKER_WS_READ_TIMEOUT", "23", "TICKER_WS_READ_TIMEOUT needs TICKER_WS_PING_INTERVAL set and shorter"),
        (
            "TICKER_LOG_LEVEL",
            "chatty",
            "TICKER_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
        ),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert expected in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_api_key_is_never_echoed_in_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FINNHUB_API_KEY", "sekrit")
    monkeypatch.setenv("TICKER_PORT", "nope")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "sekrit" not in str(caught.value)


def test_settings_are_frozen() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(Exception, match="frozen"):
        settings.port = 1  # type: ignore[misc]


def test_the_listen_backlog_defaults_to_the_kernels_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    somaxconn = tmp_path / "somaxconn"
    somaxconn.write_text("8192\n")
    assert kernel_max_backlog(somaxconn) == 8192
    assert kernel_max_backlog(tmp_path / "missing") == socket.SOMAXCONN  # not Linux: the C library's limit
    somaxconn.write_text("garbage")
    assert kernel_max_backlog(somaxconn) == socket.SOMAXCONN
    assert Settings(_env_file=None).backlog == kernel_max_backlog()  # type: ignore[call-arg]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TICKER_BACKLOG", "512")
    assert hypercorn_config(load_settings()).backlog == 512  # what `python -m trio_ticker` passes to listen()
