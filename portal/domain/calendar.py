"""Dates in a creditor's time zone: dunning, due dates and payments are counted in local days."""
from __future__ import annotations

from datetime import date, datetime, time, timezone as utc_zone
from typing import Protocol
from zoneinfo import ZoneInfo


class _Zoned(Protocol):
    timezone: str  # an IANA zone name, e.g. "Europe/Paris"


def local_now(timezone: str, now: datetime | None = None) -> datetime:
    """The wall-clock time in `timezone` at `now` (an aware datetime; default: this instant)."""
    zone = ZoneInfo(timezone)
    return datetime.now(zone) if now is None else now.astimezone(zone)


def today_in(timezone: str, now: datetime | None = None) -> date:
    """The calendar date in `timezone` at `now` (default: this instant)."""
    return local_now(timezone, now).date()


def today_for(party: _Zoned, now: datetime | None = None) -> date:
    """Today for anyone with a `timezone` (a creditor): its local date, not the server's."""
    return today_in(party.timezone, now)


def day_start(day: date, timezone: str) -> datetime:
    """Midnight at the start of `day` in `timezone`, as UTC."""
    return datetime.combine(day, time(0), ZoneInfo(timezone)).astimezone(utc_zone.utc)
