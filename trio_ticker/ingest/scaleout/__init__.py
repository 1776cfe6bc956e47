"""Scale-out through Redis: one elected ingest leader publishes numbered ticks, every worker follows.

Imported only when TICKER_REDIS_URL is set; a single-process server never loads this package.
See docs/architecture.md, "Several workers".
"""
