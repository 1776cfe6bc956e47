"""History: OHLCV candles aggregated from every published tick, stored (SQLite or Redis) and served.

Data flow: hub -> `LiveCandles` (the `CandleBook` in memory, live candle frames) -> `CandleWriter`
(batched, off the hot path) -> a `CandleStore`; REST reads merge the store with what is in memory.
See docs/architecture.md, "History and candles".
"""
