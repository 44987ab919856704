"""The column type and clock every model shares: times are stored in UTC and read back aware."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import DateTime

from ..extensions import db

_replayed: datetime | None = None


def utcnow() -> datetime:
    return _replayed or datetime.now(timezone.utc)


@contextmanager
def replaying(moment: datetime):
    """Within it, utcnow() answers `moment`. Only the demo uses it: it replays past dunning days
    through the real code (plan, compose, send, record), so that what that code writes carries
    the day it tells of. Process-wide (the outbox's recorder thread reads it too)."""
    global _replayed
    before, _replayed = _replayed, moment
    try:
        yield
    finally:
        _replayed = before


class UTCDateTime(db.TypeDecorator):
    """Stored as UTC; always read back timezone-aware (SQLite forgets the zone)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime")
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value
