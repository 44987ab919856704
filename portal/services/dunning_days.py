"""A creditor's dunning days as the back office sees them: the hold setting, releasing a held
day, and the failures a run recorded (dunning_jobs/day.py writes them, the dashboard shows them).

A held day is planned but not composed (dunning_jobs/day.py): releasing it composes what waits,
and the next outbox pass sends it. Composing is per debtor over every planned reminder, so a
release covers the earlier held days too, and nothing is composed while a later one is held.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from ..extensions import db
from ..models import Creditor, DunningDay, Event, utcnow
from . import NotFound, events, reminders

#: how long a failed run stays on the dashboard
FAILURE_DAYS = 7


def held_days(creditor_id: int) -> list[date]:
    """The creditor's days held and not released yet, oldest first."""
    return list(db.session.scalars(
        select(DunningDay.dunning_date).where(DunningDay.creditor_id == creditor_id, DunningDay.held.is_(True),
                                              DunningDay.released_at.is_(None))
        .order_by(DunningDay.dunning_date)))


def day_row(creditor_id: int, day: date) -> DunningDay | None:
    return db.session.scalar(select(DunningDay).where(DunningDay.creditor_id == creditor_id,
                                                      DunningDay.dunning_date == day))


def set_hold(creditor: Creditor, hold: bool, user: str) -> bool:
    """Turn the hold on or off (from the next day that runs); True when it changed. Days held
    already stay held until released."""
    if creditor.hold_dunning == hold:
        return False
    creditor.hold_dunning = hold
    events.record("dunning.hold_changed", creditor_id=creditor.id, actor="creditor", user=user, hold=hold)
    db.session.commit()
    return True


def release(creditor: Creditor, day: date, user: str) -> int | None:
    """Release the held day `day` (and earlier held ones): recorded with who and when, then what
    waits is composed for the next outbox pass unless a later day is still held. Returns the
    messages composed, None when composing failed (recorded as a failed day). NotFound when no
    such held day waits."""
    released = db.session.execute(
        update(DunningDay).where(DunningDay.creditor_id == creditor.id, DunningDay.held.is_(True),
                                 DunningDay.released_at.is_(None), DunningDay.dunning_date <= day)
        .values(released_at=utcnow(), released_by=user)
        .returning(DunningDay.dunning_date)).scalars().all()
    if not released:
        db.session.rollback()
        raise NotFound("no held day to release")
    for d in sorted(released):
        events.record("dunning.released", creditor_id=creditor.id, actor="creditor", user=user, date=d.isoformat())
    db.session.commit()
    if held_days(creditor.id):
        return 0
    creditor_id = creditor.id
    try:
        return reminders.compose_day(creditor, day)
    except Exception as e:  # noqa: BLE001 (released all the same: the next run composes what is left)
        db.session.rollback()
        record_failure(creditor_id, day, "composing", e)
        return None


def record_failure(creditor_id: int, day: date, stage: str, error: BaseException) -> None:
    """The event of a creditor's day that failed, in a transaction of its own; a failure to
    record it (the database gone) is logged and does not stop the run either."""
    try:
        events.record("dunning.failed", creditor_id=creditor_id, actor="system", date=day.isoformat(), stage=stage,
                      error_type=type(error).__name__, error=str(error)[:500])
        db.session.commit()
    except Exception:  # noqa: BLE001
        db.session.rollback()
        current_app.logger.exception("could not record the failure of creditor %s's day", creditor_id)


@dataclass
class Failure:
    at: datetime
    day: date | None
    stage: str
    error_type: str
    error: str


def recent_failures(creditor_id: int, now: datetime | None = None, limit: int = 3) -> list[Failure]:
    """The creditor's failed days of the last FAILURE_DAYS days, newest first."""
    since = (now or utcnow()) - timedelta(days=FAILURE_DAYS)
    rows = db.session.scalars(select(Event).where(Event.creditor_id == creditor_id, Event.type == "dunning.failed",
                                                  Event.at >= since).order_by(Event.id.desc()).limit(limit))
    return [Failure(e.at, _date(e.data.get("date")), e.data.get("stage", ""), e.data.get("error_type", ""),
                    e.data.get("error", "")) for e in rows]


def _date(value) -> date | None:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def import_not_run_yet(creditor: Creditor) -> bool:
    """An import came after the last day that ran, and the hold is off: the moment to offer it."""
    if creditor.hold_dunning:
        return False
    imported = db.session.scalar(select(func.max(Event.at)).where(Event.creditor_id == creditor.id,
                                                                  Event.type == "import.completed"))
    if imported is None:
        return False
    ran = db.session.scalar(select(func.max(DunningDay.started_at)).where(DunningDay.creditor_id == creditor.id))
    return ran is None or ran < imported
