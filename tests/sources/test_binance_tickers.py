"""The REST 24 h ticker: the recorded wire format decoded without sockets, and the client's weight rules
on the autojump clock against the fake Binance REST API in memory."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import trio

from tests.fakes.binance_rest import FakeBinanceRest
from trio_ticker.sources.binance import BinanceDecodeError, Ticker
from trio_ticker.sources.binance_tickers import TickerClient, decode_ticker_24hr

RECORDED = (
    b'{"symbol":"DOGEUSDT","priceChange":"-0.00312000","priceChangePercent":"-2.451","weightedAvgPrice":"0.12620000",'
    b'"prevClosePrice":"0.12730000","lastPrice":"0.12418000","lastQty":"512.00000000","bidPrice":"0.12417000",'
    b'"bidQty":"100.0","askPrice":"0.12418000","askQty":"900.0","openPrice":"0.12730000","highPrice":"0.12900000",'
    b'"lowPrice":"0.12300000","volume":"1234567.00000000","quoteVolume":"155800.1","openTime":1764547200000,'
    b'"closeTime":1764633599999,"firstId":1,"lastId":2,"count":2}'
)


def test_a_recorded_24h_ticker_decodes_to_the_streams_ticker() -> None:
    assert decode_ticker_24hr(RECORDED) == Ticker("DOGEUSDT", Decimal("0.12418"), Decimal("0.1273"), 1764633599999)


@pytest.mark.parametrize(
    "body", [b"nope", b"[]", b'{"symbol":"X","lastPrice":1.5,"openPrice":"1","closeTime":1}', b'{"symbol":"X"}']
)
def test_a_bad_24h_ticker_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(BinanceDecodeError):
        decode_ticker_24hr(body)


async def test_a_429_pauses_the_next_call_for_retry_after(autojump_clock: trio.abc.Clock) -> None:
    rest = FakeBinanceRest(symbols=("DOGEUSDT",), script=[(429, {"Retry-After": "7"}, {"code": -1003, "msg": "x"})])
    async with httpx.AsyncClient(transport=rest.transport()) as client:
        tickers = TickerClient(client, base_url="https://b.test", weight_per_minute=1200)
        assert await tickers.fetch("DOGEUSDT") is None
        assert await tickers.fetch("DOGEUSDT") is not None
    assert [at for at, _ in rest.requests] == [0.0, 7.0]


async def test_calls_stay_within_the_weight_budget(autojump_clock: trio.abc.Clock) -> None:
    rest = FakeBinanceRest(symbols=("DOGEUSDT",))
    async with httpx.AsyncClient(transport=rest.transport()) as client:
        tickers = TickerClient(client, base_url="https://b.test", weight_per_minute=10)  # 5 calls a minute
        for _ in range(6):
            await tickers.fetch("DOGEUSDT")
    assert [at for at, _ in rest.requests] == [0.0] * 5 + [60.0]
