"""Aged balance, DSO (countback) and the collection effectiveness index.

Inputs are plain numbers in minor units so that the SQL layer can aggregate and pass
only totals here; every formula is stated where it is computed and in the README.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

BUCKETS = ("not_due", "1_30", "31_60", "61_90", "over_90")


def bucket(due_date: date, as_of: date) -> str:
    """Days overdue = as_of - due_date; an invoice due today is not yet overdue."""
    late = (as_of - due_date).days
    if late <= 0:
        return "not_due"
    if late <= 30:
        return "1_30"
    if late <= 60:
        return "31_60"
    if late <= 90:
        return "61_90"
    return "over_90"


def aged_balance(items: list[tuple[date, int]], as_of: date) -> dict[str, int]:
    """items: (due_date, outstanding minor units) -> totals per bucket."""
    totals = dict.fromkeys(BUCKETS, 0)
    for due, balance in items:
        totals[bucket(due, as_of)] += balance
    return totals


def months_back(as_of: date, n: int) -> date:
    """The same day n calendar months before as_of (clamped to the month's end)."""
    month = as_of.month - n
    year = as_of.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    return date(year, month, min(as_of.day, calendar.monthrange(year, month)[1]))


def countback_periods(as_of: date, months: int = 12) -> list[tuple[date, date]]:
    """Periods (start exclusive, end inclusive), newest first: one calendar month each."""
    return [(months_back(as_of, k + 1), months_back(as_of, k)) for k in range(months)]


@dataclass(frozen=True)
class Period:
    days: int
    sales: int  # invoiced in the period, minor units


def dso_countback(outstanding: int, periods: list[Period]) -> Decimal:
    """Countback DSO: walk back month by month, taking each month's sales out of today's
    receivables; every month fully absorbed counts its days, the last one a pro-rata share.
    Receivables older than the history given count the days of the history only."""
    left = Decimal(outstanding)
    days = Decimal(0)
    for period in periods:
        if left <= 0:
            break
        if period.sales <= 0:
            days += period.days
            continue
        if left >= period.sales:
            left -= period.sales
            days += period.days
        else:
            days += Decimal(period.days) * left / Decimal(period.sales)
            left = Decimal(0)
    return days.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def cei(opening: int, sales: int, closing_total: int, closing_current: int) -> Decimal | None:
    """Collection effectiveness index over a period, in percent:
    (opening receivables + sales - closing receivables)
    / (opening receivables + sales - closing current, i.e. not yet due, receivables) x 100.
    None when nothing was collectable in the period."""
    denominator = opening + sales - closing_current
    if denominator <= 0:
        return None
    value = Decimal(opening + sales - closing_total) * 100 / Decimal(denominator)
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def cei_window(as_of: date) -> tuple[date, date]:
    """The CEI period: the 30 days ending on as_of (opening balance taken at its start)."""
    return as_of - timedelta(days=30), as_of


def bucket_bounds(as_of: date) -> dict[str, tuple[date | None, date | None]]:
    """The same buckets as `bucket`, as inclusive due-date ranges, for SQL to sum over."""
    d = lambda n: as_of - timedelta(days=n)  # noqa: E731
    return {
        "not_due": (as_of, None),
        "1_30": (d(30), d(1)),
        "31_60": (d(60), d(31)),
        "61_90": (d(90), d(61)),
        "over_90": (None, d(91)),
    }
