"""The demo's rolling 24 h window (pure): open, high and low of the prices in it, and their summed volume."""

from __future__ import annotations

from decimal import Decimal

from trio_ticker.model import DayStats
from trio_ticker.sources.rolling_day import BUCKET_MS, WINDOW_MS, RollingDay

T0 = 1_763_700_000_000 - 1_763_700_000_000 % BUCKET_MS  # a minute's start


def test_the_first_price_opens_the_window_and_every_price_moves_its_range() -> None:
    day = RollingDay()
    assert day.add(T0, 100.0, Decimal("1.5")) == DayStats(open=100.0, high=100.0, low=100.0, volume=1.5)
    assert day.add(T0 + 1_000, 101.25, Decimal("0.25")) == DayStats(100.0, 101.25, 100.0, 1.75)
    assert day.add(T0 + BUCKET_MS * 5, 99.5, None) == DayStats(100.0, 101.25, 99.5, 1.75)  # a price without a trade
    assert day.add(T0 + BUCKET_MS * 6, 100.5, Decimal("0.1")) == DayStats(100.0, 101.25, 99.5, 1.85)


def test_volumes_add_up_exactly() -> None:
    day = RollingDay()
    for second in range(10):
        stats = day.add(T0 + second * 1000, 10.0, Decimal("0.1"))
    assert stats.volume == 1.0  # ten 0.1s in floats are 0.9999999999999999


def test_minutes_older_than_24_hours_leave_the_window() -> None:
    day = RollingDay()
    day.add(T0, 120.0, Decimal(5))  # the high, and the open, of the first minute
    day.add(T0 + BUCKET_MS, 90.0, Decimal(1))  # the low, one minute later
    day.add(T0 + 2 * BUCKET_MS, 100.0, Decimal(2))
    assert day.add(T0 + WINDOW_MS - 1, 101.0, None) == DayStats(120.0, 120.0, 90.0, 8.0)
    assert day.add(T0 + WINDOW_MS, 101.0, None) == DayStats(90.0, 101.0, 90.0, 3.0)  # the first minute is out
    assert day.add(T0 + WINDOW_MS + BUCKET_MS, 100.5, None) == DayStats(100.0, 101.0, 100.0, 2.0)
    assert len(day._minutes) == 4  # T0 + 2 min, and the three minutes at the end of the window


def test_memory_is_one_bucket_per_minute_of_the_window() -> None:
    day = RollingDay()
    for step in range(3 * 24 * 60 * 2):  # three days, a price every 30 s
        day.add(T0 + step * 30_000, 100.0 + step % 7, Decimal(1))
    assert len(day._minutes) == 24 * 60
    assert day.add(T0 + 3 * WINDOW_MS, 100.0, None).volume == 2 * (24 * 60 - 1)  # the newest minute is a new one


def test_a_clock_that_steps_back_counts_in_the_newest_minute() -> None:
    day = RollingDay()
    day.add(T0 + BUCKET_MS, 100.0, Decimal(1))
    assert day.add(T0, 95.0, Decimal(1)) == DayStats(100.0, 100.0, 95.0, 2.0)
