"""The full protocol's frames, server to client, sans I/O: values in, JSON text frames out.

Ticks, snapshots (spliced from the tick's frame), acks, the welcome, symbol lists and status frames; the
REST routes share `snapshot_fields` and `listing_fields`. The error frame is `errors.encode_error`.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..history.candles import Interval
from ..model import DayStats, Listing, SourceStatus, Tick
from .errors import RequestId, with_request_id


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


UNKNOWN_DAY = DayStats()
"""A symbol whose source has no 24 h statistics yet: every one of them is null on the wire."""


def tick_fields(tick: Tick) -> dict[str, Any]:
    """The tick message: the prototypes' keys (ticker, price, change, mode) first, then precision and 24 h stats."""
    day = tick.day_stats or UNKNOWN_DAY
    return {
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
        "open": day.open,
        "high": day.high,
        "low": day.low,
        "volume": day.volume,
    }


def encode_tick(tick: Tick) -> str:
    return _dumps(tick_fields(tick))


def snapshot_fields(tick: Tick) -> dict[str, Any]:
    """The REST snapshot: the tick plus the crypto broadcaster's keys."""
    fields = tick_fields(tick)
    del fields["type"]
    return {
        "symbol": tick.symbol,
        "last_price": tick.price,
        "timestamp_ms": tick.ts,
        "source": tick.source,
        **fields,
    }


def encode_subscribed(
    symbols: tuple[str, ...],
    request_id: RequestId = None,
    candles: Interval | None = None,
    *,
    epoch: str | None = None,
    recovered: dict[str, bool] | None = None,
) -> str:
    """`epoch` and `recovered` (per symbol named in `since`) answer a subscribe that asked to recover."""
    message = _with_candles({"type": "subscribed", "symbols": list(symbols)}, candles)
    if recovered is not None:
        message["epoch"] = epoch
        message["recovered"] = recovered
    return _dumps(with_request_id(message, request_id))


def encode_welcome(epoch: str, version: str, limits: dict[str, int | float]) -> str:
    """The full protocol's first frame: the stream's epoch (seqs are comparable only within one), the server's
    version and the limits a client should stay within."""
    return _dumps({"type": "welcome", "epoch": epoch, "version": version, "limits": limits})


def snapshot_frame(tick_frame: str, epoch: str, *, recovered: bool | None = None) -> str:
    """The snapshot sent after `subscribed`: the tick's frame (`encode_tick`) with its epoch, and
    `recovered: false` when recovery was asked for and is not possible. Spliced, not re-encoded."""
    extra: dict[str, Any] = {"epoch": epoch}
    if recovered is not None:
        extra["recovered"] = recovered
    return tick_frame[:-1] + "," + _dumps(extra)[1:]


def encode_unsubscribed(symbols: tuple[str, ...], request_id: RequestId = None, candles: Interval | None = None) -> str:
    return _dumps(
        with_request_id(_with_candles({"type": "unsubscribed", "symbols": list(symbols)}, candles), request_id)
    )


def _with_candles(message: dict[str, Any], candles: Interval | None) -> dict[str, Any]:
    if candles is not None:
        message["candles"] = candles.value
    return message


def encode_symbols(symbols: tuple[str, ...], request_id: RequestId = None) -> str:
    return _dumps(with_request_id({"type": "symbols", "symbols": list(symbols)}, request_id))


def listing_fields(listing: Listing) -> dict[str, Any]:
    """A catalogue entry as `GET /symbols` and the `search` reply show it (precision null when unknown)."""
    return {
        "symbol": listing.symbol,
        "name": listing.name,
        "source": listing.source,
        "precision": listing.precision,
        "base": listing.base,
        "quote": listing.quote,
    }


def encode_listings(listings: list[Listing], request_id: RequestId = None) -> str:
    return _dumps(
        with_request_id({"type": "symbols", "symbols": [listing_fields(item) for item in listings]}, request_id)
    )


def encode_pong(ts: int, request_id: RequestId = None) -> str:
    return _dumps(with_request_id({"type": "pong", "ts": ts}, request_id))


def encode_source_status(status: SourceStatus) -> str:
    message: dict[str, Any] = {
        "type": "status",
        "source": status.source,
        "state": status.state.value,
        "ts": status.ts,
        "reconnects": status.reconnects,
    }
    if status.detail:
        message["detail"] = status.detail
    if status.last_message_ts is not None:
        message["last_message_ts"] = status.last_message_ts
    return _dumps(message)


def encode_symbol_status(symbol: str, *, stale: bool, ts: int) -> str:
    return _dumps({"type": "status", "ticker": symbol, "stale": stale, "ts": ts})
