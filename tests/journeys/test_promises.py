"""Promises to pay, end to end: the debtor promises a date (and optionally an amount) in the
portal; reminders for that invoice wait; on the dunning day after the date the promise is kept
(a thank-you note follows) or broken (marked, the creditor told, dunning resumes with the
invoice's next rung of the ladder). The back office sets how far ahead a promise may go.
SQLite and PostgreSQL.

The portal takes "today" from the real clock (in the creditor's time zone) while the dunning day
takes an explicit date: invoices are created relative to the real today, and so are run days."""
from __future__ import annotations

import html
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from dunning_jobs import day as dunning_day
from portal.extensions import db
from portal.models import Creditor, Dispute, Event, Invoice, OutboxMessage, PaymentPromise, Reminder
from support import back_office_login, buttons, flashes, portal_login, portal_text as page, put_ledger


@pytest.fixture
def ledger_(api, today):
    """D2 (English) with two overdue invoices and one not yet due; D1 (French) with one."""
    return put_ledger(api, [("P-1", "D2", today - timedelta(days=3), "400.00"),
                            ("P-2", "D2", today + timedelta(days=10), "120.00"),
                            ("P-3", "D2", today - timedelta(days=2), "1000.00"),
                            ("Q-1", "D1", today - timedelta(days=3), "50.00")])


@pytest.fixture
def d2(ledger_, client, app, creditor):
    portal_login(client, app, "D2", creditor.id)
    return client


def promise(client, number, day, amount=None):
    data = {"date": day if isinstance(day, str) else day.isoformat()}
    if amount is not None:
        data["amount"] = amount
    return client.post(f"/portal/invoices/{number}/promise", data=data)


def promises_of(number) -> list[PaymentPromise]:
    db.session.expire_all()
    return list(db.session.scalars(select(PaymentPromise).join(Invoice, Invoice.id == PaymentPromise.invoice_id)
                                   .where(Invoice.number == number).order_by(PaymentPromise.id)))


def steps(number) -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(select(Reminder.step_code).join(Invoice, Invoice.id == Reminder.invoice_id)
                                   .where(Invoice.number == number).order_by(Reminder.id)))


def events_of(type_, number=None) -> list[Event]:
    db.session.expire_all()
    q = select(Event).where(Event.type == type_).order_by(Event.id)
    if number is not None:
        q = q.join(Invoice, Invoice.id == Event.invoice_id).where(Invoice.number == number)
    return list(db.session.scalars(q))


def alerts() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "creditor_alert")
                                   .order_by(OutboxMessage.id)))


def run(day: date):
    result = dunning_day.run(day)
    db.session.expire_all()
    return result


# --- making a promise in the portal ------------------------------------------------------------

def test_debtor_promises_a_date_and_an_amount(d2, today, api):
    home = page(d2)
    assert "Promise a date for invoice P-1" in buttons(home)
    form = page(d2, "/portal/invoices/P-1/promise")
    assert f'min="{today.isoformat()}"' in form and f'max="{(today + timedelta(days=30)).isoformat()}"' in form
    assert 'type="date"' in form and 'name="csrf_token"' in form

    # Refused, with a message, and nothing recorded: dates outside today..today+30, bad amounts.
    for day, amount in [(today - timedelta(days=1), None), (today + timedelta(days=31), None), ("", None),
                        ("2027-02-30", None), ("tomorrow", None), (today + timedelta(days=5), "0"),
                        (today + timedelta(days=5), "400,01"), (today + timedelta(days=5), "abc"),
                        (today + timedelta(days=5), "-5"), (today + timedelta(days=5), "1.001")]:
        r = promise(d2, "P-1", day, amount)
        assert r.status_code == 303 and r.headers["Location"].endswith("/portal/invoices/P-1/promise"), (day, amount)
        assert flashes(page(d2, "/portal/invoices/P-1/promise")), (day, amount)
    assert promises_of("P-1") == [] and events_of("promise.made") == []

    # A French debtor's comma is read; the promise is recorded with what was paid before it.
    r = promise(d2, "P-1", today + timedelta(days=7), "150,50")
    assert r.status_code == 303 and r.headers["Location"].endswith("/portal/")
    home = page(d2)
    assert any("we have noted your promise to pay invoice P-1" in f for f in flashes(home))
    [p] = promises_of("P-1")
    assert (p.status, p.promised_date, p.amount, p.paid_before) == ("live", today + timedelta(days=7), 15050, 0)
    [e] = events_of("promise.made", "P-1")
    assert e.actor == "debtor" and e.data["date"] == (today + timedelta(days=7)).isoformat()
    assert e.data["amount"] == 15050
    api_events = [x for x in api.get("/events").json["events"] if x["type"] == "promise.made"]
    assert [(x["debtor_ref"], x["invoice_number"]) for x in api_events] == [("D2", "P-1")]

    # The page now says so, and offers no second promise for P-1 (but still one for P-2).
    home = page(d2)
    assert "Promised for" in home
    assert "Promise a date for invoice P-1" not in buttons(home)
    assert "Promise a date for invoice P-2" in buttons(home)
    # A second promise on the same invoice is refused, on the form and on the post.
    r = d2.get("/portal/invoices/P-1/promise")
    assert r.status_code == 303 and r.headers["Location"].endswith("/portal/")
    assert any("already recorded" in f for f in flashes(page(d2)))
    r = promise(d2, "P-1", today + timedelta(days=3))
    assert r.status_code == 303 and len(promises_of("P-1")) == 1

    # The whole balance, on the last allowed day: amount NULL.
    assert promise(d2, "P-2", today + timedelta(days=30)).status_code == 303
    [p2] = promises_of("P-2")
    assert p2.amount is None and p2.promised_date == today + timedelta(days=30)


def test_promise_only_on_the_debtors_own_open_undisputed_invoice(d2, today, api, app):
    # Another debtor's invoice, or one that does not exist, reads as not found.
    assert d2.get("/portal/invoices/Q-1/promise").status_code == 404
    assert promise(d2, "Q-1", today + timedelta(days=2)).status_code == 404
    assert promise(d2, "NOPE", today + timedelta(days=2)).status_code == 404
    assert promises_of("Q-1") == []

    # A paid invoice: refused.
    r = api.post("/invoices/P-2/payments", json={"amount": "120.00", "date": today.isoformat(), "reference": "TR-1"})
    assert r.status_code in (200, 201), r.json
    r = promise(d2, "P-2", today + timedelta(days=2))
    assert r.status_code == 303 and r.headers["Location"].endswith("/portal/")
    assert any("no longer open" in f for f in flashes(page(d2)))
    assert promises_of("P-2") == []

    # An invoice under dispute (the disputes service sets these two; set here as its rows would be).
    inv = db.session.scalar(select(Invoice).where(Invoice.number == "P-1"))
    db.session.add(Dispute(creditor_id=inv.creditor_id, debtor_id=inv.debtor_id, invoice_id=inv.id, reason="other"))
    inv.disputed = True
    db.session.commit()
    r = d2.get("/portal/invoices/P-1/promise")
    assert r.status_code == 303
    assert any("under dispute" in f for f in flashes(page(d2)))
    assert promise(d2, "P-1", today + timedelta(days=2)).status_code == 303
    assert promises_of("P-1") == [] and events_of("promise.made") == []


def test_the_partial_unique_index_allows_one_live_promise_per_invoice(ledger_, app, today):
    """The last guard behind the service's check: a second live row is refused by the database,
    a settled one does not count."""
    from sqlalchemy.exc import IntegrityError
    inv = db.session.scalar(select(Invoice).where(Invoice.number == "P-1"))
    row = dict(creditor_id=inv.creditor_id, debtor_id=inv.debtor_id, invoice_id=inv.id, promised_date=today)
    db.session.add(PaymentPromise(**row, status="broken"))
    db.session.add(PaymentPromise(**row, status="live"))
    db.session.commit()
    db.session.add(PaymentPromise(**row, status="live"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


# --- the dunning day: kept, broken, cancelled -------------------------------------------------

def test_promise_kept_brings_the_thank_you_and_no_reminder(d2, today, api, creditor):
    # P-3 (1000.00) is two days overdue: D+1 is due, but the promise holds it.
    promise(d2, "P-3", today + timedelta(days=10))
    run(today)
    run(today + timedelta(days=1))
    assert steps("P-3") == []
    r = api.post("/invoices/P-3/payments", json={"amount": "1000.00", "date": today.isoformat(), "reference": "TR-9"})
    assert r.status_code in (200, 201), r.json

    run(today + timedelta(days=2))
    [p] = promises_of("P-3")
    assert p.status == "kept" and p.settled_at is not None
    assert [e.actor for e in events_of("promise.kept", "P-3")] == ["system"]
    assert steps("P-3") == ["thank_you"]
    thanks = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "thank_you")).all()
    assert [m.to_addr for m in thanks] == ["beta@example.com"]
    # Past the promised date nothing more happens: not broken, no alert, no reminder.
    run(today + timedelta(days=11))
    assert promises_of("P-3")[0].status == "kept"
    assert events_of("promise.broken") == [] and alerts() == []
    assert steps("P-3") == ["thank_you"]
    assert "promise.kept" in [e["type"] for e in api.get("/events").json["events"]]


def test_promise_broken_is_marked_creditor_told_and_dunning_resumes(d2, today, api, creditor):
    due = today - timedelta(days=3)  # P-1
    run(today)  # D+3: the first reminder goes
    assert steps("P-1") == ["reminder_1"]
    promised = today + timedelta(days=20)
    promise(d2, "P-1", promised)
    # While the promise is live, D+8 (today+5) and D+15 (today+12) come and go unsent, the
    # promised day included.
    for n in range(1, 21):
        run(today + timedelta(days=n))
        assert steps("P-1") == ["reminder_1"], n
    assert promises_of("P-1")[0].status == "live"
    assert alerts() == []

    # The day after: broken, the creditor told in the same run, and the ladder's next rung
    # (reminder_2, due since D+8) is sent: never two rungs at once.
    day = promised + timedelta(days=1)
    result = run(day)
    [p] = promises_of("P-1")
    assert p.status == "broken" and p.settled_at is not None
    [e] = events_of("promise.broken", "P-1")
    assert e.actor == "system" and e.data["date"] == promised.isoformat()
    [alert] = alerts()
    assert alert.to_addr == creditor.email and alert.status == "sent"
    assert "Beta Ltd" in alert.subject and "P-1" in alert.text_body
    assert steps("P-1") == ["reminder_1", "reminder_2"]
    second = db.session.scalar(select(Reminder).join(Invoice, Invoice.id == Reminder.invoice_id)
                               .where(Invoice.number == "P-1", Reminder.step_code == "reminder_2"))
    assert second.dunning_date == day and (day - due).days == 24
    assert result.sent >= 2  # the reminder e-mail and the creditor's notice

    # Again the same day, and the day after: nothing twice.
    run(day)
    run(day + timedelta(days=1))
    assert len(events_of("promise.broken")) == 1 and len(alerts()) == 1
    assert steps("P-1") == ["reminder_1", "reminder_2"]
    # The portal offers a new promise again.
    home = page(d2)
    assert "Promise a date for invoice P-1" in buttons(home)
    assert "promise.broken" in [x["type"] for x in api.get("/events").json["events"]]


def test_a_promised_amount_counts_what_is_paid_after_the_promise(d2, today, api):
    # P-3: 200.00 paid before the promise; 300.00 promised. P-1: 100.00 promised, 50.00 paid.
    api.post("/invoices/P-3/payments", json={"amount": "200.00", "date": today.isoformat(), "reference": "B-1"})
    promise(d2, "P-3", today + timedelta(days=5), "300.00")
    promise(d2, "P-1", today + timedelta(days=5), "100")
    assert promises_of("P-3")[0].paid_before == 20000
    api.post("/invoices/P-3/payments", json={"amount": "250.00", "date": today.isoformat(), "reference": "B-2"})
    api.post("/invoices/P-1/payments", json={"amount": "50.00", "date": today.isoformat(), "reference": "B-3"})
    run(today + timedelta(days=1))
    assert [p.status for p in promises_of("P-3")] == ["live"]  # 250 of 300 so far
    api.post("/invoices/P-3/payments", json={"amount": "50.00", "date": today.isoformat(), "reference": "B-4"})
    run(today + timedelta(days=2))
    assert [p.status for p in promises_of("P-3")] == ["kept"]  # 300 since the promise, balance still open
    assert [p.status for p in promises_of("P-1")] == ["live"]
    run(today + timedelta(days=6))
    assert [p.status for p in promises_of("P-1")] == ["broken"]  # 50 of 100
    assert events_of("promise.broken", "P-1")[0].data["paid_since"] == 5000
    [alert] = alerts()
    assert "P-1" in alert.text_body and "P-3" not in alert.text_body


def test_cancelled_invoice_cancels_its_promise(d2, today, api):
    promise(d2, "P-1", today + timedelta(days=3))
    inv = api.get("/invoices/P-1").json
    r = api.put("/invoices/P-1", json={"debtor_ref": "D2", "issue_date": inv["issue_date"], "due_date": inv["due_date"],
                                       "amount": inv["amount"], "currency": "EUR", "cancelled": True})
    assert r.status_code == 200, r.json
    run(today + timedelta(days=4))
    assert [p.status for p in promises_of("P-1")] == ["cancelled"]
    assert len(events_of("promise.cancelled", "P-1")) == 1
    assert events_of("promise.broken") == [] and alerts() == [] and steps("P-1") == []


def test_promise_on_a_later_disputed_invoice_is_not_broken_while_the_dispute_is_open(d2, today):
    promise(d2, "P-1", today + timedelta(days=2))
    inv = db.session.scalar(select(Invoice).where(Invoice.number == "P-1"))
    db.session.add(Dispute(creditor_id=inv.creditor_id, debtor_id=inv.debtor_id, invoice_id=inv.id, reason="other"))
    inv.disputed = True
    db.session.commit()
    run(today + timedelta(days=3))
    assert [p.status for p in promises_of("P-1")] == ["live"] and alerts() == [] and steps("P-1") == []


# --- the back office: how far ahead --------------------------------------------------------------

def test_creditor_sets_how_far_ahead_debtors_may_promise(client, app, creditor, ledger_, make_app, today):
    bo = make_app().test_client()
    back_office_login(bo, creditor)
    page_ = html.unescape(bo.get("/app/payments").get_data(as_text=True))
    assert 'name="promise_max_days"' in page_ and 'value="30"' in page_
    for bad in ("0", "181", "abc", "", "1.5", "-3", "²"):
        r = bo.post("/app/payments/promises", data={"promise_max_days": bad})
        assert r.status_code == 422, bad
        assert 'aria-invalid="true"' in r.get_data(as_text=True), bad
        db.session.expire_all()
        assert db.session.get(Creditor, creditor.id).promise_max_days == 30
    r = bo.post("/app/payments/promises", data={"promise_max_days": "10"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Creditor, creditor.id).promise_max_days == 10
    assert 'value="10"' in bo.get("/app/payments").get_data(as_text=True)
    [e] = events_of("creditor.promise_settings_updated")
    assert e.data["promise_max_days"] == 10 and e.data["user"] == creditor.email

    portal_login(client, app, "D2", creditor.id)
    assert f'max="{(today + timedelta(days=10)).isoformat()}"' in page(client, "/portal/invoices/P-1/promise")
    promise(client, "P-1", today + timedelta(days=11))
    assert promises_of("P-1") == []
    promise(client, "P-1", today + timedelta(days=10))
    assert [p.promised_date for p in promises_of("P-1")] == [today + timedelta(days=10)]


# --- concurrency ----------------------------------------------------------------------------------

def _at_once(n, target):
    barrier = threading.Barrier(n, timeout=120)
    errors = []

    def call(i):
        barrier.wait()
        try:
            target(i)
        except Exception as e:  # reported below: a thread's exception would otherwise vanish
            errors.append(e)
    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_concurrent_promises_on_one_invoice_record_one(ledger_, make_app, app, creditor, today):
    clients = [make_app().test_client() for _ in range(6)]
    for c in clients:
        portal_login(c, app, "D2", creditor.id)
    statuses = []
    _at_once(len(clients), lambda i: statuses.append(
        promise(clients[i], "P-1", today + timedelta(days=1 + i)).status_code))
    assert statuses == [303] * len(clients)
    assert len(promises_of("P-1")) == 1 and len(events_of("promise.made", "P-1")) == 1


def test_concurrent_dunning_days_break_a_promise_once(d2, make_app, creditor, today):
    from dunning_jobs import promises as settlement
    promise(d2, "P-1", today + timedelta(days=2))
    promise(d2, "P-3", today + timedelta(days=2))
    apps = [make_app() for _ in range(4)]

    def settle(i):
        with apps[i].app_context():
            settlement.settle(db.session.get(Creditor, creditor.id), today + timedelta(days=3))
    _at_once(len(apps), settle)
    assert [p.status for n in ("P-1", "P-3") for p in promises_of(n)] == ["broken", "broken"]
    assert len(events_of("promise.broken")) == 2 and len(alerts()) == 2
