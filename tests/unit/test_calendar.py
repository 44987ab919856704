"""Local dates in a creditor's time zone (domain/calendar.py)."""
from datetime import date, datetime, timezone
from types import SimpleNamespace

from portal.domain.calendar import day_start, local_now, today_for, today_in

# 23:30 UTC on 31 December: already 1 January in Paris, still 31 December in New York.
LATE_UTC = datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc)


def test_today_is_the_local_date_not_the_servers():
    assert today_in("Europe/Paris", LATE_UTC) == date(2027, 1, 1)
    assert today_in("America/New_York", LATE_UTC) == date(2026, 12, 31)
    assert today_for(SimpleNamespace(timezone="Europe/Paris"), LATE_UTC) == date(2027, 1, 1)


def test_local_now_keeps_the_instant():
    local = local_now("Europe/Paris", LATE_UTC)
    assert local == LATE_UTC and local.strftime("%H:%M") == "00:30"


def test_day_start_is_local_midnight_in_utc():
    assert day_start(date(2026, 7, 1), "Europe/Paris") == datetime(2026, 6, 30, 22, 0, tzinfo=timezone.utc)
    assert day_start(date(2026, 1, 1), "Europe/Paris") == datetime(2025, 12, 31, 23, 0, tzinfo=timezone.utc)
