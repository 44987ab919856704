"""The one-statement planner against the plain rule (the ladder) across every plan at once:
debtors of each profile (and of a profile without a plan of its own, which falls back to
standard), invoices on every rung, sent at every distance, with rows already there for the step
due (cancelled ones are planned again, the others block; thank-you notes do not count), charges
items (never planned), and the conditions that stop reminding (dispute, payment in flight, live
promise)."""
from __future__ import annotations

import itertools
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, func, select, text

from dunning_jobs import planner
from portal.domain.schedule import Step, due_step
from portal.extensions import db
from portal.models import (Creditor, Debtor, DunningPlan, Event, Invoice, PaymentAttempt, PaymentAttemptLine,
                           PaymentPromise, Reminder)
from portal.services import ledger
from portal.services.plans import ensure_default_plans, plans_for

DAY = date(2026, 6, 15)
PROFILES = ["standard", "key_account", "risky", "public_sector", "no_plan_of_its_own"]
counter = itertools.count()

invoice = st.fixed_dictionaries({
    "profile": st.sampled_from(PROFILES),
    "age": st.integers(-20, 70),
    "reached": st.integers(0, 4),
    "sent_ago": st.integers(0, 40),
    # on rung 0: a notice before the due date went, sent_ago days ago (its day on the invoice)
    "courtesy_sent": st.booleans(),
    # a row already there for the step the rule picks: None or its status
    "existing": st.sampled_from([None, None, "planned", "awaiting_approval", "cancelled", "failed", "skipped"]),
    "kind": st.sampled_from(["invoice", "invoice", "invoice", "charges"]),
    "thank_you": st.booleans(),
    "disputed": st.booleans(),
    # a payment attempt for the invoice in this status, if any
    "attempt": st.sampled_from([None, None, "processing", "failed"]),
    # a promise: (status, days from DAY to the promised date), if any
    "promise": st.sampled_from([None, None, ("live", 0), ("live", 3), ("live", -1), ("kept", 5)]),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(invoice, min_size=1, max_size=12), through_candidates=st.booleans())
def test_every_plan_matches_the_rule(app, creditor, cases, through_candidates):
    # Hypothesis reuses the fixture's database: start each example from an empty ledger.
    for table in (Reminder, Event, PaymentAttemptLine, PaymentAttempt, PaymentPromise, Invoice, Debtor):
        db.session.execute(delete(table))
    db.session.commit()
    owner = db.session.get(Creditor, creditor.id)
    ensure_default_plans(owner.id)
    plans = {p.profile: p for p in plans_for(owner.id)}
    debtors = {}
    for profile in PROFILES:
        debtor, _ = ledger.upsert_debtor(owner, f"D-{profile}", {"name": profile, "email": "d@example.com"})
        debtor.profile = profile  # the last one has no plan: the standard plan serves it
        debtors[profile] = debtor
    db.session.commit()
    expected = {}
    for case in cases:
        debtor = debtors[case["profile"]]
        plan = plans.get(case["profile"], plans["standard"])
        by_position = {s.position: s for s in plan.steps}
        due = DAY - timedelta(days=case["age"])
        inv, _ = ledger.upsert_invoice(owner, f"M-{next(counter)}", {
            "debtor_ref": debtor.ref, "issue_date": (due - timedelta(days=30)).isoformat(),
            "due_date": due.isoformat(), "amount": "10.00", "currency": "EUR"})
        inv.disputed, inv.kind = case["disputed"], case["kind"]
        sent_on = DAY - timedelta(days=case["sent_ago"]) if case["reached"] or case["courtesy_sent"] else None
        inv.rung_reached, inv.rung_sent_on = case["reached"], sent_on
        rule_steps = [Step(s.code, s.position, s.offset_days) for s in plan.steps]
        step = due_step(rule_steps, due, DAY, case["reached"], sent_on)
        if step is not None and case["existing"]:
            db.session.add(Reminder(creditor_id=owner.id, debtor_id=debtor.id, invoice_id=inv.id,
                                    step_id=by_position[step.position].id, step_code=step.code,
                                    position=step.position, status=case["existing"],
                                    dunning_date=DAY - timedelta(days=5)))
        if case["thank_you"]:  # position 0, never counts as a reached step
            db.session.add(Reminder(creditor_id=owner.id, debtor_id=debtor.id, invoice_id=inv.id,
                                    step_code="thank_you", position=0, status="sent",
                                    dunning_date=DAY - timedelta(days=20)))
        if case["attempt"]:
            attempt = PaymentAttempt(creditor_id=owner.id, debtor_id=debtor.id, provider="stripe",
                                     provider_ref=f"cs_{next(counter)}", amount=1000, currency="EUR",
                                     status=case["attempt"])
            attempt.lines.append(PaymentAttemptLine(invoice_id=inv.id, amount=1000))
            db.session.add(attempt)
        if case["promise"]:
            status, days = case["promise"]
            db.session.add(PaymentPromise(creditor_id=owner.id, debtor_id=debtor.id, invoice_id=inv.id,
                                          promised_date=DAY + timedelta(days=days), status=status))
        db.session.commit()
        stopped = (case["disputed"] or case["attempt"] == "processing" or case["kind"] == "charges"
                   or case["existing"] not in (None, "cancelled")
                   or (case["promise"] is not None and case["promise"][0] == "live" and case["promise"][1] >= 0))
        rungs = sorted((s for s in plan.steps if s.offset_days > 0), key=lambda s: s.position)
        expected[inv.id] = None if stopped or step is None else (
            step.code, step.position, by_position[step.position].id,
            "awaiting_approval" if by_position[step.position].requires_approval else "planned",
            rungs.index(by_position[step.position]) + 1 if step.offset_days > 0 else None)

    statements = []
    on_postgresql = db.engine.dialect.name == "postgresql"
    if on_postgresql and through_candidates:
        # PostgreSQL may read so small a table in parallel: the planner selects through its
        # temporary table, as on a large one (this transaction only: plan_day commits).
        db.session.execute(text("SET LOCAL min_parallel_table_scan_size = 0"))

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        planned, awaiting = planner.plan_day(owner, DAY)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    selected_first = any(s.startswith("CREATE TEMPORARY TABLE planner_candidate") for s in statements)
    assert selected_first == (on_postgresql and through_candidates)

    got = dict.fromkeys(expected)
    for invoice_id, code, position, step_id, status, rung, message_id in db.session.execute(
            select(Reminder.invoice_id, Reminder.step_code, Reminder.position, Reminder.step_id, Reminder.status,
                   Reminder.rung, Reminder.message_id).where(Reminder.dunning_date == DAY)):
        assert got[invoice_id] is None, "two steps planned for one invoice on one day"
        assert message_id is None
        got[invoice_id] = (code, position, step_id, status, rung)
    assert got == expected
    assert planned == sum(v is not None for v in expected.values())
    assert awaiting == sum(v is not None and v[3] == "awaiting_approval" for v in expected.values())
    assert awaiting == db.session.scalar(select(func.count()).select_from(Event)
                                         .where(Event.type == "reminder.awaiting_approval"))
    # A second run the same day plans nothing more.
    assert planner.plan_day(owner, DAY) == (0, 0)


def test_plan_without_steps_plans_nothing_for_its_debtors(app, creditor):
    """A plan emptied of its steps leaves its debtors alone; the other plans carry on."""
    owner = db.session.get(Creditor, creditor.id)
    ensure_default_plans(owner.id)
    risky = db.session.scalar(select(DunningPlan).where(DunningPlan.creditor_id == owner.id,
                                                        DunningPlan.profile == "risky"))
    risky.steps.clear()
    db.session.commit()
    for ref, profile in (("R", "risky"), ("S", "standard")):
        debtor, _ = ledger.upsert_debtor(owner, ref, {"name": ref, "email": "d@example.com"})
        debtor.profile = profile
        due = DAY - timedelta(days=40)
        ledger.upsert_invoice(owner, f"F-{ref}", {"debtor_ref": ref, "issue_date": (due - timedelta(days=30)).isoformat(),
                                                  "due_date": due.isoformat(), "amount": "10.00", "currency": "EUR"})
    assert planner.plan_day(owner, DAY) == (1, 0)  # 40 days late, first seen: the first rung
    rows = db.session.execute(select(Invoice.number, Reminder.step_code).join(Invoice, Invoice.id == Reminder.invoice_id)).all()
    assert rows == [("F-S", "reminder_1")]
