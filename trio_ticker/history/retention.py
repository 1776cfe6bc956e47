"""`TICKER_CANDLE_RETENTION`, sans I/O: how long each interval's candles are kept.

The setting is `interval=duration` pairs, e.g. `1m=7d,1h=365d,1d=forever`; a duration is a whole
number with `s`, `m`, `h`, `d` or `w`, or `forever`. Intervals not listed keep their default.
"""

from __future__ import annotations

import re

from .candles import Interval, InvalidInterval, parse_interval

DEFAULT_RETENTION = "1s=1h,1m=7d,5m=30d,15m=90d,1h=365d,4h=730d,1d=forever"
UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
DURATION = re.compile(r"^([0-9]{1,7})([smhdw])$")


def parse_retention(text: str) -> dict[Interval, int | None]:
    """Milliseconds kept per interval (None: for ever); raises ValueError naming the bad part."""
    return {**_pairs(DEFAULT_RETENTION), **_pairs(text)}


def _pairs(text: str) -> dict[Interval, int | None]:
    keep: dict[Interval, int | None] = {}
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        name, separator, duration = (item.strip() for item in part.partition("="))
        if not separator:
            raise ValueError(f"{part!r} is not interval=duration (e.g. 1m=7d)")
        try:
            interval = parse_interval(name)
        except InvalidInterval as error:
            raise ValueError(str(error)) from None
        if duration == "forever":
            keep[interval] = None
            continue
        match = DURATION.match(duration)
        if match is None or int(match.group(1)) == 0:
            raise ValueError(f"{duration!r} is not a duration: a whole number > 0 and s, m, h, d or w, or forever")
        keep[interval] = int(match.group(1)) * UNIT_MS[match.group(2)]
    return keep
