"""Cash forecast arithmetic: amounts expected on dates, summed into weeks that start on Monday.
The first week contains today; money expected before today counts in it (it is overdue, and
still expected), money expected after the last week is left out."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta


def week_start(day: date) -> date:
    """The Monday of day's week (ISO weeks)."""
    return day - timedelta(days=day.weekday())


def weekly(expected: Iterable[tuple[date, int]], today: date, weeks: int) -> list[tuple[date, int]]:
    """[(week start, amount)] for `weeks` weeks from today's, from (expected date, amount) pairs."""
    first = week_start(today)
    totals = [0] * weeks
    for day, amount in expected:
        index = max((day - first).days // 7, 0)
        if index < weeks:
            totals[index] += amount
    return [(first + timedelta(weeks=k), total) for k, total in enumerate(totals)]
