"""Property tests of the client protocol: any frame decodes to a command or a `ProtocolError`."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tests.support.strategies import frames, objects_with
from trio_ticker.model import DayStats, Mode, Tick
from trio_ticker.protocol.commands import Command, ListSymbols, Ping, Subscribe, Unsubscribe, decode_command
from trio_ticker.protocol.errors import ErrorCode, ProtocolError, RequestId, encode_error
from trio_ticker.protocol.frames import encode_tick
from trio_ticker.settings import SYMBOL_PATTERN

symbols = st.from_regex(SYMBOL_PATTERN, fullmatch=True)
request_ids = st.none() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.text(max_size=64)
commands = st.one_of(
    st.builds(Subscribe, st.lists(symbols, min_size=1, max_size=8, unique=True).map(tuple), request_ids),
    st.builds(Unsubscribe, st.lists(symbols, min_size=1, max_size=8, unique=True).map(tuple), request_ids),
    st.builds(ListSymbols, request_ids),
    st.builds(Ping, request_ids),
)
command_like = objects_with(
    {
        "symbol": symbols | st.text(max_size=40),
        "symbols": st.lists(symbols | st.text(max_size=40), max_size=60),
        "id": request_ids,
    },
    required={"action": st.sampled_from(["subscribe", "unsubscribe", "list", "ping", "SUBSCRIBE", ""])},
)


def decode_or_error(frame: str | bytes, max_symbols: int | None = None) -> Command | ProtocolError:
    try:
        return decode_command(frame, max_symbols=max_symbols)
    except ProtocolError as error:
        return error


@given(frames | command_like, st.none() | st.integers(min_value=1, max_value=50))
def test_any_frame_is_a_command_or_a_typed_error(frame: str | bytes, max_symbols: int | None) -> None:
    result = decode_or_error(frame, max_symbols)
    if isinstance(result, ProtocolError):
        error = orjson.loads(result.to_frame())
        assert error["type"] == "error"
        assert ErrorCode(error["code"]) is result.code
        assert len(result.to_frame()) < 1000  # details are truncated, never the whole frame echoed
    else:
        assert isinstance(result, Subscribe | Unsubscribe | ListSymbols | Ping)
        if max_symbols is not None and isinstance(result, Subscribe | Unsubscribe):
            assert len(result.symbols) <= max_symbols


def client_frame(command: Command) -> str:
    fields: dict[str, object] = {
        Subscribe: {"action": "subscribe"},
        Unsubscribe: {"action": "unsubscribe"},
        ListSymbols: {"action": "list"},
        Ping: {"action": "ping"},
    }[type(command)]
    if isinstance(command, Subscribe | Unsubscribe):
        fields = {**fields, "symbols": [symbol.lower() for symbol in command.symbols]}
    if command.request_id is not None:
        fields = {**fields, "id": command.request_id}
    return orjson.dumps(fields).decode()


@given(commands)
def test_a_command_written_as_a_client_would_decodes_back_to_itself(command: Command) -> None:
    assert decode_command(client_frame(command)) == command
    assert decode_command(client_frame(command).encode()) == command


@given(commands, st.integers(min_value=1, max_value=8))
def test_max_symbols_refuses_exactly_the_longer_lists(command: Command, max_symbols: int) -> None:
    result = decode_or_error(client_frame(command), max_symbols)
    too_many = isinstance(command, Subscribe | Unsubscribe) and len(command.symbols) > max_symbols
    if too_many:
        assert isinstance(result, ProtocolError)
        assert (result.code, result.request_id, result.details) == (
            ErrorCode.TOO_MANY_SYMBOLS,
            command.request_id,
            {"limit": max_symbols},
        )
    else:
        assert result == command


ticks = st.builds(
    Tick,
    symbol=symbols,
    price=st.floats(min_value=1e-8, max_value=1e9),
    change=st.floats(min_value=-1e9, max_value=1e9),
    change_percent=st.floats(min_value=-100, max_value=1e6),
    mode=st.sampled_from(Mode),
    ts=st.integers(min_value=0, max_value=2**53),
    seq=st.integers(min_value=1, max_value=2**53),
    stale=st.booleans(),
    source=st.sampled_from(["demo", "binance", "finnhub"]),
    precision=st.integers(min_value=0, max_value=8),
    day_stats=st.none()
    | st.builds(
        DayStats,
        *[st.none() | st.floats(min_value=1e-8, max_value=1e12, exclude_max=True)] * 3,
        st.none() | st.floats(min_value=0, max_value=1e20, exclude_max=True),
    ),
)


@given(ticks)
def test_a_tick_frame_carries_every_field_unchanged(tick: Tick) -> None:
    message = orjson.loads(encode_tick(tick))
    assert message == {
        "type": "tick",
        "ticker": tick.symbol,
        "price": tick.price,
        "change": tick.change,
        "change_percent": tick.change_percent,
        "mode": tick.mode.value,
        "ts": tick.ts,
        "seq": tick.seq,
        "stale": tick.stale,
        "precision": tick.precision,
        "open": None if tick.day_stats is None else tick.day_stats.open,
        "high": None if tick.day_stats is None else tick.day_stats.high,
        "low": None if tick.day_stats is None else tick.day_stats.low,
        "volume": None if tick.day_stats is None else tick.day_stats.volume,
    }


@given(st.sampled_from(ErrorCode), st.text(max_size=80), request_ids)
def test_an_error_frame_round_trips(code: ErrorCode, message: str, request_id: RequestId) -> None:
    frame = orjson.loads(encode_error(code, message, request_id=request_id))
    expected = {"type": "error", "code": code.value, "message": message}
    assert frame == (expected if request_id is None else {**expected, "id": request_id})
