"""The planner's set-based SQL plans exactly what the plain rule in domain/schedule.py says."""
from __future__ import annotations

import itertools
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from dunning_jobs import planner
from portal.domain.schedule import Step, due_step
from portal.extensions import db
from portal.models import Creditor, DunningPlan, DunningStep, Event, Invoice, Reminder
from portal.services import ledger
from portal.services.plans import ensure_default_plans

DAY = date(2026, 6, 15)
counter = itertools.count()

invoices = st.lists(st.tuples(st.integers(-20, 60), st.integers(0, 5), st.booleans()), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=invoices)
def test_planner_matches_the_rule(app, creditor, cases):
    owner = db.session.get(Creditor, creditor.id)
    ensure_default_plans(owner.id)
    steps = db.session.scalars(select(DunningStep).join(DunningPlan).where(
        DunningPlan.creditor_id == owner.id, DunningPlan.profile == "standard")).all()
    rule_steps = [Step(s.code, s.position, s.offset_days) for s in steps]
    by_position = {s.position: s for s in steps}
    ledger.upsert_debtor(owner, "D", {"name": "Debtor", "email": "d@example.com"})
    expected = {}
    for age, reached, disputed in cases:
        number = f"P-{next(counter)}"
        due = DAY - timedelta(days=age)
        inv, _ = ledger.upsert_invoice(owner, number, {"debtor_ref": "D", "issue_date": (due - timedelta(days=30)).isoformat(),
                                                       "due_date": due.isoformat(), "amount": "10.00", "currency": "EUR"})
        inv.disputed = disputed
        if reached:
            step = by_position[reached]
            db.session.add(Reminder(creditor_id=owner.id, debtor_id=inv.debtor_id, invoice_id=inv.id, step_id=step.id,
                                    step_code=step.code, position=step.position, dunning_date=DAY - timedelta(days=1),
                                    status="sent"))
        db.session.commit()
        step = None if disputed else due_step(rule_steps, due, DAY, reached)
        expected[inv.id] = step.code if step else None
    planner.plan_day(owner, DAY)
    got = dict.fromkeys(expected)
    for invoice_id, code in db.session.execute(select(Reminder.invoice_id, Reminder.step_code).where(
            Reminder.dunning_date == DAY, Reminder.invoice_id.in_(list(expected)))):
        assert got[invoice_id] is None, "two steps planned for one invoice on one day"
        got[invoice_id] = code
    assert got == expected
    # Clean up for the next example (Hypothesis reuses the fixture's database).
    for table in (Reminder, Event):
        db.session.execute(delete(table))
    db.session.execute(delete(Invoice))
    db.session.commit()


def test_rule_examples():
    steps = [Step("courtesy", 1, -7), Step("reminder_1", 2, 1), Step("firm", 3, 15)]
    due = date(2026, 3, 31)
    assert due_step(steps, due, due - timedelta(days=8)) is None
    assert due_step(steps, due, due - timedelta(days=7)).code == "courtesy"
    assert due_step(steps, due, due).code == "courtesy"
    assert due_step(steps, due, due, reached=1) is None
    assert due_step(steps, due, due + timedelta(days=1), reached=1).code == "reminder_1"
    # Loaded 40 days late: straight to the step its age calls for, not every earlier one.
    assert due_step(steps, due, due + timedelta(days=40)).code == "firm"
    assert due_step(steps, due, due + timedelta(days=40), reached=3) is None
