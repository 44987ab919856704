"""Calendar-day arithmetic in SQL, the same on PostgreSQL and SQLite: the whole days between two
dates, and the creditor's calendar day of a UTC timestamp (payments are dated in local days,
messages are stamped in UTC). The reports compare the two inside one statement."""
from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from ..extensions import db

#: the SQLite function that stands for PostgreSQL's `timezone(zone, ts)::date`
_SQLITE_LOCAL_DAY = "relance_local_day"


class days_between(FunctionElement):  # noqa: N801  (reads as an SQL function)
    """later - earlier, in whole days (both dates)."""
    type = Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between, "postgresql")
def _days_pg(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return f"(CAST({compiler.process(later, **kw)} AS DATE) - CAST({compiler.process(earlier, **kw)} AS DATE))"


@compiles(days_between, "sqlite")
def _days_sqlite(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return (f"CAST(julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)})"
            " AS INTEGER)")


class local_day(FunctionElement):  # noqa: N801
    """The calendar date, in the IANA zone given, of a UTC timestamp column."""
    type = Date()
    inherit_cache = True
    name = "local_day"


@compiles(local_day, "postgresql")
def _local_pg(element, compiler, **kw):
    ts, zone = list(element.clauses)
    return f"CAST(timezone(CAST({compiler.process(zone, **kw)} AS TEXT), {compiler.process(ts, **kw)}) AS DATE)"


@compiles(local_day, "sqlite")
def _local_sqlite(element, compiler, **kw):
    ts, zone = list(element.clauses)
    return f"{_SQLITE_LOCAL_DAY}({compiler.process(ts, **kw)}, {compiler.process(zone, **kw)})"


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _sqlite_local_day(stamp: str | None, zone: str) -> str | None:
    """SQLite keeps UTCDateTime as ISO text without an offset (UTC)."""
    if stamp is None:
        return None
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(_zone(zone)).date().isoformat()


def ready() -> None:
    """Call before a statement using local_day: on SQLite, registers the function on the
    session's connection (cheap, idempotent); PostgreSQL has it built in."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        connection.connection.driver_connection.create_function(_SQLITE_LOCAL_DAY, 2, _sqlite_local_day,
                                                                deterministic=True)


def as_date(value) -> date | None:
    """A date read back from an aggregate (SQLite may answer its text)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
