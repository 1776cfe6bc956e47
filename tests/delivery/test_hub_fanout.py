"""Fan-out under load: each tick is encoded once however many clients subscribe."""

from __future__ import annotations

import pytest

from tests.support.delivery import Delivery
from trio_ticker.delivery.hub import Hub
from trio_ticker.model import Mode, PriceUpdate

TICKS = 20


def publish_ticks(hub: Hub, symbol: str, count: int) -> None:
    for price in range(count):
        hub.publish(PriceUpdate(symbol, 100.0 + price, 100.0, 1_700_000_000_000 + price, Mode.DEMO))


@pytest.mark.parametrize("subscribers", [0, 1, 10, 1000])
def test_each_tick_is_encoded_once_regardless_of_subscriber_count(subscribers: int) -> None:
    delivery = Delivery(("BTCUSDT", "AAPL"), client_buffer=TICKS)
    hub = delivery.hub
    outboxes = [hub.connect() for _ in range(subscribers)]
    for outbox in outboxes:
        hub.subscribe(outbox, ("BTCUSDT",))
    publish_ticks(hub, "BTCUSDT", TICKS)
    statistics = hub.statistics()
    assert statistics.ticks_in == TICKS
    assert statistics.encodes == TICKS
    assert statistics.messages_out == TICKS * subscribers
    assert statistics.conflated == 0
    queued: list[list[str]] = []
    for outbox in outboxes:
        taken: list[tuple[str | None, str]] = []
        outbox.take_nowait(taken)
        queued.append([frame for _, frame in taken])
    assert all(len(frames) == TICKS for frames in queued)
    for frames in queued[1:]:
        assert all(frame is first for frame, first in zip(frames, queued[0], strict=True))
