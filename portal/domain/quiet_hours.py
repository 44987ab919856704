"""When an SMS may reach a debtor: 08:00 to 20:00, Monday to Saturday, in the recipient's local
time (the creditor's zone, or the overseas territory the number rings in), never on a French
public holiday of that place (CONTRACT §9). Anything else waits for the next allowed instant.

Times are aware datetimes; local arithmetic goes through zoneinfo, so a change of summer time
moves the window with the clock (08:00 local stays 08:00 local, whatever UTC says).
"""
from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

OPENS, CLOSES = time(8, 0), time(20, 0)  # closes: 20:00 itself is too late
SENDING_DAYS = frozenset(range(6))       # Monday (0) to Saturday (5)
_lock = threading.Lock()  # a holidays calendar fills in a year on first look-up: one at a time


@lru_cache(maxsize=32)
def _calendar(subdivision: str | None, language: str) -> holidays.HolidayBase:
    return holidays.France(subdiv=subdivision, language=language)


def holiday_name(day: date, subdivisions: tuple[str, ...] = (), language: str = "fr") -> str | None:
    """The French public holiday on `day` in mainland France or any of `subdivisions` (holidays'
    codes: "974", "MF"...), by name in `language` ("fr" or "en_US"), or None on a working day."""
    with _lock:
        for subdivision in (None, *subdivisions):
            name = _calendar(subdivision, language).get(day)
            if name:
                return name
    return None


def _sending_day(day: date, subdivisions: tuple[str, ...]) -> bool:
    return day.weekday() in SENDING_DAYS and holiday_name(day, subdivisions) is None


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a naive datetime: give an aware one (UTC)")
    return at


def may_send(at: datetime, time_zone: str, subdivisions: tuple[str, ...] = ()) -> bool:
    """Whether an SMS may be handed over at `at` to someone whose clock is `time_zone`."""
    local = _aware(at).astimezone(ZoneInfo(time_zone))
    return OPENS <= local.time() < CLOSES and _sending_day(local.date(), subdivisions)


def _opening(day: date, zone: ZoneInfo) -> datetime:
    """08:00 on `day` in `zone`, as UTC. Should 08:00 not exist that day (a summer-time jump over
    it, in some zone), zoneinfo reads it with the offset before the jump: the next real instant."""
    return datetime.combine(day, OPENS, zone).astimezone(timezone.utc)


def next_allowed(at: datetime, time_zone: str, subdivisions: tuple[str, ...] = ()) -> datetime:
    """The first instant from `at` on when an SMS may go, in UTC: `at` itself when allowed."""
    zone = ZoneInfo(time_zone)
    local = _aware(at).astimezone(zone)
    if may_send(at, time_zone, subdivisions):
        return at.astimezone(timezone.utc)
    day = local.date()
    if not (local.time() < OPENS and _sending_day(day, subdivisions)):
        day += timedelta(days=1)
        # at most a Sunday and a few holidays in a row: bounded, but say so if the data were odd
        for _ in range(31):
            if _sending_day(day, subdivisions):
                break
            day += timedelta(days=1)
        else:
            raise ValueError(f"no sending day within a month after {local.date()}")
    return _opening(day, zone)


def wait_reason(at: datetime, time_zone: str, subdivisions: tuple[str, ...] = (),
                language: str = "fr") -> str | None:
    """Why an SMS cannot go at `at` ("holiday: Fête du Travail", "sunday", "night"), None if it can.
    For the back office, which says why a step waits."""
    local = _aware(at).astimezone(ZoneInfo(time_zone))
    name = holiday_name(local.date(), subdivisions, language)
    if name:
        return f"holiday: {name}"
    if local.weekday() not in SENDING_DAYS:
        return "sunday"
    if not OPENS <= local.time() < CLOSES:
        return "night"
    return None
