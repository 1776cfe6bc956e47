from trio_ticker.catalogue.directory import ConfiguredDirectory
from trio_ticker.model import Listing
from trio_ticker.settings import Settings


def test_live_mode_routes_stocks_to_finnhub_and_crypto_to_binance() -> None:
    settings = Settings(demo_mode=False, finnhub_api_key="k", stock_symbols=("AAPL",), crypto_symbols=("BTCUSDT",))
    directory = ConfiguredDirectory(settings)
    assert directory.lookup("AAPL") == Listing("AAPL", "finnhub", "AAPL")
    assert directory.lookup("BTCUSDT") == Listing("BTCUSDT", "binance", "BTCUSDT")
    assert directory.lookup("DOGEUSDT") is None


def test_demo_mode_lists_every_configured_symbol_under_the_demo_source() -> None:
    directory = ConfiguredDirectory(Settings(demo_mode=True))
    assert {directory.lookup(symbol).source for symbol in Settings(demo_mode=True).symbols} == {"demo"}  # type: ignore[union-attr]
