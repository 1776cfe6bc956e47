"""The candle book over any tick sequence: OHLCV per UTC interval, rollover, late ticks, gaps, merges."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trio_ticker.history.book import BookCandle, CandleBook, Gap
from trio_ticker.history.candles import INTERVALS, Candle, Interval, bucket_start

BASE = 1_763_640_000_000  # 2025-11-20 12:00:00 UTC, a day's 4 h boundary
FAR_FUTURE = BASE + 10**12

prices = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(10**7), places=8)
volumes = st.none() | st.decimals(min_value=Decimal(0), max_value=Decimal(10**6), places=8)
steps = st.integers(min_value=0, max_value=3_000) | st.integers(min_value=0, max_value=2 * 86_400_000)
tick_lists = st.lists(st.tuples(steps, prices, volumes), min_size=1, max_size=60)


def play(book: CandleBook, ticks: list[tuple[int, Decimal, Decimal | None]], symbol: str = "BTCUSDT") -> list[int]:
    times = []
    ts = BASE
    for step, price, volume in ticks:
        ts += step
        book.record(symbol, price, volume, ts, now_ms=ts)
        times.append(ts)
    return times


def closed_by_series(taken: list[BookCandle]) -> dict[Interval, list[Candle]]:
    series: dict[Interval, list[Candle]] = defaultdict(list)
    for item in taken:
        series[item.candle.interval].append(item.candle)
    return series


@settings(max_examples=300, deadline=None)
@given(tick_lists)
def test_every_candle_is_the_ohlcv_of_exactly_its_intervals_ticks(
    ticks: list[tuple[int, Decimal, Decimal | None]],
) -> None:
    book = CandleBook(["BTCUSDT"])
    times = play(book, ticks)
    book.close_due(FAR_FUTURE)
    candles = closed_by_series(book.take_for_store())
    for interval in INTERVALS:
        expected: dict[int, list[tuple[Decimal, Decimal | None]]] = defaultdict(list)
        for ts, (_, price, volume) in zip(times, ticks, strict=True):
            expected[bucket_start(ts, interval)].append((price, volume))
        got = candles[interval]
        assert [c.open_time for c in got] == sorted(expected)  # one candle per interval with ticks, in order
        for c in got:
            group = expected[c.open_time]
            group_prices = [price for price, _ in group]
            traded = [volume for _, volume in group if volume is not None]
            assert c.open == group_prices[0]
            assert c.close == group_prices[-1]
            assert c.high == max(group_prices)
            assert c.low == min(group_prices)
            assert c.volume == sum(traded, Decimal(0))  # exact: no float anywhere
            assert c.trades == len(traded)
            assert c.closed


@settings(max_examples=100, deadline=None)
@given(tick_lists)
def test_the_open_candle_is_what_a_reader_sees_before_it_closes(
    ticks: list[tuple[int, Decimal, Decimal | None]],
) -> None:
    book = CandleBook(["BTCUSDT"])
    times = play(book, ticks)
    last_bucket = [
        (p, v)
        for ts, (_, p, v) in zip(times, ticks, strict=True)
        if bucket_start(ts, Interval.M1) == bucket_start(times[-1], Interval.M1)
    ]
    current = book.current("BTCUSDT", Interval.M1)
    assert current is not None and not current.closed
    assert (current.open, current.close) == (last_bucket[0][0], last_bucket[-1][0])
    assert current.high == max(p for p, _ in last_bucket) and current.low == min(p for p, _ in last_bucket)


def test_a_tick_in_the_next_interval_closes_the_open_candle_at_once() -> None:
    book = CandleBook(["ETHUSDT"], intervals=(Interval.M1,))
    book.record("ETHUSDT", Decimal("3420.5"), Decimal("1"), BASE + 59_999, now_ms=BASE + 59_999)
    assert book.take_closed_for_live() == []
    book.record("ETHUSDT", Decimal("3421"), Decimal("2"), BASE + 60_000, now_ms=BASE + 60_000)
    [closed] = book.take_closed_for_live()
    assert (closed.open_time, closed.close, closed.volume, closed.closed) == (BASE, Decimal("3420.5"), 1, True)
    current = book.current("ETHUSDT", Interval.M1)
    assert current is not None and (current.open_time, current.open, current.trades) == (BASE + 60_000, 3421, 1)


def test_close_due_closes_a_quiet_candle_after_its_interval_plus_the_delay() -> None:
    book = CandleBook(["AAPL"], intervals=(Interval.S1, Interval.M1), close_delay_ms=500)
    book.record("AAPL", Decimal("189.5"), None, BASE + 200, now_ms=BASE + 200)
    assert book.close_due(BASE + 1_499) == BASE + 1_500  # the 1 s candle is due at its end + 0.5 s
    assert book.take_closed_for_live() == []
    assert book.close_due(BASE + 1_500) == BASE + 60_500
    assert [c.interval for c in book.take_closed_for_live()] == [Interval.S1]
    assert book.close_due(BASE + 60_500) is None
    assert [c.interval for c in book.take_closed_for_live()] == [Interval.M1]


def test_a_snapshot_price_moves_the_candle_but_is_not_a_trade() -> None:
    book = CandleBook(["AAPL"], intervals=(Interval.M1,))
    book.record("AAPL", Decimal("190"), None, BASE, now_ms=BASE)  # e.g. Finnhub's REST quote
    book.record("AAPL", Decimal("191"), Decimal("5"), BASE + 1, now_ms=BASE + 1)
    current = book.current("AAPL", Interval.M1)
    assert current is not None and (current.open, current.high, current.volume, current.trades) == (190, 191, 5, 1)


def test_late_and_out_of_range_ticks_are_left_out_and_counted() -> None:
    book = CandleBook(["AAPL"], intervals=(Interval.M1, Interval.D1), close_delay_ms=500, future_tolerance_ms=60_000)
    now = BASE + 120_000
    book.record("AAPL", Decimal("10"), Decimal("1"), now, now_ms=now)
    book.record("AAPL", Decimal("99"), Decimal("1"), now - 60_000, now_ms=now)  # older than the open 1 m candle
    current = book.current("AAPL", Interval.M1)
    assert current is not None and current.high == 10
    day = book.current("AAPL", Interval.D1)
    assert day is not None and day.high == 99  # still inside today's candle
    # A quote from yesterday: too old for a new 1 m candle; a clock far ahead: refused.
    other = CandleBook(["MSFT"], intervals=(Interval.M1,))
    other.record("MSFT", Decimal("418"), None, now - 86_400_000, now_ms=now)
    other.record("MSFT", Decimal("418"), None, now + 3_600_000, now_ms=now)
    assert other.current("MSFT", Interval.M1) is None
    assert (book.late_ticks, other.late_ticks) == (1, 2)


def test_a_silence_is_reported_as_a_gap_and_marks_candles_incomplete() -> None:
    book = CandleBook(["BTCUSDT"], intervals=(Interval.M1, Interval.H1), gap_after_ms=30_000)
    book.record("BTCUSDT", Decimal("1"), Decimal("1"), BASE, now_ms=BASE)
    book.record("BTCUSDT", Decimal("2"), Decimal("1"), BASE + 1_000, now_ms=BASE + 1_000)
    book.take_for_store()
    book.close_due(BASE + 70_000)
    book.record("BTCUSDT", Decimal("3"), Decimal("1"), BASE + 200_000, now_ms=BASE + 200_000)
    assert book.take_gaps() == [Gap("BTCUSDT", BASE + 1_000, BASE + 200_000)]
    taken = {(c.candle.interval, c.candle.open_time): c for c in book.take_for_store()}
    assert taken[(Interval.H1, BASE)].incomplete  # spanned the silence
    assert taken[(Interval.M1, BASE + 180_000)].incomplete  # began inside it
    # The first candle of each series in a process may have an earlier part in the store.
    assert taken[(Interval.H1, BASE)].merge_from == BASE
    assert taken[(Interval.M1, BASE + 180_000)].merge_from is None


def test_absorb_adds_the_stored_part_and_keeps_later_ticks() -> None:
    book = CandleBook(["BTCUSDT"], intervals=(Interval.H1,))
    book.record("BTCUSDT", Decimal("100"), Decimal("1"), BASE + 10, now_ms=BASE + 10)
    [sent] = book.take_for_store()
    book.record("BTCUSDT", Decimal("101"), Decimal("2"), BASE + 20, now_ms=BASE + 20)  # after the snapshot
    stored_part = Candle(
        "BTCUSDT", Interval.H1, BASE, Decimal(90), Decimal(120), Decimal(80), Decimal(95), Decimal(7), 4, 5
    )
    written = Candle(
        "BTCUSDT", Interval.H1, BASE, Decimal(90), Decimal(120), Decimal(80), Decimal(100), Decimal(8), 5, 10
    )
    book.absorb(written, sent.candle)
    current = book.current("BTCUSDT", Interval.H1)
    assert current is not None
    assert (current.open, current.high, current.low, current.close) == (90, 120, 80, 101)
    assert (current.volume, current.trades) == (stored_part.volume + 3, stored_part.trades + 2)
    [again] = book.take_for_store()
    assert again.merge_from is None  # merged once: from now on it replaces
