"""What the two comparison servers (naive_server.py, bare_server.py) share: the tick schedule, the ASGI
scopes that are not the WebSocket, and serving on 127.0.0.1 with the URL logged for bench/run.py."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve


async def tick_on_schedule(
    symbol: str, interval: float, emit: Callable[[str], None], woke: Callable[[], None] | None = None
) -> None:
    """A random walk on a fixed schedule, each tick encoded once and passed to `emit`; late steps are all emitted
    at once, never skipped; `woke`, if given, is called after each wake-up's ticks."""
    price, seq, rng = 96_500.0, 0, random.Random(7)
    next_step = trio.current_time() + interval
    while True:
        await trio.sleep_until(next_step)
        now = trio.current_time()
        while next_step <= now:
            seq += 1
            price = round(price * (1 + rng.gauss(0.0, 0.0002)), 2)
            tick = {"type": "tick", "ticker": symbol, "price": price, "ts": int(time.time() * 1000), "seq": seq}
            emit(orjson.dumps(tick).decode())
            next_step += interval
        if woke is not None:
            woke()


async def serve_other_scopes(scope: dict[str, Any], receive: Any, send: Any) -> bool:
    """Answer the lifespan, and plain HTTP with 404; False for a WebSocket, which the caller serves."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return True
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"websocket only"})
        return True
    return False


async def serve_and_announce(nursery: trio.Nursery, app: Any, port: int) -> None:
    """Serve `app` with Hypercorn's trio worker on 127.0.0.1:`port` in `nursery`; log `event=serving urls=...`."""
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    binds = await nursery.start(partial(serve, app, config))
    print(f"event=serving urls={','.join(binds)}", flush=True)
