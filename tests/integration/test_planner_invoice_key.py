"""A reminder's creditor and debtor are its invoice's, by one composite foreign key
(invoice_id, creditor_id, debtor_id) -> invoice: a reminder naming another debtor is refused,
and an invoice moved to another debtor (allowed while nothing is paid) takes its reminders
along, so the planned one goes to the new debtor and never to the old one."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dunning_jobs import planner
from portal.extensions import db
from portal.models import Creditor, DunningStep, Invoice, OutboxMessage, Reminder
from portal.services import ledger, reminders
from portal.services.plans import ensure_default_plans

DAY = date(2026, 6, 15)


def _invoice(owner, number, debtor_ref, age):
    due = DAY - timedelta(days=age)
    inv, _ = ledger.upsert_invoice(owner, number, {"debtor_ref": debtor_ref,
                                                   "issue_date": (due - timedelta(days=30)).isoformat(),
                                                   "due_date": due.isoformat(), "amount": "120.00", "currency": "EUR"})
    return inv


@pytest.fixture
def owner(app, creditor):
    owner = db.session.get(Creditor, creditor.id)
    ensure_default_plans(owner.id)
    for ref, email in (("A", "a@example.com"), ("B", "b@example.com")):
        ledger.upsert_debtor(owner, ref, {"name": f"Debtor {ref}", "email": email})
    return owner


def test_reminder_with_another_debtor_than_its_invoice_is_refused(owner):
    inv = _invoice(owner, "K-1", "A", 2)
    other = ledger.get_debtor(owner.id, "B")
    step = db.session.scalars(select(DunningStep).order_by(DunningStep.position)).first()
    db.session.add(Reminder(creditor_id=owner.id, debtor_id=other.id, invoice_id=inv.id, step_id=step.id,
                            step_code=step.code, position=step.position, dunning_date=DAY, status="planned"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_invoice_moved_to_another_debtor_takes_its_reminders(owner):
    inv = _invoice(owner, "K-2", "A", 2)  # due two days ago: reminder_1 is due
    a, b = ledger.get_debtor(owner.id, "A"), ledger.get_debtor(owner.id, "B")
    planned, _ = planner.plan_day(owner, DAY)
    assert planned == 1
    old = db.session.scalars(select(Reminder).where(Reminder.invoice_id == inv.id)).one()
    assert old.debtor_id == a.id

    # The creditor corrects the invoice's debtor before the reminder is composed.
    _invoice(owner, "K-2", "B", 2)
    db.session.expire_all()
    moved = db.session.scalars(select(Reminder).where(Reminder.invoice_id == inv.id)).all()
    assert [(r.id, r.debtor_id, r.creditor_id) for r in moved] == [(old.id, b.id, owner.id)]
    assert db.session.get(Invoice, inv.id).debtor_id == b.id

    # The same reminder is not planned again, and it is written to B, not to A.
    assert planner.plan_day(owner, DAY) == (0, 0)
    assert reminders.compose_day(owner, DAY) == 1
    messages = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
    assert [(m.debtor_id, m.to_addr) for m in messages] == [(b.id, "b@example.com")]
