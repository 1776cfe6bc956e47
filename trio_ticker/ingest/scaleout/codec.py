"""Sans-I/O conversion between trio_ticker's values and Redis stream entries / snapshot hashes.

The leader sends `(kind, key, body)` triples to the publish script, which numbers ticks and adds
`seq`; followers decode stream entries and the snapshot back into `Ingest` items for their hub. A tick's body is
`tick_codec`'s, which the tick journal stores too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import orjson

from ...model import (
    Listing,
    PriceUpdate,
    SourceState,
    SourceStatus,
    StaleChange,
    SymbolRejected,
    Tick,
    tick_from_update,
)
from ...tick_codec import EntryError, decode_tick, encode_tick_body, json_list, json_value

Kind = Literal["tick", "stale", "status", "rejected"]
TICK: Kind = "tick"
STALE: Kind = "stale"
STATUS: Kind = "status"
REJECTED: Kind = "rejected"  # an upstream refused an on-demand symbol: in the stream only, never in a snapshot
Publishable = PriceUpdate | StaleChange | SourceStatus | SymbolRejected


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a worker loads on (re)connect: the latest tick per symbol, where the stream stands and Redis's clock
    then (epoch milliseconds, the clock stream ids are made from)."""

    cursor: str
    ticks: tuple[Tick, ...]
    statuses: tuple[SourceStatus, ...]
    now_ms: int


LAST_ID_SEQUENCE = 2**64 - 1
"""The largest sequence part of a stream id: `f"{ms}-{LAST_ID_SEQUENCE}"` is the last id of millisecond `ms`."""


def stream_id_ms(entry_id: str) -> int:
    """The millisecond part of a stream id ("1700000000000-3"): when Redis added the entry, on its clock."""
    return _int(entry_id.partition("-")[0], "stream id")


def last_id_of_ms(ms: int) -> str:
    """The largest stream id of millisecond `ms`: every entry added later has a larger id."""
    return f"{max(0, ms)}-{LAST_ID_SEQUENCE}"


def encode_item(item: Publishable) -> tuple[Kind, str, bytes]:
    """`(kind, key, body)` for the publish script; a price's body is its tick without seq and stale:
    price, change, change %, ts, mode, source, trade volume, precision, then the 24 h open, high, low, volume."""
    if isinstance(item, PriceUpdate):
        return TICK, item.symbol, encode_tick_body(tick_from_update(item, seq=0))
    if isinstance(item, StaleChange):
        return STALE, item.symbol, orjson.dumps([item.stale, item.ts])
    if isinstance(item, SymbolRejected):
        return REJECTED, item.symbol, orjson.dumps([item.source, item.reason])
    fields = dataclasses.asdict(item)
    fields["state"] = item.state.value
    return STATUS, item.source, orjson.dumps(fields)


def decode_entry(fields: Mapping[str, str]) -> Tick | StaleChange | SourceStatus | SymbolRejected:
    """One stream entry (`kind`, `key`, `body`, and `seq` for ticks) back into an ingest item."""
    kind, key, body = (_field(fields, name) for name in ("kind", "key", "body"))
    if kind == TICK:
        return decode_tick(key, _int(_field(fields, "seq"), "seq"), body, stale=False)
    if kind == STALE:
        stale, ts = json_list(body, "stale body", 2)
        if not isinstance(stale, bool) or not isinstance(ts, int):
            raise EntryError(f"stale body for {key} must be [bool, int], got {body!r}")
        return StaleChange(key, stale, ts)
    if kind == STATUS:
        return decode_status(body)
    if kind == REJECTED:
        source, reason = json_list(body, "rejected body", 2)
        if not isinstance(source, str) or not isinstance(reason, str):
            raise EntryError(f"rejected body for {key} must be [str, str], got {body!r}")
        return SymbolRejected(key, source, reason)
    raise EntryError(f"unknown entry kind {kind!r}")


def decode_status(body: str) -> SourceStatus:
    fields = json_value(body, "status body")
    if not isinstance(fields, dict):
        raise EntryError(f"status body must be an object, got {body!r}")
    try:
        return SourceStatus(**{**fields, "state": SourceState(str(fields.get("state")))})
    except (TypeError, ValueError) as error:
        raise EntryError(f"status body is invalid ({error}): {body!r}") from None


def decode_snapshot(
    cursor: str, latest: Mapping[str, str], stale: Mapping[str, str], statuses: Mapping[str, str], *, now_ms: int
) -> Snapshot:
    """The snapshot script's hashes: `latest` maps symbol -> "seq:body", `stale` symbol -> stale body; `now_ms`
    is Redis's TIME in the same script."""
    ticks = []
    for symbol, value in latest.items():
        seq_text, separator, body = value.partition(":")
        if not separator:
            raise EntryError(f"latest value for {symbol} has no 'seq:' prefix: {value!r}")
        flag = stale.get(symbol)
        is_stale = flag is not None and json_list(flag, f"stale flag for {symbol}", 2)[0] is True
        ticks.append(decode_tick(symbol, _int(seq_text, f"seq of {symbol}"), body, stale=is_stale))
    return Snapshot(cursor, tuple(ticks), tuple(decode_status(body) for body in statuses.values()), now_ms)


def _field(fields: Mapping[str, str], name: str) -> str:
    try:
        return fields[name]
    except KeyError:
        raise EntryError(f"entry has no {name!r} field: {dict(fields)!r}") from None


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise EntryError(f"{what} must be an integer, got {text!r}") from None


def encode_listing(listing: Listing) -> str:
    return orjson.dumps(dataclasses.asdict(listing)).decode()


def decode_listing(body: str) -> Listing:
    """A worker's listing back from the store; a malformed one raises `EntryError`."""
    try:
        fields = orjson.loads(body)
        listing = Listing(**fields)
    except (orjson.JSONDecodeError, TypeError) as error:
        raise EntryError(f"bad listing {body[:80]!r}") from error
    text = (listing.symbol, listing.source, listing.name, listing.base, listing.quote)
    precision = listing.precision
    if not all(isinstance(value, str) for value in text) or not (
        precision is None or (isinstance(precision, int) and 0 <= precision <= 20)
    ):
        raise EntryError(f"bad listing {body[:80]!r}")
    return listing
