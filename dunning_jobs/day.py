"""A creditor's dunning day: plan, compose, then send — the one function the CLI, the
in-process scheduler and the Celery tasks all call."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.domain.calendar import today_for
from portal.extensions import db
from portal.models import Creditor, DunningDay
from portal.services import reminders

from . import auto_collect, digest, outbox, planner, promises


@dataclass
class DayResult:
    date: str
    planned: int = 0
    sent: int = 0
    awaiting_approval: int = 0
    failed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def mark_day(creditor_id: int, day: date) -> bool:
    """Record that this creditor's day has started; False when it already had."""
    try:
        with db.session.begin_nested():
            db.session.add(DunningDay(creditor_id=creditor_id, dunning_date=day))
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()
        return False


def plan_creditor(creditor: Creditor, day: date, result: DayResult) -> None:
    """Plan and compose (no sending): safe to repeat, safe to run concurrently."""
    mark_day(creditor.id, day)
    promises.settle(creditor, day)  # a promise broken yesterday lets dunning resume today
    # Collections first: an invoice collected today is in flight, so it is not reminded today.
    auto_collect.collect_due(creditor, day)
    planned, awaiting = planner.plan_day(creditor, day)
    result.planned += planned
    result.awaiting_approval += awaiting
    reminders.compose_day(creditor, day)
    digest.send_digests(creditor, day)  # notices for users who chose a daily digest


def run(day: date | None = None, creditor_ids: list[int] | None = None) -> DayResult:
    """`dunning run`: every creditor's day (default: today in each one's time zone), then the outbox."""
    q = select(Creditor).order_by(Creditor.id)
    if creditor_ids is not None:
        q = q.where(Creditor.id.in_(creditor_ids))
    creditors = db.session.scalars(q).all()
    dates = {c.id: day or today_for(c) for c in creditors}
    result = DayResult(date=(day or (dates[creditors[0].id] if creditors else date.today())).isoformat())
    for creditor in creditors:
        plan_creditor(creditor, dates[creditor.id], result)
    sent = outbox.send_pending()
    result.sent, result.failed = sent.sent, sent.failed
    return result
