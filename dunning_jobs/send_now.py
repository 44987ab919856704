""""Send the next step now" for one debtor (the back office's debtor page): today's dunning day,
narrowed to that debtor, through the one path every reminder takes: the planner's statement
(the ladder, its 7-day gap, the holds: disputes, promises, payments in flight, pauses), the
composer (one e-mail a day per debtor: its unique daily key), the outbox (which sends after
commit, on its next pass). Nothing here decides a step on its own, so nothing can go twice or
skip a rung; when nothing can go, services/next_step.py says why and from which day."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from portal.domain.calendar import today_for
from portal.extensions import db
from portal.models import Creditor, Debtor, Reminder, utcnow
from portal.services import dunning_days, events, next_step
from portal.services.composing import compose_debtor
from portal.services.plans import PROFILE_OFFSETS, ensure_default_plans, plans_for

from . import planner


@dataclass
class SendNow:
    planned: int = 0
    #: messages written to the outbox (or the print queue) for the debtor now
    composed: int = 0
    awaiting_approval: int = 0
    #: planned, but the creditor holds its dunning days: composed once the day is released
    held: bool = False
    #: planned, but the debtor had its e-mail today already: it goes with tomorrow's
    waiting: int = 0
    outlook: list = field(default_factory=list)


def send_next_step(creditor: Creditor, debtor: Debtor, user: str) -> SendNow:
    """Plan today's due steps for the debtor and compose them. Event dunning.sent_now (what was
    planned and composed, by whom)."""
    day = today_for(creditor)
    result = SendNow()
    plans = plans_for(creditor.id)
    if not PROFILE_OFFSETS.keys() <= {p.profile for p in plans}:
        ensure_default_plans(creditor.id)  # commits: before the lock
        plans = plans_for(creditor.id)
    planner.lock_creditor(creditor.id)  # as a dunning run of this creditor: one planner at a time
    now = utcnow()
    result.planned = planner._plan_steps(creditor, plans, day, now, False, debtor_id=debtor.id)
    result.awaiting_approval = planner._record_awaiting(creditor.id, now)
    db.session.commit()
    if dunning_days.held_days(creditor.id):
        result.held = True
    else:
        result.composed = compose_debtor(creditor, debtor.id, day)
    result.waiting = db.session.scalar(select(func.count()).select_from(Reminder).where(
        Reminder.debtor_id == debtor.id, Reminder.status == "planned", Reminder.message_id.is_(None))) or 0
    events.record("dunning.sent_now", creditor_id=creditor.id, debtor_id=debtor.id, actor="creditor", user=user,
                  date=day.isoformat(), planned=result.planned, composed=result.composed,
                  awaiting_approval=result.awaiting_approval, held=result.held)
    db.session.commit()
    if not (result.planned or result.composed):
        result.outlook = next_step.outlook(creditor, debtor, day)
    return result
