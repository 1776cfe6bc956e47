"""The client protocol decoder and encoders, without sockets."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from trio_ticker.model import DayStats, Mode, SourceState, SourceStatus, Tick
from trio_ticker.protocol.commands import Command, ListSymbols, Ping, Subscribe, Unsubscribe, decode_command
from trio_ticker.protocol.errors import ErrorCode, ProtocolError, unknown_symbols_error
from trio_ticker.protocol.frames import (
    encode_pong,
    encode_source_status,
    encode_subscribed,
    encode_symbol_status,
    encode_symbols,
    encode_tick,
    encode_unsubscribed,
    snapshot_fields,
)


def test_prototype_subscribe_form_is_accepted() -> None:
    assert decode_command('{"action":"subscribe","symbol":"AAPL"}') == Subscribe(("AAPL",))


def test_list_form_normalises_and_deduplicates() -> None:
    command = decode_command('{"action":"subscribe","symbols":["aapl"," MSFT ","AAPL"],"id":"r1"}')
    assert command == Subscribe(("AAPL", "MSFT"), "r1")


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('{"action":"unsubscribe","symbol":"AAPL"}', Unsubscribe(("AAPL",))),
        ('{"action":"unsubscribe","symbols":["AAPL","BTCUSDT"],"id":3}', Unsubscribe(("AAPL", "BTCUSDT"), 3)),
        ('{"action":"list"}', ListSymbols()),
        ('{"action":"ping","id":9}', Ping(9)),
        (b'{"action":"ping"}', Ping()),
        ('{"action":"ping","extra":"ignored"}', Ping()),
    ],
)
def test_valid_commands(frame: str | bytes, expected: Command) -> None:
    assert decode_command(frame) == expected


@pytest.mark.parametrize(
    ("frame", "code", "field"),
    [
        ("not json", ErrorCode.INVALID_JSON, None),
        ("", ErrorCode.INVALID_JSON, None),
        (b"\xff\xfe", ErrorCode.INVALID_JSON, None),
        ('{"action":"ping"', ErrorCode.INVALID_JSON, None),
        ("[1,2]", ErrorCode.NOT_AN_OBJECT, None),
        ('"subscribe"', ErrorCode.NOT_AN_OBJECT, None),
        ("null", ErrorCode.NOT_AN_OBJECT, None),
        ("{}", ErrorCode.MISSING_FIELD, "action"),
        ('{"action":5}', ErrorCode.INVALID_FIELD, "action"),
        ('{"action":"buy"}', ErrorCode.UNKNOWN_ACTION, None),
        ('{"action":"subscribe"}', ErrorCode.MISSING_FIELD, "symbol"),
        ('{"action":"subscribe","symbol":7}', ErrorCode.INVALID_FIELD, "symbol"),
        ('{"action":"subscribe","symbols":"AAPL"}', ErrorCode.INVALID_FIELD, "symbols"),
        ('{"action":"subscribe","symbols":[]}', ErrorCode.INVALID_FIELD, "symbols"),
        ('{"action":"subscribe","symbols":["AAPL",null]}', ErrorCode.INVALID_FIELD, "symbols"),
        ('{"action":"subscribe","symbol":"AAPL","symbols":["MSFT"]}', ErrorCode.INVALID_FIELD, "symbols"),
        ('{"action":"unsubscribe"}', ErrorCode.MISSING_FIELD, "symbol"),
        ('{"action":"ping","id":true}', ErrorCode.INVALID_FIELD, "id"),
        ('{"action":"ping","id":[1]}', ErrorCode.INVALID_FIELD, "id"),
        ('{"action":"ping","id":"' + "x" * 65 + '"}', ErrorCode.INVALID_FIELD, "id"),
        ('{"action":"ping","id":9007199254740993}', ErrorCode.INVALID_FIELD, "id"),
    ],
)
def test_every_malformed_frame_has_a_typed_error(frame: str | bytes, code: ErrorCode, field: str | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_command(frame)
    assert caught.value.code == code
    reply = orjson.loads(caught.value.to_frame())
    assert reply["type"] == "error"
    assert reply["code"] == code.value
    assert reply["message"]
    assert reply.get("field") == field


@pytest.mark.parametrize(
    "symbol",
    [
        *["", " ", "AA PL", "A" * 33, "<script>", "ÄPPLE", "-AAPL"],
        # Unicode that `strip`/`upper` would map onto a served symbol: U+017F upper-cases to S; EM SPACE, NBSP strip.
        *["btcu\u017fdt", "\u2003AAPL", "AAPL\xa0", "\uff21APL", "AAPL\u0130"],
    ],
)
def test_badly_spelled_symbols_are_rejected_before_lookup(symbol: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_command(orjson.dumps({"action": "subscribe", "symbol": symbol}))
    assert caught.value.code == ErrorCode.INVALID_SYMBOL


def test_errors_echo_the_request_id() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_command('{"action":"subscribe","id":"abc"}')
    assert orjson.loads(caught.value.to_frame())["id"] == "abc"


def test_unknown_symbol_error_names_them() -> None:
    reply = orjson.loads(unknown_symbols_error(["NOPE", "ZZZ"], 4).to_frame())
    assert reply == {
        "type": "error",
        "code": "unknown_symbol",
        "message": "unknown symbols NOPE, ZZZ",
        "symbol": "NOPE",
        "symbols": ["NOPE", "ZZZ"],
        "id": 4,
    }


TICK = Tick(
    symbol="AAPL",
    price=151.42,
    change=0.38,
    change_percent=0.2516,
    ts=1_700_000_000_123,
    seq=12,
    mode=Mode.DEMO,
)


def test_tick_frame_keeps_the_prototype_keys() -> None:
    message = orjson.loads(encode_tick(TICK))
    assert message == {
        "type": "tick",
        "ticker": "AAPL",
        "price": 151.42,
        "change": 0.38,
        "change_percent": 0.2516,
        "mode": "demo",
        "ts": 1_700_000_000_123,
        "seq": 12,
        "stale": False,
        "precision": 2,
        "open": None,  # no 24 h statistics yet: each is null, never absent and never NaN
        "high": None,
        "low": None,
        "volume": None,
    }
    assert encode_tick(TICK).startswith('{"type":"tick","ticker":"AAPL","price":151.42,"change":0.38')


def test_tick_and_snapshot_carry_the_precision_and_24h_statistics() -> None:
    tick = dataclasses.replace(
        TICK, precision=4, day_stats=DayStats(open=150.1, high=152.0, low=149.5, volume=1_234_567.0)
    )
    expected = {"precision": 4, "open": 150.1, "high": 152.0, "low": 149.5, "volume": 1_234_567.0}
    message = orjson.loads(encode_tick(tick))
    snapshot = orjson.loads(orjson.dumps(snapshot_fields(tick)))
    assert {key: message[key] for key in expected} == {key: snapshot[key] for key in expected} == expected
    partial = orjson.loads(encode_tick(dataclasses.replace(tick, day_stats=DayStats(open=150.1))))
    assert (partial["open"], partial["high"], partial["low"], partial["volume"]) == (150.1, None, None, None)


def test_snapshot_has_the_crypto_broadcaster_keys() -> None:
    snapshot = snapshot_fields(TICK)
    assert snapshot["symbol"] == snapshot["ticker"] == "AAPL"
    assert snapshot["last_price"] == snapshot["price"] == 151.42
    assert snapshot["timestamp_ms"] == snapshot["ts"] == 1_700_000_000_123
    assert snapshot["change_percent"] == 0.2516
    assert "type" not in snapshot


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            encode_subscribed(("AAPL", "MSFT"), 1),
            {"type": "subscribed", "symbols": ["AAPL", "MSFT"], "id": 1},
        ),
        (encode_unsubscribed(("AAPL",)), {"type": "unsubscribed", "symbols": ["AAPL"]}),
        (encode_symbols(("AAPL",), "x"), {"type": "symbols", "symbols": ["AAPL"], "id": "x"}),
        (encode_pong(5), {"type": "pong", "ts": 5}),
        (
            encode_source_status(SourceStatus("binance", SourceState.RECONNECTING, 9, "dropped", 2)),
            {
                "type": "status",
                "source": "binance",
                "state": "reconnecting",
                "ts": 9,
                "reconnects": 2,
                "detail": "dropped",
            },
        ),
        (
            encode_symbol_status("AAPL", stale=True, ts=3),
            {"type": "status", "ticker": "AAPL", "stale": True, "ts": 3},
        ),
    ],
)
def test_reply_encodings(frame: str, expected: dict[str, object]) -> None:
    assert orjson.loads(frame) == expected
