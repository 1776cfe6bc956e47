"""The two dialects, sans I/O: which one a handshake selects, and the prototypes' frames in and out.

No trio and no sockets: `negotiate` over offered subprotocols, `prototype_dialect` over ticks and frames.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.strategies import frames, objects_with
from trio_ticker.model import DayStats, Mode, Tick
from trio_ticker.protocol import prototype as prototype_dialect
from trio_ticker.protocol.commands import Subscribe, Unsubscribe
from trio_ticker.protocol.dialects import FULL_PROTOCOL_V1, Dialect, Negotiated, negotiate
from trio_ticker.protocol.errors import ErrorCode, ProtocolError, unknown_symbols_error

PRICE_KEYS = {"ticker", "price", "change", "mode", "symbol", "last_price", "change_percent", "timestamp_ms"}
"""What the prototypes' clients read from a frame: an error object must have none of them."""


@pytest.mark.parametrize(
    ("offered", "batch", "expected"),
    [
        ([], False, Negotiated(Dialect.PROTOTYPE, None, False)),
        ([], True, Negotiated(Dialect.FULL, None, True)),
        (["trio-ticker.v1"], False, Negotiated(Dialect.FULL, "trio-ticker.v1", False)),
        (["trio-ticker.v1"], True, Negotiated(Dialect.FULL, "trio-ticker.v1", True)),
        (["bearer.abc", "trio-ticker.v1"], False, Negotiated(Dialect.FULL, "trio-ticker.v1", False)),
        (["trio-ticker"], False, Negotiated(Dialect.FULL, "trio-ticker", False)),  # the unversioned name: v1
        (["trio-ticker", "trio-ticker.v1"], False, Negotiated(Dialect.FULL, "trio-ticker.v1", False)),
    ],
)
def test_the_handshake_selects_a_dialect(offered: list[str], batch: bool, expected: Negotiated) -> None:
    assert negotiate(offered, batch=batch) == expected


@pytest.mark.parametrize(
    "offered", [["chat"], ["bearer.abc"], ["trio-ticker.v2"], ["TRIO-TICKER.V1"], ["chat", "bearer.abc"]]
)
@pytest.mark.parametrize("batch", [False, True])
def test_only_subprotocols_this_server_does_not_speak_select_nothing(offered: list[str], batch: bool) -> None:
    assert negotiate(offered, batch=batch) is None  # never a silent fallback to the prototypes' dialect


def tick(price: float = 151.42, **fields: object) -> Tick:
    values: dict[str, object] = {
        "symbol": "AAPL",
        "price": price,
        "change": 1.92,
        "change_percent": 1.2843,
        "ts": 1_763_728_925_123,
        "seq": 42,
        "mode": Mode.DEMO,
    }
    return Tick(**(values | fields))  # type: ignore[arg-type]


def test_a_price_object_carries_both_prototypes_keys_and_the_extras() -> None:
    frame = prototype_dialect.encode_price(tick(151.42, stale=True, mode=Mode.LIVE), previous_price=151.3)
    assert list(orjson.loads(frame).items()) == [
        ("ticker", "AAPL"),
        ("price", 151.42),
        ("change", 0.12),  # the move since the previous tick, not the full protocol's 1.92 against the reference
        ("mode", "live"),
        ("symbol", "AAPL"),
        ("last_price", 151.42),
        ("change_percent", 1.2843),
        ("timestamp_ms", 1_763_728_925_123),
        ("ts", 1_763_728_925_123),
        ("seq", 42),
        ("stale", True),
        ("open", None),  # the 24 h statistics ride along, null while the source has none
        ("high", None),
        ("low", None),
        ("volume", None),
    ]


def test_a_price_object_carries_the_24h_statistics_as_extras() -> None:
    day = DayStats(open=150.0, high=152.25, low=149.5, volume=61_000_000.0)
    frame = orjson.loads(prototype_dialect.encode_price(tick(151.42, day_stats=day), previous_price=151.3))
    assert (frame["open"], frame["high"], frame["low"], frame["volume"]) == (150.0, 152.25, 149.5, 61_000_000.0)


@pytest.mark.parametrize(
    ("price", "previous", "change"),
    [
        (151.42, 151.30, 0.12),  # 0.11999999999999034 in floats
        (151.30, 151.42, -0.12),
        (96620.5, 96500.0, 120.5),
        (100.0, 100.0, 0.0),
        (0.1234, 0.1231, 0.0),  # a move under half a cent is no move to the stock streamer
        (0.1234, 0.1334, -0.01),
        (3420.004, 3420.0, 0.0),  # not -0.0 or a float tail: 0.0
        (3419.996, 3420.0, 0.0),
    ],
)
def test_change_is_the_move_since_the_previous_tick_to_the_cent(price: float, previous: float, change: float) -> None:
    result = prototype_dialect.price_change(price, previous)
    assert result == change
    assert repr(result) == repr(change)  # exactly that float: no -0.0, no 0.11999999999999034


def test_an_error_object_is_the_prototypes_shape_and_never_looks_like_a_price() -> None:
    error = unknown_symbols_error(["DOGE"], request_id=7)
    assert orjson.loads(prototype_dialect.encode_error(error)) == {
        "error": "unknown symbol DOGE",
        "code": "unknown_symbol",
        "id": 7,
    }
    bare = ProtocolError(ErrorCode.INVALID_JSON, "frame is not valid UTF-8 JSON")
    assert orjson.loads(prototype_dialect.encode_error(bare)) == {
        "error": "frame is not valid UTF-8 JSON",
        "code": "invalid_json",
    }


def decode_or_error(frame: str | bytes, max_symbols: int | None = None) -> Subscribe | Unsubscribe | ProtocolError:
    try:
        return prototype_dialect.decode_command(frame, max_symbols=max_symbols)
    except ProtocolError as error:
        return error


def test_the_stock_streamers_subscribe_and_an_unsubscribe_are_commands() -> None:
    assert decode_or_error('{"action":"subscribe","symbol":"aapl"}') == Subscribe(("AAPL",))
    assert decode_or_error(b'{"action":"unsubscribe","symbols":["MSFT"],"id":"x"}') == Unsubscribe(("MSFT",), "x")


@pytest.mark.parametrize("action", ["list", "ping", "dance"])
def test_list_ping_and_anything_else_are_unknown_actions_that_point_to_the_full_protocol(action: str) -> None:
    error = decode_or_error(orjson.dumps({"action": action, "id": 3}))
    assert isinstance(error, ProtocolError)
    assert (error.code, error.request_id) == (ErrorCode.UNKNOWN_ACTION, 3)
    assert repr(action) in error.message and FULL_PROTOCOL_V1 in error.message


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("nope", ErrorCode.INVALID_JSON),
        ("[]", ErrorCode.NOT_AN_OBJECT),
        ('{"action":"subscribe"}', ErrorCode.MISSING_FIELD),
        ('{"action":"subscribe","symbol":"<b>"}', ErrorCode.INVALID_SYMBOL),
        ('{"action":"subscribe","symbols":["A","B","C"]}', ErrorCode.TOO_MANY_SYMBOLS),
    ],
)
def test_bad_frames_are_the_full_protocols_typed_errors(frame: str, code: ErrorCode) -> None:
    error = decode_or_error(frame, max_symbols=2)
    assert isinstance(error, ProtocolError) and error.code is code


command_like = objects_with(
    {
        "symbol": st.text(max_size=40),
        "symbols": st.lists(st.text(max_size=40), max_size=5),
        "id": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    },
    required={"action": st.sampled_from(["subscribe", "unsubscribe", "list", "ping", ""]) | st.text(max_size=50)},
)


@given(frames | command_like)
def test_any_frame_is_a_subscription_change_or_an_error_object_with_no_price_key(frame: str | bytes) -> None:
    result = decode_or_error(frame)
    if isinstance(result, ProtocolError):
        reply = orjson.loads(prototype_dialect.encode_error(result))
        assert set(reply) <= {"error", "code", "id"} and not PRICE_KEYS & set(reply)
        assert ErrorCode(reply["code"]) is result.code
        assert len(prototype_dialect.encode_error(result)) < 1000
    else:
        assert isinstance(result, Subscribe | Unsubscribe)
