"""The values that flow through trio_ticker: what a source reports and what clients receive.

Frozen, slotted records with no I/O. A source emits `PriceUpdate`s; the hub's `TickBook`
numbers them per symbol and turns them into `Tick`s, the unit every client sees.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal


class Mode(enum.StrEnum):
    DEMO = "demo"
    LIVE = "live"


class SourceState(enum.StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    DEGRADED = "degraded"  # connected, but some symbols have no usable price (the detail names them)
    RATE_LIMITED = "rate_limited"  # waiting out an upstream's Retry-After
    RECONNECTING = "reconnecting"
    UNAUTHORIZED = "unauthorized"
    STOPPED = "stopped"


MIN_PRICE = 1e-8
"""The smallest price any upstream may send: Binance's finest tick (8 decimals)."""
MAX_PRICE = 1e12
"""Every price is below this; an upstream number at or above it is an error, not a market."""
MAX_VOLUME = 1e20
"""Every 24 h volume is below this (the busiest pairs trade ~1e13 units a day); above it is an error."""


def is_usable_price(price: float) -> bool:
    """Finite and within [MIN_PRICE, MAX_PRICE): the only prices that reach the hub (NaN fails every comparison)."""
    return MIN_PRICE <= price < MAX_PRICE


def is_usable_volume(volume: float) -> bool:
    """Finite and within [0, MAX_VOLUME): the only 24 h volumes a decoder accepts."""
    return 0 <= volume < MAX_VOLUME


@dataclass(frozen=True, slots=True)
class DayStats:
    """A symbol's 24 h statistics as clients see them: open, high, low and traded volume; None where unknown.

    Numbers as they go on the wire, built by the source once per upstream statistics message (Binance's
    exact decimals become the float that prints the same; prices stay at the symbol's tick), and shared by
    every tick until the next one, so a tick costs no conversion. What "24 h" means per source is in
    docs/protocol.md (`tick`).
    """

    open: float | None = None
    high: float | None = None
    low: float | None = None
    volume: float | None = None  # the base asset's (or shares') traded quantity in the window

    def widened(self, price: float) -> DayStats:
        """These statistics with `price` inside [low, high] (a trade newer than the upstream's last statistics)."""
        high, low = self.high, self.low
        if (high is None or price <= high) and (low is None or price >= low):
            return self
        return DayStats(
            self.open,
            None if high is None else max(high, price),
            None if low is None else min(low, price),
            self.volume,
        )


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    """One new price from a source, before the hub numbers it.

    `reference` is the price `change` is measured against: the demo session's start price,
    Binance's 24 h open, Finnhub's previous close. `decimals` is the symbol's price precision,
    so derived numbers are rounded to what the market quotes (no float drift). `volume` is the
    traded quantity (exact) when the update is a trade, None for a price without one (a snapshot).
    `day_stats` is the symbol's 24 h statistics, None when the source has none yet.
    """

    symbol: str
    price: float
    reference: float
    ts: int  # event time, epoch milliseconds
    mode: Mode
    decimals: int = 2
    source: str = "demo"
    volume: Decimal | None = None
    day_stats: DayStats | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """A numbered price update as clients receive it; `seq` grows by exactly 1 per symbol.

    `precision` is the decimals `price` is rounded to; `day_stats` the symbol's 24 h statistics."""

    symbol: str
    price: float
    change: float
    change_percent: float
    ts: int  # event time, epoch milliseconds
    seq: int
    mode: Mode
    stale: bool = False
    source: str = "demo"
    volume: Decimal | None = None  # the trade's quantity (candles count it); not sent to clients
    precision: int = 2
    day_stats: DayStats | None = None


def tick_from_update(update: PriceUpdate, seq: int) -> Tick:
    # `+ 0.0` turns a rounded -0.0 into 0.0, which is what a reader expects to see.
    change = round(update.price - update.reference, update.decimals) + 0.0
    change_percent = round(change / update.reference * 100, 4) + 0.0 if update.reference else 0.0
    return Tick(
        symbol=update.symbol,
        price=round(update.price, update.decimals),
        change=change,
        change_percent=change_percent,
        ts=update.ts,
        seq=seq,
        mode=update.mode,
        source=update.source,
        volume=update.volume,
        precision=update.decimals,
        day_stats=update.day_stats,
    )


@dataclass(frozen=True, slots=True)
class Listing:
    """One symbol a source lists: what a search shows, and the precision its prices are quoted in.

    `precision` is the number of decimals of a price (Binance's tickSize); None where the catalogue does
    not say (the source then derives it from the prices it sees).
    """

    symbol: str
    source: str  # the name of the source that streams it: "demo", "binance" or "finnhub"
    name: str  # a display name: "Apple Inc", "BTC/USDT"
    precision: int | None = None
    base: str = ""  # crypto pairs: the base and quote assets
    quote: str = ""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A source's connection state changed (pushed to clients and shown at /healthz)."""

    source: str
    state: SourceState
    ts: int  # epoch milliseconds
    detail: str = ""
    reconnects: int = 0
    last_message_ts: int | None = None  # epoch ms of the last frame from upstream, if any


@dataclass(frozen=True, slots=True)
class StaleChange:
    """The stale watchdog's verdict on one symbol: no update for too long, or fresh again."""

    symbol: str
    stale: bool
    ts: int  # epoch milliseconds


@dataclass(frozen=True, slots=True)
class SymbolRejected:
    """The upstream refused to stream a listed symbol: its subscribers are told, and demand drops it."""

    symbol: str
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class PastTick:
    """A tick published `age` seconds ago that this hub never served (a scale-out worker that just started reads
    the Redis stream's recent ticks): it goes into the recovery history only, never to a client as live."""

    tick: Tick
    age: float  # seconds since it was published, >= 0


Ingest = PriceUpdate | Tick | PastTick | SourceStatus | StaleChange | SymbolRejected
"""What sources (and their watchdogs) send into the hub's ingest channel; a scale-out follower
sends `Tick`s already numbered in Redis, and `PastTick`s for its recovery history (docs/architecture.md,
"Several workers")."""
