"""Fan-out under load: each tick is encoded once however many clients subscribe; what the hub drops."""

from __future__ import annotations

import pytest

from tests.support.delivery import Delivery
from tests.support.helpers import trio_ticker_warnings
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


def test_updates_for_an_unknown_symbol_are_counted_and_logged_once() -> None:
    hub = Delivery(("BTCUSDT",), client_buffer=TICKS).hub
    with trio_ticker_warnings() as warnings:
        publish_ticks(hub, "XRPUSDT", 2000)
    assert hub.statistics().unknown_symbol_updates == 2000
    assert [record.getMessage().split(" ")[0] for record in warnings] == ["event=unknown_symbol_update"]


@pytest.mark.parametrize(
    ("price", "reference"),
    [(float("inf"), 100.0), (float("nan"), 100.0), (0.0, 100.0), (1e-9, 100.0), (1e12, 100.0), (100.0, 1e-300)],
)
def test_an_unusable_price_never_becomes_a_tick(price: float, reference: float) -> None:
    hub = Delivery(("BTCUSDT",), client_buffer=TICKS).hub
    outbox = hub.connect()
    hub.subscribe(outbox, ("BTCUSDT",))
    with trio_ticker_warnings() as warnings:
        assert hub.publish(PriceUpdate("BTCUSDT", price, reference, 1, Mode.LIVE)) is None
        assert hub.publish(PriceUpdate("BTCUSDT", price, reference, 2, Mode.LIVE)) is None
    assert hub.latest("BTCUSDT") is None and hub.statistics().unusable_prices == 2
    assert len(warnings) == 1
    assert hub.publish(PriceUpdate("BTCUSDT", 96500.0, 96000.0, 3, Mode.LIVE)) is not None


def test_an_update_refused_a_seq_waits_and_is_numbered_with_the_next_ingest_item() -> None:
    reserved = {"BTCUSDT": 0}  # what a persisted numbering has stored: nothing yet for BTCUSDT
    hub = Hub(
        ("BTCUSDT", "AAPL"),
        client_buffer=TICKS,
        reaper=Delivery(("BTCUSDT",), client_buffer=TICKS).reaper,
        may_number=lambda symbol, seq: seq <= reserved.get(symbol, 10),
    )
    outbox = hub.connect()
    hub.subscribe(outbox, ("BTCUSDT",))
    hub.ingest(PriceUpdate("BTCUSDT", 101.0, 100.0, 1_700_000_000_000, Mode.DEMO))
    assert hub.latest("BTCUSDT") is None and hub.statistics().unreserved_seqs == 1
    hub.ingest(PriceUpdate("BTCUSDT", 102.0, 100.0, 1_700_000_000_001, Mode.DEMO))  # still not stored: the latest waits
    reserved["BTCUSDT"] = 10  # the block is stored
    hub.ingest(PriceUpdate("AAPL", 190.0, 189.0, 1_700_000_000_002, Mode.DEMO))  # any next item
    tick = hub.latest("BTCUSDT")
    assert tick is not None and (tick.seq, tick.price) == (1, 102.0)
