"""`flask demo` seeds a creditor in the middle of its month: five weeks replayed through the real
dunning days, so the dashboard, the approvals and the outbox show what that code wrote."""
from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from portal.domain.calendar import today_in
from portal.extensions import db
from portal.models import Dispute, Event, OutboxMessage, Payment, PaymentPromise, PortalLink, Reminder
from portal.services import demo, reminders
from support import count


def _demo(app):
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    return result.output


def _counts(creditor_id: int) -> dict:
    return {model.__name__: count(model, model.creditor_id == creditor_id)
            for model in (Reminder, OutboxMessage, Payment, Dispute, PaymentPromise, Event, PortalLink)}


def test_the_demo_is_a_month_under_way_and_seeding_it_again_changes_nothing(app, make_app):
    out = _demo(app)
    assert "Demo data created." in out
    # One English and one French debtor's portal link, each opening that debtor's portal.
    printed = re.findall(r"Portal of (.+) \((English|French)\): http://portal\.test(/l/\S+)", out)
    assert [language for _, language, _ in printed] == ["English", "French"]
    for name, language, path in printed:
        browser = make_app().test_client()  # its own app: `g` (the locale) not shared with this test's
        assert browser.get(path).status_code == 303
        home = browser.get("/portal/").data.decode()
        assert f'<html lang="{language[:2].lower()}">' in home and name.replace("&", "&amp;") in home
    creditor = demo.existing()
    today = today_in(demo.TIMEZONE)
    paris = ZoneInfo(demo.TIMEZONE)

    # Reminders sent along the ladder over the past weeks, each on the day it was planned for:
    # the outbox recorded its message sent that day (08:30 in Paris), not at seeding time.
    sent = db.session.execute(
        select(Reminder.dunning_date, Reminder.step_code, OutboxMessage.sent_at, OutboxMessage.status)
        .join(OutboxMessage, OutboxMessage.id == Reminder.message_id)
        .where(Reminder.creditor_id == creditor.id, Reminder.status == "sent")).all()
    days = {d for d, *_ in sent}
    assert len(days) >= 10 and min(days) <= today - timedelta(days=28)
    assert {status for *_, status in sent} == {"sent"}
    assert all(sent_at.astimezone(paris).date() >= d for d, _step, sent_at, _s in sent)
    assert len({sent_at.astimezone(paris).date() for *_, sent_at, _s in sent}) >= 10
    assert {"reminder_1", "reminder_2"} <= {step for _d, step, *_ in sent}

    assert count(Payment, Payment.creditor_id == creditor.id) >= 1
    assert count(Dispute, Dispute.creditor_id == creditor.id, Dispute.status == "open") == 1
    assert count(PaymentPromise, PaymentPromise.creditor_id == creditor.id, PaymentPromise.status == "live") == 1
    waiting = reminders.awaiting(creditor.id, today)
    assert len(waiting) == 1  # one formal notice (one debtor's letter) awaits approval
    assert {r.step_code for r, _i in waiting[0][1]} == {"formal_notice"}
    # Nothing waits to be sent: the replay's outbox passes took everything.
    assert count(OutboxMessage, OutboxMessage.creditor_id == creditor.id, OutboxMessage.status == "pending") == 0

    before = _counts(creditor.id)
    latest_event = db.session.scalar(select(func.max(Event.id)))
    out = _demo(app)
    assert "already" in out
    after = _counts(creditor.id)
    after["PortalLink"] -= 2  # the portal links printed for two debtors (English, French), as every run prints them
    after["Event"] -= 2  # and their link.issued events
    assert after == before
    assert db.session.scalars(select(Event.type).where(Event.id > latest_event)).all() == ["link.issued"] * 2
