"""Hypercorn's WebSocket pings are spread: each comes the ping interval +-20 % after the previous one,
so connections opened together do not stay pinged (and pong back) in the same second forever."""

from __future__ import annotations

import itertools
import random
import statistics
from functools import partial

import pytest
import trio

from tests.support.helpers import make_settings
from tests.support.ping_watch import ping_times
from trio_ticker.app import assemble
from trio_ticker.edge.hypercorn_server import hypercorn_config, serve
from trio_ticker.settings import PING_JITTER


def test_each_read_of_the_ping_interval_is_drawn_within_the_jitter() -> None:
    config = hypercorn_config(make_settings(ws_ping_interval=20.0, ws_read_timeout=40.0), random.Random(7))
    intervals = [config.websocket_ping_interval for _ in range(2000)]
    assert all(interval is not None and 16.0 <= interval <= 24.0 for interval in intervals)
    values = [interval for interval in intervals if interval is not None]
    assert min(values) < 16.5 and max(values) > 23.5  # the whole range is used...
    assert statistics.mean(values) == pytest.approx(20.0, abs=0.3)  # ...around the configured interval
    assert PING_JITTER == 0.2


def test_no_ping_interval_stays_no_pings() -> None:
    config = hypercorn_config(make_settings(ws_ping_interval=None, ws_read_timeout=None))
    assert config.websocket_ping_interval is None  # Hypercorn then starts no ping loop


async def test_hypercorn_draws_a_fresh_interval_before_every_ping() -> None:
    # Real Hypercorn, real sockets: without the per-read draw every gap would be the same 0.2 s.
    interval = 0.2
    settings = make_settings(ws_ping_interval=interval, ws_read_timeout=None, host="127.0.0.1", port=0)
    assembly = assemble(settings)
    app = assembly.app
    config = hypercorn_config(settings, random.Random(3))
    shutdown = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, app, settings, config, shutdown_trigger=shutdown.wait))
            times = await ping_times(binds[0].removeprefix("http://"), duration=3.0)
            shutdown.set()
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) >= 10
    slack = 0.05  # scheduling on a busy machine delays a ping; it never brings one forward
    assert all(interval * (1 - PING_JITTER) - 0.005 <= gap <= interval * (1 + PING_JITTER) + slack for gap in gaps)
    assert max(gaps) - min(gaps) > 0.04  # spread, not one fixed interval
