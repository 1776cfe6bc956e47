"""The fake Binance and Finnhub servers (tests/fakes/) on a trio thread, for browser tests written in sync code.

Playwright's sync API owns the test's thread, so the fakes run under `trio.run` in another; `call` runs a
function in the fakes' thread (to change their script mid-test), and `server_env` points a live server at them.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from types import TracebackType

import trio

from tests.fakes.binance_server import FakeBinance
from tests.fakes.finnhub_server import FakeFinnhub
from tests.test_live_end_to_end import upstreams

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class FakeUpstreamsThread:
    def __init__(self, binance: FakeBinance, finnhub: FakeFinnhub) -> None:
        self.binance = binance
        self.finnhub = finnhub
        self.rest_url = ""
        self._ready: queue.Queue[tuple[trio.lowlevel.TrioToken, str] | None] = queue.Queue(maxsize=1)  # None: failed
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fake-upstreams", daemon=True)
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None

    def __enter__(self) -> FakeUpstreamsThread:
        self._thread.start()
        try:
            ready = self._ready.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise RuntimeError(f"the fake upstreams did not start within {START_TIMEOUT} s") from None
        if ready is None:
            raise RuntimeError("the fake upstreams failed to start") from self._failure
        self._token, self.rest_url = ready
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.call(self._set_stop)
        self._thread.join(STOP_TIMEOUT)
        assert not self._thread.is_alive(), "the fake upstreams did not stop"

    def call(self, function: Callable[[], object]) -> None:
        """Run `function` in the fakes' trio thread and wait for it (their state belongs to that thread)."""
        trio.from_thread.run_sync(function, trio_token=self._token)

    def server_env(self) -> dict[str, str]:
        """Settings for `python -m trio_ticker` in live mode against these fakes (docs/configuration.md)."""
        return {
            "DEMO_MODE": "false",
            "TICKER_FINNHUB_API_KEY": self.finnhub.api_key,
            "TICKER_BINANCE_WS_URL": self.binance.url,
            "TICKER_FINNHUB_WS_URL": self.finnhub.ws_url,
            "TICKER_FINNHUB_REST_URL": self.rest_url,
            "TICKER_RECONNECT_INITIAL_DELAY": "0.2",
            "TICKER_RECONNECT_MAX_DELAY": "0.5",
        }

    def _set_stop(self) -> None:
        assert self._stop is not None
        self._stop.set()

    def _run(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as error:  # reported to the test thread if it still waits for the fakes to start
            self._failure = error
            with contextlib.suppress(queue.Full):
                self._ready.put_nowait(None)
            raise

    async def _serve(self) -> None:
        self._stop = trio.Event()
        async with upstreams(self.binance, self.finnhub) as rest_url:
            self._ready.put((trio.lowlevel.current_trio_token(), rest_url))
            await self._stop.wait()
