"""One message per debtor and day holds without a savepoint per message: when the daily key
refuses a debtor's e-mail (it already had today's), its reminders wait for tomorrow, nothing is
half written, and the other debtors of the run are composed as usual (both engines)."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from dunning_jobs import planner
from portal.extensions import db
from portal.models import Creditor, Event, OutboxMessage, PortalLink, Reminder, utcnow
from portal.services import ledger, reminders

D = date(2026, 5, 4)


def test_debtor_with_todays_email_waits_and_the_others_go(app, creditor):
    creditor = db.session.get(Creditor, creditor.id)
    for ref in ("G1", "G2"):
        ledger.upsert_debtor(creditor, ref, {"name": f"Client {ref}", "email": f"{ref.lower()}@example.com",
                                             "language": "fr"})
        ledger.upsert_invoice(creditor, f"{ref}-1", {"debtor_ref": ref, "issue_date": "2026-03-01",
                                                    "due_date": (D - timedelta(days=8)).isoformat(),
                                                    "amount": "120.00", "currency": "EUR"})
    planner.plan_day(creditor, D)
    db.session.commit()
    first = ledger.get_debtor(creditor.id, "G1")
    # G1 already had today's e-mail (another worker, an earlier run): the daily key is taken.
    db.session.add(OutboxMessage(creditor_id=creditor.id, debtor_id=first.id, kind="reminder", channel="email",
                                 daily_key=f"E:{first.id}:{D.isoformat()}", to_addr="g1@example.com",
                                 message_id_header="<earlier@test>", subject="earlier", text_body="earlier",
                                 html_body="<p>earlier</p>", status="pending", next_attempt_at=utcnow()))
    db.session.commit()
    links_before = db.session.scalar(select(func.count()).select_from(PortalLink))

    assert reminders.compose_day(db.session.get(Creditor, creditor.id), D) == 1

    messages = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [m.subject for m in messages][0] == "earlier" and len(messages) == 2
    second = ledger.get_debtor(creditor.id, "G2")
    assert messages[1].debtor_id == second.id and messages[1].amount == 12000
    waiting = db.session.scalars(select(Reminder).where(Reminder.debtor_id == first.id)).all()
    assert waiting and all(r.status == "planned" and r.message_id is None for r in waiting)
    # Nothing of G1's refused message stayed behind: no link, no event.
    assert db.session.scalar(select(func.count()).select_from(PortalLink)) == links_before + 1
    planned = db.session.scalars(select(Event).where(Event.type == "message.planned")).all()
    assert [e.debtor_id for e in planned] == [second.id]
