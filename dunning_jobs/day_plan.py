"""The day's plan, before it goes: what the planner would plan on a day (its own statements,
rolled back: planner.preview) and what is planned already and not sent, per step and per
debtor, with the day's hold. Read only; the back office's "Day's plan" page shows it."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from portal.extensions import db
from portal.models import Creditor, Debtor, Invoice, OutboxMessage, Reminder
from portal.services import approvals, dunning_days

from . import planner

#: the order steps are listed in; other codes (a creditor's own steps) follow
STEP_ORDER = ("courtesy", "reminder_1", "reminder_2", "firm", "formal_notice", "thank_you")


@dataclass
class Item:
    step: str
    invoice: Invoice
    #: "new": the run would plan it; "planned": planned, not composed yet; "composed": in the
    #: outbox, not sent yet; "awaiting_approval": a formal notice for the approval list
    state: str


@dataclass
class DebtorPlan:
    debtor: Debtor
    items: list[Item] = field(default_factory=list)


@dataclass
class DayPlan:
    day: date
    hold: bool
    ran: bool  # the day's run has started (a dunning_day row)
    held_days: list[date]
    debtors: list[DebtorPlan]
    #: (step code, what the run would add, what is planned already and not sent)
    steps: list[tuple[str, int, int]]
    awaiting_approvals: int
    failures: list
    offer_hold: bool  # invoices imported since the last run, hold off


def build(creditor: Creditor, day: date) -> DayPlan:
    new = planner.preview(creditor, day)
    unsent = db.session.execute(
        select(Reminder.debtor_id, Reminder.invoice_id, Reminder.step_code, Reminder.status, OutboxMessage.status)
        .outerjoin(OutboxMessage, OutboxMessage.id == Reminder.message_id)
        .where(Reminder.creditor_id == creditor.id, Reminder.status == "planned")).all()
    rows = [(d, i, s, "awaiting_approval" if st == "awaiting_approval" else "new") for d, i, s, st in new]
    rows += [(d, i, s, "composed" if message_status == "pending" else "planned")
             for d, i, s, _st, message_status in unsent]
    invoices = {i.id: i for i in db.session.scalars(select(Invoice).where(Invoice.id.in_({r[1] for r in rows})))}
    debtors = {d.id: DebtorPlan(d) for d in db.session.scalars(
        select(Debtor).where(Debtor.id.in_({r[0] for r in rows})).order_by(Debtor.name))}
    for debtor_id, invoice_id, step, state in sorted(rows, key=lambda r: (_rank(r[2]), r[1])):
        debtors[debtor_id].items.append(Item(step, invoices[invoice_id], state))
    added = Counter(s for _d, _i, s, state in rows if state in ("new", "awaiting_approval"))
    waiting = Counter(s for _d, _i, s, state in rows if state in ("planned", "composed"))
    steps = [(s, added[s], waiting[s]) for s in sorted(set(added) | set(waiting), key=_rank)]
    return DayPlan(day=day, hold=creditor.hold_dunning, ran=dunning_days.day_row(creditor.id, day) is not None,
                   held_days=dunning_days.held_days(creditor.id), debtors=list(debtors.values()), steps=steps,
                   awaiting_approvals=approvals.waiting_count(creditor.id, day),
                   failures=dunning_days.recent_failures(creditor.id),
                   offer_hold=dunning_days.import_not_run_yet(creditor))


def _rank(step: str) -> tuple[int, str]:
    return (STEP_ORDER.index(step) if step in STEP_ORDER else len(STEP_ORDER), step)
