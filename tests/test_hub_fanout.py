"""Fan-out under load: each tick is encoded once however many clients subscribe; what the hub drops."""

from __future__ import annotations

import pytest

from tests.helpers import trio_ticker_warnings
from trio_ticker.hub import Hub
from trio_ticker.model import Mode, PriceUpdate

TICKS = 20


def publish_ticks(hub: Hub, symbol: str, count: int) -> None:
    for price in range(count):
        hub.publish(PriceUpdate(symbol, 100.0 + price, 100.0, 1_700_000_000_000 + price, Mode.DEMO))


@pytest.mark.parametrize("subscribers", [0, 1, 10, 1000])
def test_each_tick_is_encoded_once_regardless_of_subscriber_count(subscribers: int) -> None:
    hub = Hub(("BTCUSDT", "AAPL"), client_buffer=TICKS)
    outboxes = [hub.connect() for _ in range(subscribers)]
    for outbox in outboxes:
        hub.subscribe(outbox, ("BTCUSDT",))
    publish_ticks(hub, "BTCUSDT", TICKS)
    statistics = hub.statistics()
    assert statistics.ticks_in == TICKS
    assert statistics.encodes == TICKS
    assert statistics.messages_out == TICKS * subscribers
    assert statistics.conflated == 0
    queued = [[outbox.receive.receive_nowait()[1] for _ in range(TICKS)] for outbox in outboxes]
    for frames in queued[1:]:
        assert all(frame is first for frame, first in zip(frames, queued[0], strict=True))


def test_updates_for_an_unknown_symbol_are_counted_and_logged_once() -> None:
    hub = Hub(("BTCUSDT",), client_buffer=TICKS)
    with trio_ticker_warnings() as warnings:
        publish_ticks(hub, "XRPUSDT", 2000)
    assert hub.statistics().unknown_symbol_updates == 2000
    assert [record.getMessage().split(" ")[0] for record in warnings] == ["event=unknown_symbol_update"]


@pytest.mark.parametrize(
    ("price", "reference"),
    [(float("inf"), 100.0), (float("nan"), 100.0), (0.0, 100.0), (1e-9, 100.0), (1e12, 100.0), (100.0, 1e-300)],
)
def test_an_unusable_price_never_becomes_a_tick(price: float, reference: float) -> None:
    hub = Hub(("BTCUSDT",), client_buffer=TICKS)
    outbox = hub.connect()
    hub.subscribe(outbox, ("BTCUSDT",))
    with trio_ticker_warnings() as warnings:
        assert hub.publish(PriceUpdate("BTCUSDT", price, reference, 1, Mode.LIVE)) is None
        assert hub.publish(PriceUpdate("BTCUSDT", price, reference, 2, Mode.LIVE)) is None
    assert hub.latest("BTCUSDT") is None and hub.statistics().unusable_prices == 2
    assert len(warnings) == 1
    assert hub.publish(PriceUpdate("BTCUSDT", 96500.0, 96000.0, 3, Mode.LIVE)) is not None
