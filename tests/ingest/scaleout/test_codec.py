"""The scale-out codec: values to Redis fields and back, and precise errors for foreign entries."""

from __future__ import annotations

import pytest

from trio_ticker.ingest.scaleout.codec import (
    decode_entry,
    decode_listing,
    decode_snapshot,
    encode_item,
    encode_listing,
)
from trio_ticker.model import (
    DayStats,
    Listing,
    Mode,
    PriceUpdate,
    SourceState,
    SourceStatus,
    StaleChange,
    SymbolRejected,
    tick_from_update,
)
from trio_ticker.tick_codec import EntryError

UPDATE = PriceUpdate("ETHUSDT", 3012.456, 3000.0, ts=1_700_000_000_123, mode=Mode.LIVE, decimals=2, source="binance")


def entry(item: PriceUpdate | StaleChange | SourceStatus, **extra: str) -> dict[str, str]:
    kind, key, body = encode_item(item)
    return {"kind": kind, "key": key, "body": body.decode(), **extra}


def test_a_price_comes_back_as_the_tick_the_hub_would_have_made_with_redis_seq() -> None:
    assert decode_entry(entry(UPDATE, seq="42")) == tick_from_update(UPDATE, seq=42)


def test_the_precision_and_24h_statistics_cross_redis() -> None:
    day = DayStats(open=3000.0, high=3050.25, low=None, volume=123456.78901234)
    update = PriceUpdate("ETHUSDT", 3012.456, 3000.0, ts=1, mode=Mode.LIVE, decimals=5, source="binance", day_stats=day)
    tick = decode_entry(entry(update, seq="3"))
    assert tick == tick_from_update(update, seq=3)
    assert (tick.precision, tick.day_stats) == (5, day)


def test_ticks_written_before_the_24h_statistics_still_decode() -> None:
    for body in ('[3012.46,12.46,0.4153,1,"live","binance"]', '[3012.46,12.46,0.4153,1,"live","binance","0.5"]'):
        tick = decode_entry({"kind": "tick", "key": "ETHUSDT", "body": body, "seq": "1"})
        assert tick.price == 3012.46 and tick.day_stats is None


@pytest.mark.parametrize(
    "stats",
    [
        "[1e15,null,null,null]",
        "[0,null,null,null]",
        '[null,"5",null,null]',
        "[null,null,null,-1]",
        "[null,null,null,1e21]",
    ],
)
def test_unusable_24h_statistics_are_refused(stats: str) -> None:
    body = f'[3012.46,12.46,0.4153,1,"live","binance",null,2,{stats[1:-1]}]'
    with pytest.raises(EntryError, match="tick body for ETHUSDT is invalid"):
        decode_entry({"kind": "tick", "key": "ETHUSDT", "body": body, "seq": "1"})


def test_stale_changes_and_source_states_round_trip() -> None:
    stale = StaleChange("ETHUSDT", True, 5)
    status = SourceStatus("binance", SourceState.RECONNECTING, 9, detail="reset", reconnects=3, last_message_ts=8)
    assert decode_entry(entry(stale)) == stale
    assert decode_entry(entry(status)) == status


def test_the_snapshot_applies_stale_flags_to_the_latest_ticks() -> None:
    body = entry(UPDATE)["body"]
    snapshot = decode_snapshot(
        "5-0",
        {"ETHUSDT": f"7:{body}"},
        {"ETHUSDT": "[true,6]"},
        {"binance": entry(SourceStatus("binance", SourceState.LIVE, 1))["body"]},
        now_ms=9,
    )
    assert (snapshot.cursor, snapshot.now_ms) == ("5-0", 9)
    assert [(tick.seq, tick.price, tick.stale) for tick in snapshot.ticks] == [(7, 3012.46, True)]
    assert snapshot.statuses == (SourceStatus("binance", SourceState.LIVE, 1),)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"kind": "tick", "key": "ETHUSDT", "body": "[1]", "seq": "1"},
            "tick body for ETHUSDT must be a JSON array of 6",
        ),
        ({"kind": "tick", "key": "ETHUSDT", "body": "[1,2,3,4,5,6]"}, "entry has no 'seq' field"),
        ({"kind": "tick", "key": "ETHUSDT", "body": "[1,2,3,4,5,6]", "seq": "x"}, "seq must be an integer, got 'x'"),
        (
            {"kind": "tick", "key": "ETHUSDT", "body": '[1,2,3,4,"bogus",6]', "seq": "1"},
            "tick body for ETHUSDT is invalid",
        ),
        ({"kind": "stale", "key": "ETHUSDT", "body": "{"}, "stale body is not JSON"),
        ({"kind": "stale", "key": "ETHUSDT", "body": '["yes",1]'}, "must be [bool, int]"),
        (
            {"kind": "status", "key": "demo", "body": '{"source":"demo","state":"asleep","ts":1}'},
            "status body is invalid",
        ),
        ({"kind": "quote", "key": "ETHUSDT", "body": "[]"}, "unknown entry kind 'quote'"),
        ({"key": "ETHUSDT", "body": "[]"}, "entry has no 'kind' field"),
    ],
)
def test_foreign_entries_raise_a_precise_error(fields: dict[str, str], message: str) -> None:
    with pytest.raises(EntryError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode_entry(fields)


def test_a_latest_value_without_seq_prefix_is_refused() -> None:
    with pytest.raises(EntryError, match="latest value for ETHUSDT has no 'seq:' prefix"):
        decode_snapshot("0-0", {"ETHUSDT": "[1,2,3,4,5,6]"}, {}, {}, now_ms=0)


def test_a_refused_symbol_and_a_workers_listing_round_trip() -> None:
    kind, key, body = encode_item(SymbolRejected("GONEUSDT", "binance", "2 Invalid request"))
    assert decode_entry({"kind": kind, "key": key, "body": body.decode()}) == SymbolRejected(
        "GONEUSDT", "binance", "2 Invalid request"
    )
    listing = Listing("DOGEUSDT", "binance", "DOGE/USDT", 5, "DOGE", "USDT")
    assert decode_listing(encode_listing(listing)) == listing


@pytest.mark.parametrize("body", ['{"symbol":"X"}', "[1]", '{"symbol":"X","source":"b","name":"n","precision":"5"}'])
def test_a_foreign_listing_is_refused(body: str) -> None:
    with pytest.raises(EntryError):
        decode_listing(body)
