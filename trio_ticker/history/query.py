"""`GET /candles` parameters, sans I/O: validated into a `CandleQuery`, or one `QueryError`.

Every error has a documented code and status (docs/protocol.md, "REST"): 400 for a bad symbol,
interval, limit, start or end, 404 for a symbol this server does not serve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..protocol.commands import normalize_symbol
from ..protocol.errors import ProtocolError
from .candles import Interval, InvalidInterval, parse_interval

DEFAULT_LIMIT = 500
MAX_TIME_MS = 2**53  # the largest time a JavaScript client reads exactly


class QueryError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details


@dataclass(frozen=True, slots=True)
class CandleQuery:
    symbol: str
    interval: Interval
    start: int | None  # epoch ms, inclusive (open times)
    end: int | None  # epoch ms, inclusive
    limit: int


def parse_candle_query(
    args: Mapping[str, str], *, is_listed: Callable[[str], bool], default_symbol: str, max_limit: int
) -> CandleQuery:
    raw_symbol = args.get("symbol", default_symbol)
    try:
        symbol = normalize_symbol(raw_symbol)
    except ProtocolError as error:
        raise QueryError(str(error.code), error.message, symbol=raw_symbol[:40]) from None
    if not is_listed(symbol):
        raise QueryError("unknown_symbol", f"unknown symbol {symbol}", 404, symbol=symbol)
    raw_interval = args.get("interval")
    if raw_interval is None:
        raise QueryError("invalid_interval", "missing 'interval' (one of 1s, 1m, 5m, 15m, 1h, 4h, 1d)")
    try:
        interval = parse_interval(raw_interval)
    except InvalidInterval as error:
        raise QueryError("invalid_interval", str(error), interval=raw_interval[:20]) from None
    limit = parse_count(args, "limit", default=min(DEFAULT_LIMIT, max_limit), high=max_limit)
    start = _integer(args, "start", "invalid_start", low=0, high=MAX_TIME_MS)
    end = _integer(args, "end", "invalid_end", low=0, high=MAX_TIME_MS)
    if start is not None and end is not None and start > end:
        raise QueryError("invalid_range", f"'start' ({start}) is after 'end' ({end})")
    return CandleQuery(symbol, interval, start, end, limit)


def parse_count(args: Mapping[str, str], name: str, *, default: int, high: int) -> int:
    """A REST count parameter (`limit`): a whole number from 1 to `high`, else `invalid_<name>` (400)."""
    count = _integer(args, name, f"invalid_{name}", low=1, high=high, default=default)
    assert count is not None  # there is a default
    return count


def _integer(
    args: Mapping[str, str], name: str, code: str, *, low: int, high: int, default: int | None = None
) -> int | None:
    text = args.get(name)
    if text is None:
        return default
    stripped = text.strip()
    if not stripped.isdigit() or len(stripped) > 20 or not low <= int(stripped) <= high:
        what = "a count" if name == "limit" else "a time in epoch milliseconds"
        raise QueryError(code, f"'{name}' must be {what} from {low} to {high}", 400, **{name: text[:40]})
    return int(stripped)
