"""Candle values: UTC alignment as Binance's klines, exact decimals, and the two ways parts add up."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from trio_ticker.history.candles import (
    Candle,
    Interval,
    InvalidInterval,
    bucket_start,
    combine,
    exact,
    merge_stored,
    parse_interval,
    plain,
    roll_up,
)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def candle(open_time: int, o: str, h: str, low: str, c: str, v: str, n: int, *, updated: int = 0) -> Candle:
    return Candle(
        "BTCUSDT", Interval.M1, open_time, Decimal(o), Decimal(h), Decimal(low), Decimal(c), Decimal(v), n, updated
    )


@pytest.mark.parametrize(
    ("interval", "at", "start"),
    [
        (Interval.S1, "2026-11-20 13:47:05.999", "2026-11-20 13:47:05"),
        (Interval.M1, "2026-11-20 13:47:05.5", "2026-11-20 13:47:00"),
        (Interval.M5, "2026-11-20 13:47:05", "2026-11-20 13:45:00"),
        (Interval.M15, "2026-11-20 13:47:05", "2026-11-20 13:45:00"),
        (Interval.H1, "2026-11-20 13:47:05", "2026-11-20 13:00:00"),
        (Interval.H4, "2026-11-20 13:47:05", "2026-11-20 12:00:00"),
        (Interval.D1, "2026-11-20 23:59:59.999", "2026-11-20 00:00:00"),
        (Interval.D1, "2026-11-21 00:00:00", "2026-11-21 00:00:00"),
    ],
)
def test_buckets_are_aligned_to_utc_like_binance_klines(interval: Interval, at: str, start: str) -> None:
    assert bucket_start(ms(at), interval) == ms(start)


def test_close_time_is_the_last_millisecond_of_the_interval() -> None:
    assert candle(ms("2026-11-20 13:47:00"), "1", "1", "1", "1", "0", 0).close_time == ms("2026-11-20 13:47:59.999")


def test_interval_names_are_binances_and_case_sensitive() -> None:
    assert [interval.value for interval in Interval] == ["1s", "1m", "5m", "15m", "1h", "4h", "1d"]
    assert parse_interval("15m") is Interval.M15
    for bad in ("1M", "2m", "", "1 m", "1w"):
        with pytest.raises(InvalidInterval, match="expected one of 1s, 1m, 5m, 15m, 1h, 4h, 1d"):
            parse_interval(bad)


def test_exact_keeps_the_digits_a_feed_sent() -> None:
    assert exact(0.1) + exact(0.2) == Decimal("0.3")  # as floats: 0.30000000000000004
    assert exact(96512.34) == Decimal("96512.34")
    assert exact("0.00100000") == Decimal("0.001")
    assert plain(Decimal("1E+2")) == "100" and plain(Decimal("0.00000001")) == "0.00000001"
    for bad in (float("nan"), float("inf"), "abc"):
        with pytest.raises(ValueError, match="not a"):
            exact(bad)


def test_combine_adds_two_disjoint_parts() -> None:
    first = candle(0, "10", "12", "9", "11", "1.5", 3, updated=20)
    second = candle(0, "11", "11.5", "8", "10", "0.25", 1, updated=50)
    assert combine(first, second) == candle(0, "10", "12", "8", "10", "1.75", 4, updated=50)


def test_merge_adds_parts_after_a_restart_and_unites_overlapping_views() -> None:
    stored = candle(0, "10", "12", "9", "11", "2", 4, updated=30)
    after_restart = candle(0, "11", "13", "10", "12", "1", 2, updated=50)
    assert merge_stored(stored, after_restart, covers_from=40) == candle(0, "10", "13", "9", "12", "3", 6, updated=50)
    # Another worker saw the same stream from t=25: nothing is counted twice.
    overlapping = candle(0, "11", "13", "10", "12", "1.5", 3, updated=50)
    assert merge_stored(stored, overlapping, covers_from=25) == candle(0, "10", "13", "9", "12", "2", 4, updated=50)
    assert merge_stored(None, after_restart, covers_from=40) == after_restart


def test_roll_up_builds_coarser_candles_from_finer_ones() -> None:
    minutes = [
        candle(ms("2026-11-20 13:58:00") + i * 60_000, "10", str(11 + i), "9", str(10 + i), "1", 1) for i in range(4)
    ]
    hours = roll_up(minutes, Interval.H1)
    assert [(c.open_time, c.open, c.high, c.close, c.volume, c.trades) for c in hours] == [
        (ms("2026-11-20 13:00:00"), Decimal(10), Decimal(12), Decimal(11), Decimal(2), 2),
        (ms("2026-11-20 14:00:00"), Decimal(10), Decimal(14), Decimal(13), Decimal(2), 2),
    ]
    assert {c.interval for c in hours} == {Interval.H1}
