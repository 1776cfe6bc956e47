"""A real Hypercorn server on 127.0.0.1:0 serving an app, as `python -m trio_ticker` does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from tests.support.helpers import make_settings
from trio_ticker.edge.hypercorn_server import serve
from trio_ticker.settings import Settings


@asynccontextmanager
async def serve_app(app: Any, settings: Settings | None = None, **overrides: Any) -> AsyncIterator[str]:
    """Serve `app` (lifespan included) until the block ends; yields "127.0.0.1:PORT".

    Server settings (ping interval, read and stall timeouts) come from `settings` or `overrides`.
    """
    overrides = {"graceful_timeout": 1.0, **overrides, "host": "127.0.0.1", "port": 0}
    server_settings = settings.model_copy(update=overrides) if settings else make_settings(**overrides)
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, server_settings, shutdown_trigger=shutdown.wait))
        try:
            yield binds[0].removeprefix("http://")
        finally:
            shutdown.set()
