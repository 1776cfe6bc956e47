"""The demo's instruments: one table that both the simulated feed and the demo catalogue read.

Each row is a realistic symbol with a plausible start price, annualised volatility and tick size
(the crypto pairs' tick sizes are Binance's); `instrument_for` also invents one for any other symbol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    start_price: float
    volatility: float  # annualised, e.g. 0.25 = 25 %
    tick_size: float = 0.01
    name: str = ""
    base: str = ""  # crypto pairs: the base and quote assets ("" for stocks)
    quote: str = ""

    @property
    def decimals(self) -> int:
        return max(0, -math.floor(math.log10(self.tick_size) + 1e-9))


def _stock(symbol: str, start_price: float, volatility: float, name: str) -> Instrument:
    return Instrument(symbol, start_price, volatility, 0.01, name)


def _pair(base: str, quote: str, start_price: float, volatility: float, tick_size: float) -> Instrument:
    return Instrument(base + quote, start_price, volatility, tick_size, f"{base}/{quote}", base, quote)


KNOWN_INSTRUMENTS = {
    instrument.symbol: instrument
    for instrument in (
        _stock("AAPL", 189.50, 0.25, "Apple Inc"),
        _stock("GOOGL", 171.20, 0.30, "Alphabet Inc Class A"),
        _stock("AMZN", 185.60, 0.32, "Amazon.com Inc"),
        _stock("MSFT", 418.30, 0.24, "Microsoft Corp"),
        _pair("BTC", "USDT", 96_500.00, 0.60, 0.01),
        _pair("ETH", "USDT", 3_420.00, 0.75, 0.01),
        _stock("NVDA", 181.40, 0.50, "NVIDIA Corp"),
        _stock("META", 612.80, 0.38, "Meta Platforms Inc"),
        _stock("TSLA", 402.10, 0.60, "Tesla Inc"),
        _stock("BRK.B", 478.90, 0.16, "Berkshire Hathaway Inc Class B"),
        _stock("JPM", 301.20, 0.22, "JPMorgan Chase & Co"),
        _stock("V", 334.70, 0.20, "Visa Inc Class A"),
        _stock("MA", 548.30, 0.21, "Mastercard Inc Class A"),
        _stock("UNH", 327.60, 0.30, "UnitedHealth Group Inc"),
        _stock("XOM", 114.90, 0.24, "Exxon Mobil Corp"),
        _stock("JNJ", 198.40, 0.16, "Johnson & Johnson"),
        _stock("WMT", 102.30, 0.19, "Walmart Inc"),
        _stock("PG", 149.80, 0.15, "Procter & Gamble Co"),
        _stock("HD", 356.10, 0.22, "Home Depot Inc"),
        _stock("KO", 70.20, 0.14, "Coca-Cola Co"),
        _stock("PEP", 145.60, 0.16, "PepsiCo Inc"),
        _stock("COST", 912.40, 0.20, "Costco Wholesale Corp"),
        _stock("NFLX", 108.70, 0.40, "Netflix Inc"),
        _stock("AMD", 214.50, 0.55, "Advanced Micro Devices Inc"),
        _stock("INTC", 37.80, 0.45, "Intel Corp"),
        _stock("ORCL", 219.60, 0.40, "Oracle Corp"),
        _stock("CRM", 236.90, 0.35, "Salesforce Inc"),
        _stock("ADBE", 331.20, 0.33, "Adobe Inc"),
        _stock("DIS", 111.40, 0.26, "Walt Disney Co"),
        _stock("BAC", 52.10, 0.25, "Bank of America Corp"),
        _stock("PFE", 25.30, 0.22, "Pfizer Inc"),
        _stock("SPY", 668.20, 0.15, "SPDR S&P 500 ETF Trust"),
        _stock("QQQ", 603.50, 0.19, "Invesco QQQ Trust Series 1"),
        _stock("PLTR", 168.30, 0.65, "Palantir Technologies Inc Class A"),
        _pair("BNB", "USDT", 872.40, 0.55, 0.01),
        _pair("SOL", "USDT", 139.85, 0.85, 0.01),
        _pair("XRP", "USDT", 2.1834, 0.80, 0.0001),
        _pair("DOGE", "USDT", 0.14825, 0.95, 0.00001),
        _pair("ADA", "USDT", 0.4172, 0.90, 0.0001),
        _pair("TRX", "USDT", 0.2781, 0.55, 0.0001),
        _pair("AVAX", "USDT", 13.42, 0.95, 0.01),
        _pair("LINK", "USDT", 12.87, 0.90, 0.01),
        _pair("DOT", "USDT", 2.214, 0.90, 0.001),
        _pair("LTC", "USDT", 82.36, 0.75, 0.01),
        _pair("BCH", "USDT", 538.4, 0.75, 0.1),
        _pair("SHIB", "USDT", 0.00000845, 1.00, 0.00000001),
        _pair("PEPE", "USDT", 0.00000432, 1.20, 0.00000001),
        _pair("NEAR", "USDT", 1.873, 0.95, 0.001),
        _pair("UNI", "USDT", 5.612, 0.95, 0.001),
        _pair("ATOM", "USDT", 2.418, 0.90, 0.001),
        _pair("XLM", "USDT", 0.2398, 0.80, 0.0001),
        _pair("SUI", "USDT", 1.6123, 1.10, 0.0001),
        _pair("ETH", "BTC", 0.03544, 0.45, 0.00001),
        _pair("BTC", "USDC", 96_480.00, 0.60, 0.01),
    )
}


def instrument_for(symbol: str) -> Instrument:
    """A plausible instrument for any symbol: the known ones, else $100 at 30 % volatility."""
    return KNOWN_INSTRUMENTS.get(symbol) or Instrument(symbol, 100.0, 0.30)
