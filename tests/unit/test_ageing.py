"""Aged balance buckets, countback DSO and CEI: worked examples and properties."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from portal.domain.ageing import (BUCKETS, Period, aged_balance, bucket, bucket_bounds, cei, cei_window,
                                  countback_periods, dso_countback, months_back)

AS_OF = date(2026, 6, 30)
dates = st.dates(date(2000, 1, 1), date(2100, 12, 31))


@pytest.mark.parametrize("days_late, expected", [
    (-400, "not_due"), (-1, "not_due"), (0, "not_due"),  # due today is not overdue yet
    (1, "1_30"), (30, "1_30"),
    (31, "31_60"), (60, "31_60"),
    (61, "61_90"), (90, "61_90"),
    (91, "over_90"), (3650, "over_90"),
])
def test_bucket_boundaries(days_late, expected):
    assert bucket(AS_OF - timedelta(days=days_late), AS_OF) == expected


def test_aged_balance_worked_example():
    items = [(AS_OF, 100), (AS_OF + timedelta(days=10), 5), (AS_OF - timedelta(days=1), 200),
             (AS_OF - timedelta(days=30), 300), (AS_OF - timedelta(days=31), 400),
             (AS_OF - timedelta(days=75), 500), (AS_OF - timedelta(days=91), 600),
             (AS_OF - timedelta(days=400), 700)]
    assert aged_balance(items, AS_OF) == {"not_due": 105, "1_30": 500, "31_60": 400, "61_90": 500,
                                          "over_90": 1300}
    assert aged_balance([], AS_OF) == dict.fromkeys(BUCKETS, 0)


@given(st.lists(st.tuples(dates, st.integers(0, 10**12)), max_size=30), dates)
def test_aged_balance_sums_to_total(items, as_of):
    totals = aged_balance(items, as_of)
    assert list(totals) == list(BUCKETS)
    assert sum(totals.values()) == sum(b for _, b in items)
    for due, balance in items:
        assert balance <= totals[bucket(due, as_of)]


@given(dates, st.integers(-200, 200))
def test_bucket_bounds_agree_with_bucket(as_of, offset):
    due = as_of + timedelta(days=offset)
    bounds = bucket_bounds(as_of)
    assert list(bounds) == list(BUCKETS)
    containing = [name for name, (low, high) in bounds.items()
                  if (low is None or low <= due) and (high is None or due <= high)]
    assert containing == [bucket(due, as_of)]  # exactly one range, and the same bucket


def test_bucket_bounds_cover_every_due_date_in_a_range():
    # Exhaustive over a year either side, not just sampled.
    bounds = bucket_bounds(AS_OF)
    for offset in range(-366, 367):
        due = AS_OF + timedelta(days=offset)
        hits = [n for n, (lo, hi) in bounds.items() if (lo is None or lo <= due) and (hi is None or due <= hi)]
        assert hits == [bucket(due, AS_OF)], due


# --- DSO (countback) ----------------------------------------------------------------------

def test_dso_countback_partial_second_month():
    # Outstanding 25 000. June (30 days) sold 10 000: absorbed whole -> 30 days, 15 000 left.
    # May (31 days) sold 20 000: 15 000 / 20 000 of it -> 31 x 0.75 = 23.25 days.
    # DSO = 30 + 23.25 = 53.25 -> 53.3 (one decimal, half up).
    periods = [Period(30, 10_000), Period(31, 20_000), Period(30, 30_000)]
    assert dso_countback(25_000, periods) == Decimal("53.3")


def test_dso_countback_within_first_month():
    # Outstanding 5 000 of June's 20 000 sales: 30 x 5 000 / 20 000 = 7.5 days.
    assert dso_countback(5_000, [Period(30, 20_000), Period(31, 1)]) == Decimal("7.5")


def test_dso_countback_exact_month_boundary():
    # Exactly June's and May's sales: 30 + 31 = 61 days, April untouched.
    assert dso_countback(30_000, [Period(30, 10_000), Period(31, 20_000), Period(30, 5)]) == Decimal("61.0")


def test_dso_countback_month_without_sales_counts_whole():
    # June sold nothing: its 30 days pass entirely; then 3 000 of May's 6 000 -> 31 / 2 = 15.5.
    # DSO = 30 + 15.5 = 45.5.
    assert dso_countback(3_000, [Period(30, 0), Period(31, 6_000)]) == Decimal("45.5")


def test_dso_countback_more_than_history():
    # 1 000 000 outstanding against 3 months of 1 000 sales: capped at the history, 30+31+30 = 91.
    assert dso_countback(1_000_000, [Period(30, 1_000), Period(31, 1_000), Period(30, 1_000)]) == Decimal("91.0")


def test_dso_countback_rounding():
    # 1 of 3 sold in a 31-day month: 31 / 3 = 10.333... -> 10.3; 2 of 3 -> 20.666... -> 20.7.
    assert dso_countback(1, [Period(31, 3)]) == Decimal("10.3")
    assert dso_countback(2, [Period(31, 3)]) == Decimal("20.7")


periods_strategy = st.lists(st.builds(Period, st.integers(28, 31), st.integers(0, 10**9)), min_size=1, max_size=12)


@given(periods_strategy)
def test_dso_nothing_outstanding_is_zero(periods):
    assert dso_countback(0, periods) == 0
    assert dso_countback(-500, periods) == 0  # a credit balance is not a receivable


@given(periods_strategy, st.integers(0, 10**10), st.integers(0, 10**10))
def test_dso_monotone_in_outstanding(periods, a, b):
    low, high = sorted((a, b))
    d_low, d_high = dso_countback(low, periods), dso_countback(high, periods)
    assert isinstance(d_high, Decimal)
    assert Decimal(0) <= d_low <= d_high <= sum(p.days for p in periods)


@given(periods_strategy)
def test_dso_all_sales_outstanding_is_whole_history(periods):
    total = sum(p.sales for p in periods)
    if total:
        # Every sale still unpaid: DSO spans every month up to the oldest one with sales.
        last = max(i for i, p in enumerate(periods) if p.sales > 0)
        assert dso_countback(total, periods) == sum(p.days for p in periods[:last + 1])


def test_countback_periods_are_contiguous_calendar_months():
    periods = countback_periods(date(2026, 3, 31), 12)
    assert len(periods) == 12
    assert periods[0] == (date(2026, 2, 28), date(2026, 3, 31))
    assert periods[1] == (date(2026, 1, 31), date(2026, 2, 28))
    assert periods[-1][0] == date(2025, 3, 31)
    for newer, older in zip(periods, periods[1:]):
        assert older[1] == newer[0]
    assert sum((end - start).days for start, end in periods) == 365


@given(dates, st.integers(0, 40))
def test_months_back(as_of, n):
    back = months_back(as_of, n)
    assert (as_of.year * 12 + as_of.month) - (back.year * 12 + back.month) == n
    assert back.day == as_of.day or (back.day < as_of.day and (back + timedelta(days=1)).day == 1)


# --- CEI ---------------------------------------------------------------------------------

def test_cei_worked_examples():
    # (10 000 + 5 000 - 6 000) / (10 000 + 5 000 - 2 000) x 100 = 9 000 / 13 000 x 100 = 69.23 -> 69.2
    assert cei(10_000, 5_000, 6_000, 2_000) == Decimal("69.2")
    # Everything collectable was collected: closing is all current -> 100.
    assert cei(1_000, 500, 300, 300) == Decimal("100.0")
    # Nothing collected: closing = opening + sales -> 0.
    assert cei(1_000, 500, 1_500, 0) == Decimal("0.0")
    # 2 / 3 x 100 = 66.666... -> 66.7
    assert cei(3, 0, 1, 0) == Decimal("66.7")


@pytest.mark.parametrize("args", [(0, 0, 0, 0), (100, 0, 100, 100), (0, 100, 100, 200), (-50, 0, 0, 0)])
def test_cei_none_when_nothing_collectable(args):
    assert cei(*args) is None


def test_cei_window_is_thirty_days():
    assert cei_window(date(2026, 3, 31)) == (date(2026, 3, 1), date(2026, 3, 31))
