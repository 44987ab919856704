"""Pauses of dunning (services/pauses.py) in the set-based planner and the composer, on both engines:
nothing planned or sent for a paused debtor or invoice on a day within the pause (its last day
included), the ladder going on after it without a skipped rung, a pause ended early no longer
holding anything."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from dunning_jobs import day as dunning_day
from dunning_jobs import planner
from portal.extensions import db
from portal.models import Creditor, Debtor, Invoice, OutboxMessage, Reminder
from portal.services import pauses
from support import put_ledger

DAY = date(2026, 6, 15)


def setup_ledger(api, creditor):
    put_ledger(api, [("F-1", "D1", DAY - timedelta(days=20), "100.00"),
                     ("F-2", "D1", DAY - timedelta(days=3), "250.00"),
                     ("F-3", "D2", DAY - timedelta(days=5), "40.00")])
    return db.session.get(Creditor, creditor.id)


def debtor(ref):
    return db.session.scalar(select(Debtor).where(Debtor.ref == ref))


def inv(number):
    return db.session.scalar(select(Invoice).where(Invoice.number == number))


def planned_on(day):
    db.session.expire_all()
    return sorted(db.session.execute(select(Invoice.number, Reminder.step_code).join(Invoice)
                                     .where(Reminder.dunning_date == day, Reminder.status != "cancelled")).all())


def pause(ref, until, number=None):
    return pauses.pause(debtor(ref), reason="Négociation en cours", until=until.isoformat(), invoice_number=number,
                        today=DAY - timedelta(days=1), user="controller@atelier.test")


def test_a_paused_debtor_gets_nothing_through_the_last_day_then_the_first_rung(api, creditor):
    owner = setup_ledger(api, creditor)
    pause("D1", DAY + timedelta(days=2))
    planner.plan_day(owner, DAY)
    assert planned_on(DAY) == [("F-3", "reminder_1")]
    last = DAY + timedelta(days=2)  # the last day included
    planner.plan_day(owner, last)
    assert planned_on(last) == []
    after = DAY + timedelta(days=3)
    planner.plan_day(owner, after)
    assert planned_on(after) == [("F-1", "reminder_1"), ("F-2", "reminder_1")]


def test_a_paused_invoice_alone_is_held(api, creditor):
    owner = setup_ledger(api, creditor)
    pause("D1", DAY + timedelta(days=5), "F-1")
    planner.plan_day(owner, DAY)
    assert planned_on(DAY) == [("F-2", "reminder_1"), ("F-3", "reminder_1")]


def test_after_the_pause_the_ladder_goes_on_from_the_rung_reached(api, creditor):
    owner = setup_ledger(api, creditor)
    f1 = inv("F-1")
    f1.rung_reached, f1.rung_sent_on = 1, DAY - timedelta(days=19)  # reminder_1 sent on D+1
    db.session.commit()
    pause("D1", DAY + timedelta(days=30), "F-1")
    planner.plan_day(owner, DAY)
    assert ("F-1", "reminder_2") not in planned_on(DAY)
    end = DAY + timedelta(days=31)
    planner.plan_day(owner, end)
    # The next rung, not the one the invoice's age would name (firm, formal notice): no rung skipped.
    assert ("F-1", "reminder_2") in planned_on(end)


def test_a_pause_resumed_early_holds_nothing(api, creditor):
    owner = setup_ledger(api, creditor)
    row = pause("D1", DAY + timedelta(days=10))
    pauses.resume(owner.id, debtor("D1"), row.id, today=DAY, user="controller@atelier.test")
    planner.plan_day(owner, DAY)
    assert planned_on(DAY) == [("F-1", "reminder_1"), ("F-2", "reminder_1"), ("F-3", "reminder_1")]


def test_a_run_inside_the_pause_sends_nothing_for_it(api, creditor):
    owner = setup_ledger(api, creditor)
    pause("D1", DAY + timedelta(days=1))
    result = dunning_day.run(DAY, [owner.id])
    assert result.planned == 1
    db.session.expire_all()
    to = db.session.scalars(select(OutboxMessage.debtor_id).where(OutboxMessage.kind == "reminder")).all()
    assert to == [debtor("D2").id]


def test_the_composer_drops_what_was_planned_before_the_pause(api, creditor):
    owner = setup_ledger(api, creditor)
    planner.plan_day(owner, DAY)  # planned, not composed yet (a held day, a run cut short)
    pause("D1", DAY + timedelta(days=1), "F-2")
    dunning_day.run(DAY, [owner.id])
    db.session.expire_all()
    f2 = db.session.scalar(select(Reminder).where(Reminder.invoice_id == inv("F-2").id))
    assert f2.status == "cancelled" and f2.message_id is None
    f1 = db.session.scalar(select(Reminder).where(Reminder.invoice_id == inv("F-1").id))
    assert f1.message_id is not None
    # The day after the pause, the cancelled step is planned again: the ladder is not blocked.
    later = DAY + timedelta(days=2)
    planner.plan_day(owner, later)
    assert ("F-2", "reminder_1") in planned_on(later)
