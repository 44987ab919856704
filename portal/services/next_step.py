"""What dunning will do next for each of a debtor's open invoices, and from which day: the ladder
of domain/schedule.py applied to the invoice's row (the rung reached and the day it was sent), as
the planner applies it, with what holds it (a dispute, a promise, a payment on its way, a pause).
Read only: the debtor page shows it, and "send the next step now" says with it why nothing can
go today ("the last reminder went on X; the next may go from Y")."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select

from ..domain.schedule import Step, due_step, rungs
from ..extensions import db
from ..models import (OPEN_STATUSES, Creditor, Debtor, DunningStep, Invoice, PaymentAttempt, PaymentAttemptLine,
                      PaymentPromise, Reminder)
from . import pauses
from .plans import PROFILE_OFFSETS, ensure_default_plans, plans_for

#: how far ahead the outlook looks for the next step's day: past that, none is shown
HORIZON_DAYS = 400
#: reminder rows that mean the step is done or on its way (a cancelled one is planned again)
WAITING = ("planned", "awaiting_approval")


@dataclass
class Outlook:
    invoice: Invoice
    #: the next step (None: nothing more on the ladder, or held with no known end)
    step: DunningStep | None = None
    #: the first day it may go (planner's day), or the day it was planned for
    on: date | None = None
    #: "due" (its day has come), "later", "planned" (waiting to be composed or sent),
    #: "awaiting_approval", "done" (top of the ladder), "held"
    state: str = "later"
    #: what holds it: "disputed", "promise", "in_flight", "paused" (None: nothing)
    hold: str | None = None
    #: the last rung sent and its day, for "the last reminder went on X"
    last_step: DunningStep | None = None
    last_on: date | None = None


def _plan_steps(creditor_id: int, profile: str | None) -> list[DunningStep]:
    plans = {p.profile: p for p in plans_for(creditor_id)}
    if not PROFILE_OFFSETS.keys() <= plans.keys():  # as the planner does before its first run
        ensure_default_plans(creditor_id)
        plans = {p.profile: p for p in plans_for(creditor_id)}
    plan = plans.get(profile) or plans.get("standard")
    return list(plan.steps) if plan else []


def outlook(creditor: Creditor, debtor: Debtor, today: date) -> list[Outlook]:
    """Per open invoice of the debtor (charges items aside), oldest due first."""
    invoices = db.session.scalars(select(Invoice).where(Invoice.debtor_id == debtor.id, Invoice.kind == "invoice",
                                                        Invoice.status.in_(OPEN_STATUSES))
                                  .order_by(Invoice.due_date, Invoice.id)).all()
    if not invoices:
        return []
    ids = [i.id for i in invoices]
    steps = _plan_steps(creditor.id, debtor.profile)
    by_code = {s.code: s for s in steps}
    rule = [Step(s.code, s.position, s.offset_days) for s in steps]
    ladder = rungs(rule)
    rows: dict[int, dict[str, tuple[str, date]]] = {i: {} for i in ids}
    for invoice_id, code, status, day in db.session.execute(
            select(Reminder.invoice_id, Reminder.step_code, Reminder.status, Reminder.dunning_date)
            .where(Reminder.invoice_id.in_(ids), Reminder.status != "cancelled", Reminder.step_code != "thank_you")):
        rows[invoice_id][code] = (status, day)
    promised = dict(db.session.execute(
        select(PaymentPromise.invoice_id, PaymentPromise.promised_date)
        .where(PaymentPromise.invoice_id.in_(ids), PaymentPromise.status == "live",
               PaymentPromise.promised_date >= today)).all())
    in_flight = set(db.session.scalars(
        select(PaymentAttemptLine.invoice_id).join(PaymentAttempt, PaymentAttempt.id == PaymentAttemptLine.attempt_id)
        .where(PaymentAttemptLine.invoice_id.in_(ids), PaymentAttempt.status == "processing")))
    out = []
    for inv in invoices:
        o = Outlook(inv)
        if inv.rung_reached and inv.rung_reached <= len(ladder):
            o.last_step, o.last_on = by_code.get(ladder[inv.rung_reached - 1].code), inv.rung_sent_on
        waiting = [(code, st, day) for code, (st, day) in rows[inv.id].items() if st in WAITING]
        if waiting:
            code, st, day = max(waiting, key=lambda w: by_code[w[0]].position if w[0] in by_code else 0)
            o.step, o.on, o.state = by_code.get(code), day, st
            out.append(o)
            continue
        start = today
        if inv.disputed:
            o.hold, o.state = "disputed", "held"
        elif inv.id in in_flight:
            o.hold, o.state = "in_flight", "held"
        else:
            end = pauses.pause_end(debtor.id, inv.id, today)
            if end is not None:
                o.hold, start = "paused", end + timedelta(days=1)
            if inv.id in promised and promised[inv.id] + timedelta(days=1) > start:
                o.hold, start = "promise", promised[inv.id] + timedelta(days=1)
            _next(o, rule, by_code, rows[inv.id], start, today)
        out.append(o)
    return out


def _next(o: Outlook, rule: list[Step], by_code: dict, rows: dict, start: date, today: date) -> None:
    """The first day from `start` on which the ladder names a step that has no row yet."""
    inv = o.invoice
    for n in range(HORIZON_DAYS):
        day = start + timedelta(days=n)
        step = due_step(rule, inv.due_date, day, inv.rung_reached, inv.rung_sent_on)
        if step is not None and step.code not in rows:
            o.step, o.on = by_code[step.code], day
            o.state = "due" if day <= today else "later"
            return
    o.state = "done"  # the top of the ladder (or a step that failed): nothing more to plan
