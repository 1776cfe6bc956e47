"""A fake Binance spot stream server (trio-websocket, localhost) speaking the combined-stream format.

Scriptable per test through `plan`: one `ConnectionPlan` per connection (the last repeats): stream
normally, drop after N events, stall silently (pings still answered), send garbage or
`serverShutdown`; `extra_frames` go out once, before the third (or a later) round of events. It
honours live SUBSCRIBE/UNSUBSCRIBE, refuses (error reply, nothing subscribed) a request naming a symbol
not in `listed` or taking a connection past 1024 streams, records each connection's live streams, its
peak streams and its peak messages per second, and closes with 1008 when a client sends more than 5 a
second. `NOT_DECIMAL_TEXT` and `OUT_OF_RANGE` are price strings a misbehaving upstream might send.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

FULLWIDTH_123 = "\uff11\uff12\uff13"  # `Decimal` reads it as 123
NOT_DECIMAL_TEXT = ["1e400", "1e-400", "1e308", FULLWIDTH_123, "5_0", " 7 ", "7\n", "-3", "+3", "NaN", "Infinity"]
NOT_DECIMAL_TEXT += ["1E+2", ".5", "5.", "0x10", "", "1" * 21]
"""Price strings `Decimal` accepts (or a float would) that are not how Binance writes a price."""
OUT_OF_RANGE = ["0", "0.00000000", "0.000000009", "1000000000000", "99999999999999999999.5"]
"""Plain decimals outside the accepted price range [1e-8, 1e12)."""


@dataclass
class ConnectionPlan:
    events_before: int | None = None  # stop after this many events (None: never)
    then: str = "stall"  # after `events_before`: "stall", "drop", "shutdown"
    garbage_every: int = 0  # a garbage frame after every N events


@dataclass
class FakeBinance:
    plans: list[ConnectionPlan] = field(default_factory=lambda: [ConnectionPlan()])
    interval: float = 0.05
    prices: dict[str, str] = field(default_factory=lambda: {"BTCUSDT": "96500.00", "ETHUSDT": "3420.00"})
    extra_frames: list[str] = field(default_factory=list)  # sent once in all, by the first connection to get there
    volume: str = "1234.56780000"  # every symbol's 24 h volume in its miniTicker
    connections: int = 0
    subscriptions: list[list[str]] = field(default_factory=list)
    listed: set[str] | None = None  # the symbols it lists (None: any)
    live_streams: list[dict[str, None]] = field(default_factory=list)  # per connection, while it is open
    peak_streams: int = 0  # the most streams any one connection had
    peak_rate: int = 0  # the most messages any one connection sent within one second
    refused: list[str] = field(default_factory=list)  # symbols of refused SUBSCRIBE requests
    closed_1008: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            listening = await nursery.start(serve_websocket, self._handle, "127.0.0.1", 0, None)
            self.port = listening.port
            task_status.started()

    async def _handle(self, request: WebSocketRequest) -> None:
        if request.path != "/stream":
            await request.reject(404)
            return
        plan = self.plans[min(self.connections, len(self.plans) - 1)]
        self.connections += 1
        ws = await request.accept()
        streams: dict[str, None] = {}
        self.live_streams.append(streams)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_requests, ws, streams, nursery.cancel_scope)
                await self._stream(ws, streams, plan)
                nursery.cancel_scope.cancel()
        except* ConnectionClosed:
            pass
        finally:
            streams.clear()  # a closed connection streams nothing

    def subscribed_symbols(self) -> set[str]:
        """The symbols some open connection streams now."""
        return {stream.partition("@")[0].upper() for streams in self.live_streams for stream in streams}

    async def _read_requests(self, ws: WebSocketConnection, streams: dict[str, None], scope: trio.CancelScope) -> None:
        sent_at: list[float] = []
        while True:
            message = orjson.loads(await ws.get_message())
            now = trio.current_time()
            sent_at = [at for at in sent_at if at > now - 1.0] + [now]
            self.peak_rate = max(self.peak_rate, len(sent_at))
            if len(sent_at) > 5:
                self.closed_1008 += 1
                await ws.aclose(1008, "Too many requests")
                scope.cancel()
                return
            method, params = message.get("method"), message.get("params", [])
            if method == "SUBSCRIBE" and (error := self._refusal(streams, params)):
                self.refused.extend(sorted({stream.partition("@")[0].upper() for stream in params}))
                await ws.send_message(orjson.dumps({"error": error, "id": message.get("id")}).decode())
            elif method == "SUBSCRIBE":
                streams.update(dict.fromkeys(params))
                self.peak_streams = max(self.peak_streams, len(streams))
                self.subscriptions.append(list(params))
                await ws.send_message(orjson.dumps({"result": None, "id": message["id"]}).decode())
            elif method == "UNSUBSCRIBE":
                for stream in params:
                    streams.pop(stream, None)
                await ws.send_message(orjson.dumps({"result": None, "id": message["id"]}).decode())
            else:
                error = {"code": 2, "msg": "Invalid request: unknown method"}
                await ws.send_message(orjson.dumps({"error": error, "id": message.get("id")}).decode())

    def _refusal(self, streams: dict[str, None], params: list[str]) -> dict[str, object] | None:
        if self.listed is not None and any(stream.partition("@")[0].upper() not in self.listed for stream in params):
            return {"code": 2, "msg": "Invalid request: unknown symbol"}
        if len(streams.keys() | set(params)) > 1024:
            return {"code": 2, "msg": "Invalid request: too many streams"}
        return None

    async def _stream(self, ws: WebSocketConnection, streams: dict[str, None], plan: ConnectionPlan) -> None:
        sent = 0
        for step in itertools.count():
            await trio.sleep(self.interval)
            if step >= 2 and streams and self.extra_frames:
                extra, self.extra_frames = self.extra_frames, []
                for frame in extra:
                    await ws.send_message(frame)
            for stream in list(streams):
                if plan.events_before is not None and sent >= plan.events_before:
                    await self._finish(ws, plan.then)
                    return
                await ws.send_message(self._event(stream, step))
                sent += 1
                if plan.garbage_every and sent % plan.garbage_every == 0:
                    await ws.send_message("\x00not json")

    async def _finish(self, ws: WebSocketConnection, then: str) -> None:
        if then == "drop":
            await ws.aclose(1011, "dropped")  # the feed breaks mid-stream
        elif then == "shutdown":
            await ws.send_message('{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}')
            await trio.sleep_forever()
        else:
            await trio.sleep_forever()  # stall: socket open, pings answered by trio-websocket

    def _event(self, stream: str, step: int) -> str:
        name, _, kind = stream.partition("@")
        symbol = name.upper()
        base = self.prices.get(symbol, "100.00")
        now_ms = int(time.time() * 1000)  # epoch ms, as Binance stamps its events
        whole, _, cents = base.partition(".")
        if kind == "miniTicker":  # a 24 h range around every trade price this fake sends
            data = {"e": "24hrMiniTicker", "E": now_ms, "s": symbol, "c": base, "o": base}
            # Below every trade price it sends; half the price where 20 below would not be a price.
            low = f"{int(whole) - 20}.{cents or '00'}" if int(whole) > 20 else format(Decimal(base) / 2, "f")
            data |= {"h": f"{int(whole) + 20}.{cents or '00'}", "l": low}
            data |= {"v": self.volume, "q": "1.0"}
        else:
            price = f"{int(whole) + step % 10}.{cents or '00'}"
            data = {"e": "trade", "E": now_ms, "s": symbol, "t": step, "p": price, "q": "0.1", "T": now_ms}
        return orjson.dumps({"stream": stream, "data": data}).decode()
