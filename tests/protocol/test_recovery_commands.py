"""`since` and `epoch` on a subscribe, sans I/O: what is accepted, and the typed error for each bogus form."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from trio_ticker.model import Mode, Tick
from trio_ticker.protocol.commands import Command, Subscribe, decode_command
from trio_ticker.protocol.errors import ErrorCode, ProtocolError
from trio_ticker.protocol.frames import encode_subscribed, encode_tick, encode_welcome, snapshot_frame, tick_fields


def decode(message: dict[str, Any]) -> Command:
    return decode_command(orjson.dumps({"action": "subscribe", "symbols": ["AAPL", "MSFT"], **message}))


def test_since_and_epoch_are_read_per_symbol() -> None:
    command = decode({"since": {"aapl": 1042, "MSFT": 0}, "epoch": "a1b2", "id": 4})
    assert command == Subscribe(("AAPL", "MSFT"), 4, None, {"AAPL": 1042, "MSFT": 0}, "a1b2")


def test_a_subscribe_without_them_is_as_before() -> None:
    assert decode({}) == Subscribe(("AAPL", "MSFT"))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"since": {"AAPL": -1}, "epoch": "e"}, "since"),  # negative
        ({"since": {"AAPL": 2**53}, "epoch": "e"}, "since"),  # beyond what a browser reads exactly
        ({"since": {"AAPL": 1.5}, "epoch": "e"}, "since"),
        ({"since": {"AAPL": "12"}, "epoch": "e"}, "since"),
        ({"since": {"AAPL": True}, "epoch": "e"}, "since"),
        ({"since": {"AAPL": None}, "epoch": "e"}, "since"),
        ({"since": [1042], "epoch": "e"}, "since"),
        ({"since": {}, "epoch": "e"}, "since"),
        ({"since": {"GOOGL": 3}, "epoch": "e"}, "since"),  # a symbol this subscribe does not name
        ({"since": {"AAPL": 1, "MSFT": 2, "GOOGL": 3}, "epoch": "e"}, "since"),  # more entries than symbols
        ({"since": {"AAPL": 1}}, "epoch"),
        ({"epoch": "e"}, "since"),
        ({"since": {"AAPL": 1}, "epoch": 7}, "epoch"),
        ({"since": {"AAPL": 1}, "epoch": ""}, "epoch"),
        ({"since": {"AAPL": 1}, "epoch": "e" * 65}, "epoch"),
    ],
)
def test_a_bogus_since_gets_invalid_since(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode({**fields, "id": 9})
    error = orjson.loads(raised.value.to_frame())
    assert (error["code"], error["field"], error["id"]) == (ErrorCode.INVALID_SINCE, field, 9)


def test_a_badly_spelled_symbol_in_since_is_invalid_symbol() -> None:
    with pytest.raises(ProtocolError) as raised:
        decode({"since": {"AA PL": 1}, "epoch": "e"})
    assert raised.value.code is ErrorCode.INVALID_SYMBOL


def test_welcome_and_snapshot_frames() -> None:
    assert orjson.loads(encode_welcome("e1", "0.1.0", {"recovery_ticks": 1000})) == {
        "type": "welcome",
        "epoch": "e1",
        "version": "0.1.0",
        "limits": {"recovery_ticks": 1000},
    }
    tick = Tick("AAPL", 151.42, 0.38, 0.2516, 1, 7, Mode.DEMO)
    snapshot = orjson.loads(snapshot_frame(encode_tick(tick), "e1", recovered=False))
    assert snapshot == {**tick_fields(tick), "epoch": "e1", "recovered": False}
    ack = orjson.loads(encode_subscribed(("AAPL",), 3, epoch="e1", recovered={"AAPL": True}))
    assert ack == {"type": "subscribed", "symbols": ["AAPL"], "epoch": "e1", "recovered": {"AAPL": True}, "id": 3}
    assert orjson.loads(encode_subscribed(("AAPL",), epoch="e1")) == {
        "type": "subscribed",
        "symbols": ["AAPL"],
    }
