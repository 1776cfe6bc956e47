"""Live feeds over in-memory upstreams on the autojump clock: stale watchdog, stall restart, pacing, 429."""

from __future__ import annotations

import httpx
import orjson
import trio
from pydantic import SecretStr

from tests.fakes.memory_upstream import MemoryServerSide, MemoryUpstream
from tests.fakes.upstream_messages import acknowledge_subscriptions, mini_ticker, quote_app, trade
from tests.support.sources import POLICY, MaxJitter, run_for
from trio_ticker.model import Ingest, PriceUpdate, SourceStatus, StaleChange
from trio_ticker.sources.binance_feed import BinanceFeed
from trio_ticker.sources.finnhub_feed import FinnhubFeed
from trio_ticker.sources.finnhub_quotes import QuoteClient, finnhub_limiter
from trio_ticker.sources.ratelimit import SlidingWindowLimiter
from trio_ticker.sources.supervise import Supervisor


def events(received: list[tuple[float, Ingest]]) -> list[tuple[float, str]]:
    """A readable timeline: ticks, stale changes and source states."""
    out: list[tuple[float, str]] = []
    for at, item in received:
        if isinstance(item, PriceUpdate):
            out.append((at, f"tick {item.symbol} {item.price}"))
        elif isinstance(item, StaleChange):
            out.append((at, f"{'stale' if item.stale else 'fresh'} {item.symbol}"))
        elif isinstance(item, SourceStatus):
            out.append((at, f"{item.state} {item.reconnects}"))
    return out


def binance(upstream: MemoryUpstream, symbols: tuple[str, ...] = ("BTCUSDT",)) -> BinanceFeed:
    return BinanceFeed(
        symbols, base_url="wss://binance.test", open_socket=upstream.open_socket, max_connection_age=3600
    )


async def test_silent_stall_marks_stale_then_reconnects_and_recovers(autojump_clock: trio.abc.Clock) -> None:
    async def stalls(server: MemoryServerSide) -> None:
        await acknowledge_subscriptions(server)
        await server.send(mini_ticker("BTCUSDT", "100.50", "100.00"))
        await trio.sleep(1)
        await server.send(trade("BTCUSDT", "101.25"))
        await trio.sleep_forever()  # pings would still be answered: the socket is open

    async def healthy(server: MemoryServerSide) -> None:
        await acknowledge_subscriptions(server)
        while True:
            await server.send(mini_ticker("BTCUSDT", "102.00", "100.00"))
            await trio.sleep(1)

    upstream = MemoryUpstream(stalls, healthy)
    feed = binance(upstream)
    received = await run_for(14, Supervisor(feed, stale_after=10, policy=POLICY, jitter=MaxJitter()))
    assert upstream.urls == ["wss://binance.test/stream", "wss://binance.test/stream"]
    assert upstream.opened_at == [0, 12]  # stale at 11, 1 s backoff
    timeline = events(received)[:9]
    # Within one instant the reader's first tick and the supervisor's "live" may come in either order.
    assert sorted(timeline) == sorted(
        [
            (0, "connecting 0"),
            (0, "tick BTCUSDT 100.5"),
            (0, "live 0"),
            (1, "tick BTCUSDT 101.25"),
            (11, "stale BTCUSDT"),
            (11, "reconnecting 1"),
            (12, "fresh BTCUSDT"),
            (12, "tick BTCUSDT 102.0"),
            (12, "live 1"),
        ]
    )
    assert timeline == sorted(timeline, key=lambda event: event[0])
    assert timeline.index((12, "fresh BTCUSDT")) < timeline.index((12, "tick BTCUSDT 102.0"))
    statuses = [item for _, item in received if isinstance(item, SourceStatus)]
    assert statuses[2].detail == "SourceStalled: no data for 10s"


async def test_garbage_frames_are_counted_and_skipped(autojump_clock: trio.abc.Clock) -> None:
    async def noisy(server: MemoryServerSide) -> None:
        await acknowledge_subscriptions(server)
        for frame in (b"\x00garbage", mini_ticker("BTCUSDT", "5", "4"), "{]", trade("BTCUSDT", "6")):
            await server.send(frame)
        await trio.sleep_forever()

    supervisor = Supervisor(binance(MemoryUpstream(noisy)), stale_after=10, policy=POLICY, jitter=MaxJitter())
    received = await run_for(5, supervisor)
    assert supervisor.statistics().rejected == {"malformed": 2}
    assert [text for _, text in events(received) if text.startswith("tick")] == ["tick BTCUSDT 5.0", "tick BTCUSDT 6.0"]


async def test_error_reply_to_a_configured_symbols_subscribe_fails_the_attempt(autojump_clock: trio.abc.Clock) -> None:
    async def refuses(server: MemoryServerSide) -> None:
        request = orjson.loads(await server.receive())
        await server.send(orjson.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": request["id"]}))
        await trio.sleep_forever()

    feed = binance(MemoryUpstream(refuses))
    received = await run_for(2, Supervisor(feed, stale_after=None, policy=POLICY, jitter=MaxJitter()))
    details = [item.detail for _, item in received if isinstance(item, SourceStatus) and item.detail]
    assert details[0] == "BinanceRequestError: SUBSCRIBE BTCUSDT failed: 2 Invalid request"
    assert feed.error_replies == 2  # one per attempt, at 0 and 1


async def test_server_shutdown_after_a_healthy_period_reconnects_at_once(autojump_clock: trio.abc.Clock) -> None:
    async def shuts_down(server: MemoryServerSide) -> None:
        await acknowledge_subscriptions(server)
        for _ in range(100):
            await server.send(mini_ticker("BTCUSDT", "5", "4"))
            await trio.sleep(1)
        await server.send('{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}')
        await trio.sleep_forever()

    upstream = MemoryUpstream(shuts_down)
    await run_for(150, Supervisor(binance(upstream), stale_after=10, policy=POLICY, jitter=MaxJitter()))
    assert upstream.opened_at == [0, 100]


async def test_connections_rotate_before_binance_cuts_them_at_24h(autojump_clock: trio.abc.Clock) -> None:
    async def steady(server: MemoryServerSide) -> None:
        await acknowledge_subscriptions(server)
        while True:
            await server.send(mini_ticker("BTCUSDT", "5", "4"))
            await trio.sleep(60)

    upstream = MemoryUpstream(steady)
    feed = BinanceFeed(
        ("BTCUSDT",), base_url="wss://b.test", open_socket=upstream.open_socket, max_connection_age=23 * 3600
    )
    await run_for(47 * 3600, Supervisor(feed, stale_after=120, policy=POLICY, jitter=MaxJitter()))
    assert upstream.opened_at == [0, 23 * 3600, 46 * 3600]


async def test_subscriptions_are_batched_paced_and_split_past_1024_streams(autojump_clock: trio.abc.Clock) -> None:
    async def acknowledges_all(server: MemoryServerSide) -> None:
        while True:
            request = orjson.loads(await server.receive())
            await server.send(orjson.dumps({"result": None, "id": request["id"]}))

    upstream = MemoryUpstream(acknowledges_all)
    symbols = tuple(f"SYM{i}USDT" for i in range(600))
    await run_for(3, Supervisor(binance(upstream, symbols), stale_after=None, policy=POLICY, jitter=MaxJitter()))
    first, second = upstream.servers
    sent = [(at, orjson.loads(frame)) for at, frame in first.received]
    assert [(at, request["id"], len(request["params"])) for at, request in sent] == [
        (0, 1, 200),
        (0, 2, 200),
        (0, 3, 200),
        (0, 4, 200),
        (1, 5, 200),  # never more than 4 control messages a second (Binance closes past 5)
        (1, 6, 24),
    ]
    assert {request["method"] for _, request in sent} == {"SUBSCRIBE"}
    assert [(at, orjson.loads(frame)["id"]) for at, frame in second.received] == [(1, 7)]
    assert sum(len(orjson.loads(frame)["params"]) for _, frame in second.received) == 176


async def test_limiter_allows_60_a_minute_and_30_a_second(autojump_clock: trio.abc.Clock) -> None:
    limiter = SlidingWindowLimiter((60, 60.0), (30, 1.0))
    granted: list[float] = []
    for _ in range(100):
        await limiter.acquire()
        granted.append(trio.current_time())
    assert granted == [0.0] * 30 + [1.0] * 30 + [60.0] * 30 + [61.0] * 10
    limiter.pause_until(200.0)
    await limiter.acquire()
    assert trio.current_time() == 200.0


async def test_quote_client_honours_retry_after_for_every_caller(autojump_clock: trio.abc.Clock) -> None:
    ok = httpx.Response(200, json={"c": 10.5, "d": 0.5, "dp": 5, "h": 11, "l": 9, "o": 10, "pc": 10, "t": 100})
    seen: list[tuple[float, str]] = []
    transport = quote_app([httpx.Response(429, headers={"Retry-After": "7"}), ok], seen)
    limiter = finnhub_limiter()
    async with httpx.AsyncClient(transport=transport) as client:
        quotes = QuoteClient(client, base_url="https://f.test/api/v1", api_key=SecretStr("k3y"), limiter=limiter)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(quotes.fetch, "AAPL")
            await trio.sleep(1)
            other = await quotes.fetch("MSFT")  # a second caller waits out the same pause
    assert seen == [(0, "k3y"), (7, "k3y"), (7, "k3y")]
    assert other is not None and other.current == 10.5


GOOD_QUOTE = {"c": 189.5, "d": 1, "dp": 0.5, "h": 190, "l": 188, "o": 189, "pc": 188.5, "t": 1_700_000_000}


def finnhub(upstream: MemoryUpstream, answers: list[httpx.Response], seen: list[tuple[float, str]]) -> FinnhubFeed:
    return FinnhubFeed(
        ("AAPL",),
        ws_url="wss://finnhub.test",
        rest_url="https://finnhub.test/api/v1",
        api_key=SecretStr("s3cret"),
        open_socket=upstream.open_socket,
        limiter=finnhub_limiter(),
        http_transport=quote_app(answers, seen),
        retry=POLICY,
        jitter=MaxJitter(),
    )


async def test_quiet_stocks_stay_fresh_while_the_quote_has_nothing_newer(autojump_clock: trio.abc.Clock) -> None:
    async def quiet_market(server: MemoryServerSide) -> None:
        assert orjson.loads(await server.receive()) == {"type": "subscribe", "symbol": "AAPL"}
        while True:
            await trio.sleep(60)
            await server.send('{"type":"ping"}')

    newer = {**GOOD_QUOTE, "c": 190.0, "t": 1_700_000_500}
    seen: list[tuple[float, str]] = []
    answers = [httpx.Response(200, json=GOOD_QUOTE)] * 4 + [httpx.Response(200, json=newer)]
    upstream = MemoryUpstream(quiet_market)
    feed = finnhub(upstream, answers, seen)
    received = await run_for(500, Supervisor(feed, stale_after=120, policy=POLICY, jitter=MaxJitter()))
    assert upstream.urls[0] == "wss://finnhub.test?token=s3cret"
    # Snapshot at 0; quiet checks at 120, 240, 360 find nothing newer; the one at 480 finds a trade
    # the socket never delivered: stale, and the silent socket is replaced (1 s backoff) and re-snapshotted.
    assert upstream.opened_at == [0, 481]
    assert [at for at, _ in seen] == [0, 120, 240, 360, 480, 481]
    assert events(received) == [
        (0, "connecting 0"),
        (0, "tick AAPL 189.5"),
        (0, "live 0"),
        (480, "stale AAPL"),
        (480, "reconnecting 1"),
        (481, "fresh AAPL"),
        (481, "tick AAPL 190.0"),
        (481, "live 1"),
        (500, "stopped 0"),
    ]


async def no_trades(server: MemoryServerSide) -> None:
    while True:
        await server.receive()  # subscriptions


async def test_a_long_429_shows_rate_limited_at_once_and_live_after_the_pause(autojump_clock: trio.abc.Clock) -> None:
    seen: list[tuple[float, str]] = []
    answers = [httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200, json=GOOD_QUOTE)]
    started_at: list[float] = []
    supervisor = Supervisor(finnhub(MemoryUpstream(no_trades), answers, seen), stale_after=None, policy=POLICY)
    received = await run_for(4000, supervisor, started_at=started_at)
    assert started_at == [0]  # the service (and so the server) does not wait out the hour
    assert [at for at, _ in seen] == [0, 3600]
    assert events(received) == [
        (0, "connecting 0"),
        (0, "rate_limited 0"),
        (3600, "connecting 0"),
        (3600, "tick AAPL 189.5"),
        (3600, "live 0"),
        (4000, "stopped 0"),
    ]
    detail = next(
        item.detail for _, item in received if isinstance(item, SourceStatus) and item.state == "rate_limited"
    )
    assert detail == "HTTP 429 from the quote API: waiting 3600s (Retry-After)"


async def test_an_unusable_quote_is_degraded_and_asked_again_on_the_same_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def trades_for_others_too(server: MemoryServerSide) -> None:
        await server.receive()
        data = [{"p": 190.0, "s": "TSLA", "t": 1}, {"p": 1e308, "s": "AAPL", "t": 1}]
        await server.send(orjson.dumps({"type": "trade", "data": data}))
        await no_trades(server)

    seen: list[tuple[float, str]] = []
    bad = httpx.Response(200, json={**GOOD_QUOTE, "c": "189.5"})
    upstream = MemoryUpstream(trades_for_others_too)
    supervisor = Supervisor(
        finnhub(upstream, [bad, bad, httpx.Response(200, json=GOOD_QUOTE)], seen),
        stale_after=None,
        policy=POLICY,
        jitter=MaxJitter(),
    )
    received = await run_for(10, supervisor)
    assert [at for at, _ in seen] == [0, 1, 3]  # full-jitter backoff at its ceiling: 1 s, then 2 s
    assert upstream.opened_at == [0]
    shown = [(at, item.state, item.detail) for at, item in received if isinstance(item, SourceStatus)]
    assert shown[:3] == [
        (0, "connecting", ""),
        (0, "degraded", "no usable price for AAPL (quote for AAPL: quote price 'c' is not a JSON number)"),
        (3, "live", ""),
    ]
    assert (3, "tick AAPL 189.5") in events(received)
    assert supervisor.statistics().rejected == {"invalid_price": 2, "unknown_symbol": 1, "price_out_of_range": 1}
