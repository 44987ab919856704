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

# (days late on DAY, rung reached, days since it was sent, disputed, a row already there for the
# step the rule picks: None or its status, on rung 0 whether a courtesy notice was sent)
invoices = st.lists(st.tuples(st.integers(-20, 70), st.integers(0, 4), st.integers(0, 30), st.booleans(),
                              st.sampled_from([None, None, "planned", "cancelled", "failed", "sent"]), st.booleans()),
                    min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=invoices)
def test_planner_matches_the_rule(app, creditor, cases):
    owner = db.session.get(Creditor, creditor.id)
    ensure_default_plans(owner.id)
    steps = db.session.scalars(select(DunningStep).join(DunningPlan).where(
        DunningPlan.creditor_id == owner.id, DunningPlan.profile == "standard")).all()
    rule_steps = [Step(s.code, s.position, s.offset_days) for s in steps]
    by_code = {s.code: s for s in steps}
    ledger.upsert_debtor(owner, "D", {"name": "Debtor", "email": "d@example.com"})
    expected = {}
    for age, reached, sent_ago, disputed, existing, courtesy_sent in cases:
        number = f"P-{next(counter)}"
        due = DAY - timedelta(days=age)
        inv, _ = ledger.upsert_invoice(owner, number, {"debtor_ref": "D", "issue_date": (due - timedelta(days=30)).isoformat(),
                                                       "due_date": due.isoformat(), "amount": "10.00", "currency": "EUR"})
        inv.disputed = disputed
        sent_on = DAY - timedelta(days=sent_ago) if reached or courtesy_sent else None
        inv.rung_reached, inv.rung_sent_on = reached, sent_on
        step = due_step(rule_steps, due, DAY, reached, sent_on)
        if step is not None and existing:  # the rule's step already has its row, planned earlier
            db.session.add(Reminder(creditor_id=owner.id, debtor_id=inv.debtor_id, invoice_id=inv.id,
                                    step_id=by_code[step.code].id, step_code=step.code, position=step.position,
                                    dunning_date=DAY - timedelta(days=3), status=existing))
        db.session.commit()
        blocked = existing not in (None, "cancelled")
        expected[inv.id] = None if disputed or blocked or step is None else step.code
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
    steps = [Step("courtesy", 1, -7), Step("reminder_1", 2, 1), Step("reminder_2", 3, 8), Step("firm", 4, 30)]
    due = date(2026, 3, 31)
    d = lambda n: due + timedelta(days=n)  # noqa: E731
    assert due_step(steps, due, d(-8)) is None
    assert due_step(steps, due, d(-7)).code == "courtesy"
    assert due_step(steps, due, due).code == "courtesy"
    assert due_step(steps, due, d(1)).code == "reminder_1"
    # Loaded 40 days late: the first rung, never higher.
    assert due_step(steps, due, d(40)).code == "reminder_1"
    # The courtesy notice is never due once a rung was sent, nor a rung twice.
    assert due_step(steps, due, due, reached=1, sent_on=d(-1)) is None
    # Nor once it went (rung 0, the day it went): the invoice row says so, no reminder row needed.
    assert due_step(steps, due, d(-3), reached=0, sent_on=d(-7)) is None
    assert due_step(steps, due, d(1), reached=0, sent_on=d(-7)).code == "reminder_1"
    # A notice that went before the courtesy notice's day (an earlier step's) does not stand in for it.
    assert due_step(steps, due, d(-3), reached=0, sent_on=d(-8)).code == "courtesy"
    # Rung 2: its day has come and rung 1 was sent at least max(7, 8 - 1) days earlier.
    assert due_step(steps, due, d(8), reached=1, sent_on=d(1)).code == "reminder_2"
    assert due_step(steps, due, d(8), reached=1, sent_on=d(2)) is None
    assert due_step(steps, due, d(7), reached=1, sent_on=d(-5)) is None  # its day has not come
    # Rung 3: the gap between offsets (22 days) when it is more than 7.
    assert due_step(steps, due, d(52), reached=2, sent_on=d(31)) is None
    assert due_step(steps, due, d(53), reached=2, sent_on=d(31)).code == "firm"
    # Top of the ladder, or a rung reached above the plan's (a plan with fewer rungs since).
    assert due_step(steps, due, d(90), reached=3, sent_on=d(40)) is None
    assert due_step(steps, due, d(90), reached=5, sent_on=d(40)) is None
    # Two steps closer than 7 days: the second waits for the 7 days.
    close = [Step("reminder_1", 1, 1), Step("reminder_2", 2, 3)]
    assert due_step(close, due, d(5), reached=1, sent_on=d(1)) is None
    assert due_step(close, due, d(8), reached=1, sent_on=d(1)).code == "reminder_2"
