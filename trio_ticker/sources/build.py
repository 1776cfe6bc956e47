"""Which sources run, built from Settings, each wrapped in the shared `Supervisor`.

Demo mode supervises the simulated feed; live mode runs Binance for the crypto symbols and
Finnhub for the stock symbols (both at once when both lists are set).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ..settings import Settings
from .binance_feed import BinanceFeed
from .demo import DemoFeed
from .finnhub_feed import FinnhubFeed
from .finnhub_quotes import finnhub_limiter
from .retry import RetryPolicy
from .sockets import OpenSocket, websocket_opener
from .supervise import Supervisor

DEMO_STALE_INTERVALS = 20  # the demo is marked stale after this many missed steps (>= 10 s)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        initial=settings.reconnect_initial_delay,
        maximum=settings.reconnect_max_delay,
        healthy_after=settings.reconnect_healthy_after,
        unauthorized_delay=settings.unauthorized_retry_delay,
    )


def build_supervised_sources(
    settings: Settings,
    *,
    open_socket: OpenSocket | None = None,
    latest_price: Callable[[str], float | None] | None = None,
) -> list[Supervisor]:
    policy = retry_policy(settings)
    jitter = random.Random(settings.demo_seed)
    if settings.demo_mode:
        demo = DemoFeed(
            settings.symbols,
            interval=settings.demo_interval,
            speed=settings.demo_speed,
            seed=settings.demo_seed,
            latest_price=latest_price,
        )
        stale_after = max(10.0, DEMO_STALE_INTERVALS * settings.demo_interval)
        return [Supervisor(demo, stale_after=stale_after, policy=policy, jitter=jitter)]
    open_socket = open_socket or websocket_opener(connect_timeout=settings.upstream_connect_timeout)
    sources: list[Supervisor] = []
    if settings.crypto_symbols:
        binance = BinanceFeed(
            settings.crypto_symbols,
            base_url=settings.binance_ws_url,
            open_socket=open_socket,
            max_connection_age=settings.binance_max_connection_age,
            reply_timeout=settings.upstream_connect_timeout,
            rest_url=settings.binance_rest_url,
            rest_weight_per_minute=settings.binance_rest_weight_per_minute,
        )
        sources.append(Supervisor(binance, stale_after=settings.binance_stale_after, policy=policy, jitter=jitter))
    if settings.stock_symbols:
        assert settings.finnhub_api_key is not None  # Settings refuses live stocks without a key
        finnhub = FinnhubFeed(
            settings.stock_symbols,
            ws_url=settings.finnhub_ws_url,
            rest_url=settings.finnhub_rest_url,
            api_key=settings.finnhub_api_key,
            open_socket=open_socket,
            limiter=finnhub_limiter(settings.finnhub_rest_per_minute, settings.finnhub_rest_per_second),
            http_timeout=settings.upstream_connect_timeout,
            retry=policy,
            jitter=jitter,
            max_symbols=settings.finnhub_max_symbols,
        )
        sources.append(Supervisor(finnhub, stale_after=settings.finnhub_stale_after, policy=policy, jitter=jitter))
    return sources
