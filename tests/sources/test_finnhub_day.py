"""Finnhub's day statistics (pure): the quote's open/high/low widened by the day's trades, and a volume summed
from the trades of a US/Eastern day only when one connection saw all of it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from trio_ticker.model import DayStats
from trio_ticker.sources.finnhub import FinnhubBook, LastTrade, Quote
from trio_ticker.sources.finnhub_day import FinnhubDays, SessionDay

NEW_YORK = ZoneInfo("America/New_York")


def eastern_ms(*fields: int) -> int:
    return int(datetime(*fields, tzinfo=NEW_YORK).timestamp() * 1000)  # type: ignore[misc]


MONDAY_0930 = eastern_ms(2026, 3, 2, 9, 30)


def test_a_session_day_is_the_us_eastern_calendar_day_across_daylight_saving() -> None:
    assert SessionDay.of(MONDAY_0930) == SessionDay(eastern_ms(2026, 3, 2), eastern_ms(2026, 3, 3))
    spring = SessionDay.of(eastern_ms(2026, 3, 8, 12))  # clocks go forward at 02:00: a 23 h day
    assert spring.end_ms - spring.start_ms == 23 * 3600 * 1000
    assert eastern_ms(2026, 3, 2, 23, 59, 59) in SessionDay.of(MONDAY_0930)
    assert eastern_ms(2026, 3, 3) not in SessionDay.of(MONDAY_0930)


def test_the_volume_is_known_only_for_a_day_one_connection_saw_whole() -> None:
    days = FinnhubDays()
    days.start_connection(MONDAY_0930)  # mid-day: Monday's earlier trades were never seen
    assert days.on_trade("AAPL", MONDAY_0930 + 1000, 190.0, 100.0).volume is None
    tuesday = eastern_ms(2026, 3, 3, 4)
    assert days.on_trade("AAPL", tuesday, 191.0, 0.1).volume == 0.1  # the connection was open at midnight
    assert days.on_trade("AAPL", tuesday + 1000, 191.5, 0.2).volume == 0.3  # summed exactly, not 0.30000000000000004
    assert days.on_trade("AAPL", tuesday + 2000, 191.5, 0).volume == 0.3  # a price update without a trade
    days.start_connection(tuesday + 3000)  # a reconnect: trades during the gap are lost
    assert days.on_trade("AAPL", tuesday + 4000, 191.5, 5).volume is None
    assert days.stats("MSFT") is None


def test_the_quotes_range_is_widened_by_that_days_trades() -> None:
    days = FinnhubDays()
    assert days.on_trade("AAPL", MONDAY_0930, 190.0, 1) == DayStats()  # no quote of the day: the range is unknown
    assert days.on_quote("AAPL", MONDAY_0930 + 60_000, 189.0, 191.0, 188.5) == DayStats(189.0, 191.0, 188.5)
    assert days.on_trade("AAPL", MONDAY_0930 + 61_000, 192.25, 1) == DayStats(189.0, 192.25, 188.5)
    assert days.on_trade("AAPL", MONDAY_0930 + 62_000, 188.0, 1) == DayStats(189.0, 192.25, 188.0)
    assert days.on_quote("AAPL", MONDAY_0930 - 86_400_000, 1.0, 2.0, 0.5) == DayStats(189.0, 192.25, 188.0)  # stale
    next_day = days.on_trade("AAPL", eastern_ms(2026, 3, 3, 9, 31), 193.0, 1)
    assert next_day == DayStats()  # a new day starts with nothing known until its quote


def test_the_book_attaches_the_day_to_every_update_and_counts_trades_that_wait() -> None:
    book = FinnhubBook()
    book.start_connection(eastern_ms(2026, 3, 1, 20))  # open since Sunday evening: all of Monday is seen
    assert book.on_trade(LastTrade("AAPL", 190.0, MONDAY_0930, 10)) is None  # waits for the previous close
    assert book.on_trade(LastTrade("AAPL", 190.5, MONDAY_0930 + 1000, 5)) is None  # replaces it; both count
    update = book.on_quote("AAPL", Quote(190.0, 188.0, MONDAY_0930 // 1000, open=189.0, high=190.2, low=188.9))
    assert update is not None and update.price == 190.5
    assert update.day_stats == DayStats(189.0, 190.2, 188.9, 15.0)  # the waiting trade is not counted twice
    later = book.on_trade(LastTrade("AAPL", 191.0, MONDAY_0930 + 2000, 1))
    assert later is not None and later.day_stats == DayStats(189.0, 191.0, 188.9, 16.0)
