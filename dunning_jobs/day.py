"""A creditor's dunning day: plan, compose, then send — the one function the CLI, the
in-process scheduler and the Celery tasks all call.

One creditor never stops another: a failure while planning or composing for one creditor is
rolled back, recorded (event `dunning.failed`, the run's `failed` count, the creditor's
dashboard) and the run goes on with the next one, then sends what the others composed.

A creditor who holds its days (Creditor.hold_dunning) gets its day planned but not composed:
nothing of a held day reaches the outbox, so no path (CLI, scheduler, Celery) can send it, until
a person releases the day in the back office (portal/services/dunning_days.py composes it then).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.domain.calendar import today_for
from portal.extensions import db
from portal.models import Creditor, DunningDay
from portal.services import dunning_days, reminders

from . import auto_collect, digest, outbox, planner, promises


@dataclass
class DayResult:
    date: str
    planned: int = 0
    sent: int = 0
    awaiting_approval: int = 0
    failed: int = 0
    #: creditors whose day is held until a person releases it (nothing of theirs was sent)
    held: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def mark_day(creditor_id: int, day: date, held: bool = False) -> bool:
    """Record that this creditor's day has started (held if the creditor holds its days); False
    when it already had."""
    try:
        with db.session.begin_nested():
            db.session.add(DunningDay(creditor_id=creditor_id, dunning_date=day, held=held))
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()
        return False


class StageFailed(Exception):
    """A creditor's day stopped at one stage (planning, composing, digest) by the error it carries."""

    def __init__(self, stage: str, error: BaseException):
        super().__init__(f"{stage}: {type(error).__name__}: {error}")
        self.stage, self.error = stage, error


def _stage(stage: str, fn, *args):
    try:
        return fn(*args)
    except Exception as e:
        raise StageFailed(stage, e) from e


def plan_creditor(creditor: Creditor, day: date, result: DayResult) -> None:
    """Plan and compose (no sending): safe to repeat, safe to run concurrently. Raises
    StageFailed, the creditor's transaction rolled back."""
    mark_day(creditor.id, day, held=creditor.hold_dunning)
    _stage("planning", promises.settle, creditor, day)  # a promise broken yesterday lets dunning resume today
    # Collections first: an invoice collected today is in flight, so it is not reminded today.
    _stage("planning", auto_collect.collect_due, creditor, day)
    planned, awaiting = _stage("planning", planner.plan_day, creditor, day)
    result.planned += planned
    result.awaiting_approval += awaiting
    if dunning_days.held_days(creditor.id):
        result.held += 1  # planned, not composed: it waits for a person to release it
    else:
        _stage("composing", reminders.compose_day, creditor, day)
    _stage("digest", digest.send_digests, creditor, day)  # notices for users who chose a daily digest


def run(day: date | None = None, creditor_ids: list[int] | None = None) -> DayResult:
    """`dunning run`: every creditor's day (default: today in each one's time zone), then the outbox."""
    q = select(Creditor).order_by(Creditor.id)
    if creditor_ids is not None:
        q = q.where(Creditor.id.in_(creditor_ids))
    creditors = db.session.scalars(q).all()
    dates = {c.id: day or today_for(c) for c in creditors}
    result = DayResult(date=(day or (dates[creditors[0].id] if creditors else date.today())).isoformat())
    for creditor in creditors:
        creditor_id = creditor.id  # read before a rollback expires the row
        try:
            plan_creditor(creditor, dates[creditor_id], result)
        except Exception as e:  # noqa: BLE001 (whatever it is, the next creditor's day goes on)
            db.session.rollback()
            stage, error = (e.stage, e.error) if isinstance(e, StageFailed) else ("planning", e)
            result.failed += 1
            current_app.logger.error("dunning day of creditor %s failed while %s", creditor_id, stage, exc_info=error)
            dunning_days.record_failure(creditor_id, dates[creditor_id], stage, error)
    sent = outbox.send_pending()
    result.sent = sent.sent
    result.failed += sent.failed
    return result
