"""When an SMS may go (domain/quiet_hours.py): 08:00-20:00 Monday to Saturday, local time, never on
a French public holiday of the place, with the next allowed instant otherwise."""
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from portal.domain import phones
from portal.domain.quiet_hours import holiday_name, may_send, next_allowed, wait_reason

PARIS = "Europe/Paris"


def local(zone, *args):
    """An instant given by its local wall-clock time in `zone`, as UTC."""
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)


def test_the_french_calendar_has_the_days_the_law_names():
    mainland = [date(2027, 1, 1), date(2027, 3, 29), date(2027, 5, 1), date(2027, 5, 8), date(2027, 5, 6),
                date(2027, 5, 17), date(2027, 7, 14), date(2027, 8, 15), date(2027, 11, 1), date(2027, 11, 11),
                date(2027, 12, 25)]
    assert all(holiday_name(d) for d in mainland)
    assert holiday_name(date(2027, 5, 1)) == "Fête du Travail"
    assert holiday_name(date(2027, 7, 14), language="en_US") == "National Day"
    # abolition of slavery, a different day in each overseas department, and only there
    abolition = {"971": date(2027, 5, 27), "972": date(2027, 5, 22), "973": date(2027, 6, 10),
                 "974": date(2027, 12, 20), "976": date(2027, 4, 27), "MF": date(2027, 5, 28),
                 "BL": date(2027, 10, 9)}
    for subdivision, day in abolition.items():
        assert holiday_name(day, (subdivision,)) == "Abolition de l'esclavage", subdivision
        assert holiday_name(day) is None, day


def test_a_weekday_in_the_day_is_allowed_now():
    at = local(PARIS, 2026, 12, 8, 10, 30)  # a Tuesday
    assert may_send(at, PARIS) and next_allowed(at, PARIS) == at and wait_reason(at, PARIS) is None


def test_20_05_waits_for_08_00_the_next_day():
    at = local(PARIS, 2026, 12, 8, 20, 5)
    assert not may_send(at, PARIS) and wait_reason(at, PARIS) == "night"
    assert next_allowed(at, PARIS) == datetime(2026, 12, 9, 7, 0, tzinfo=timezone.utc)  # 08:00 in Paris (UTC+1)


def test_before_08_00_waits_for_08_00_the_same_day():
    at = local(PARIS, 2026, 12, 8, 7, 59)
    assert next_allowed(at, PARIS) == local(PARIS, 2026, 12, 8, 8, 0)
    assert may_send(local(PARIS, 2026, 12, 8, 8, 0), PARIS)


def test_a_sunday_waits_for_monday():
    at = local(PARIS, 2026, 12, 13, 11, 0)
    assert not may_send(at, PARIS) and wait_reason(at, PARIS) == "sunday"
    assert next_allowed(at, PARIS) == local(PARIS, 2026, 12, 14, 8, 0)


def test_saturday_until_19_59_then_monday():
    assert may_send(local(PARIS, 2026, 12, 12, 19, 59), PARIS)
    at = local(PARIS, 2026, 12, 12, 20, 0)
    assert not may_send(at, PARIS)
    assert next_allowed(at, PARIS) == local(PARIS, 2026, 12, 14, 8, 0)


def test_saturday_evening_before_easter_monday_waits_for_tuesday_across_the_change_to_summer_time():
    at = local(PARIS, 2027, 3, 27, 20, 0)  # Saturday; Sunday 28 March the clocks go forward
    assert next_allowed(at, PARIS) == datetime(2027, 3, 30, 6, 0, tzinfo=timezone.utc)  # 08:00 CEST


def test_the_change_back_to_winter_time_keeps_08_00_local():
    at = local(PARIS, 2026, 10, 24, 20, 30)  # Saturday; Sunday 25 October the clocks go back
    assert next_allowed(at, PARIS) == datetime(2026, 10, 26, 7, 0, tzinfo=timezone.utc)


def test_1_may_and_14_july_wait_for_the_next_working_day():
    may_day = local(PARIS, 2026, 5, 1, 10, 0)  # a Friday
    assert not may_send(may_day, PARIS) and wait_reason(may_day, PARIS) == "holiday: Fête du Travail"
    assert next_allowed(may_day, PARIS) == local(PARIS, 2026, 5, 2, 8, 0)  # Saturday is a sending day
    bastille = local(PARIS, 2026, 7, 14, 15, 0)  # a Tuesday
    assert not may_send(bastille, PARIS)
    assert next_allowed(bastille, PARIS) == datetime(2026, 7, 15, 6, 0, tzinfo=timezone.utc)
    # the evening before a holiday goes past it
    assert next_allowed(local(PARIS, 2026, 7, 13, 20, 0), PARIS) == local(PARIS, 2026, 7, 15, 8, 0)


def test_a_number_in_la_reunion_follows_its_own_clock_and_holidays():
    zone, subdivisions = phones.sending_clock("+262692123456", PARIS)
    assert (zone, subdivisions) == ("Indian/Reunion", ("974",))
    # 05:00 UTC: 09:00 in La Réunion (UTC+4), 06:00 in Paris
    at = datetime(2026, 12, 8, 5, 0, tzinfo=timezone.utc)
    assert may_send(at, zone, subdivisions) and not may_send(at, PARIS)
    # 20 December 2027, a Monday: abolition of slavery in La Réunion, a working day in Paris
    saturday_evening = local(zone, 2027, 12, 18, 20, 0)
    assert next_allowed(saturday_evening, zone, subdivisions) == datetime(2027, 12, 21, 4, 0, tzinfo=timezone.utc)
    assert next_allowed(local(PARIS, 2027, 12, 18, 20, 0), PARIS) == local(PARIS, 2027, 12, 20, 8, 0)


def test_a_guadeloupe_mobile_skips_the_holidays_of_saint_martin_and_saint_barthelemy_too():
    zone, subdivisions = phones.sending_clock("+590690001234", PARIS)
    assert zone == "America/Guadeloupe" and set(subdivisions) == {"971", "BL", "MF"}
    # 27 May 2027 (Guadeloupe), 28 May (Saint-Martin): Thursday and Friday; Saturday is open
    assert next_allowed(local(zone, 2027, 5, 26, 20, 0), zone, subdivisions) == local(zone, 2027, 5, 29, 8, 0)


def test_a_creditor_overseas_counts_its_own_holidays():
    zone, subdivisions = phones.sending_clock("+33612345678", "Indian/Reunion")
    assert (zone, subdivisions) == ("Indian/Reunion", ("974",))
    assert phones.sending_clock("+33612345678", PARIS) == (PARIS, ())


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        may_send(datetime(2026, 12, 8, 10, 0), PARIS)
