"""The back office's "Calls to make": the open call tasks with the debtor's numbers, what it owes,
the invoices and its last messages, the count in the menu, and a form per task (CSRF-protected)
that records the outcome and closes the task; another creditor's user sees none of it."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dunning_jobs import day as dunning_day
from portal.extensions import db
from portal.models import Debtor, Event, PaymentPromise, Task
from support import back_office_login, csrf_token_in, flashes, look, put_ledger, response_text

CALL_PLAN = [
    {"code": "reminder_1", "offset_days": 1, "channel": "email", "tone": "reminder", "needs_approval": False},
    {"code": "call_1", "offset_days": 8, "channel": "call", "tone": "reminder", "needs_approval": False},
    {"code": "firm", "offset_days": 15, "channel": "email", "tone": "firm", "needs_approval": False},
]


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


@pytest.fixture
def task(api, creditor, today):
    assert api.put("/plans/standard", json={"steps": CALL_PLAN}).status_code == 200
    due = today - timedelta(days=8)
    put_ledger(api, [("F-1", "D1", due, "1200.00"), ("F-2", "D1", due, "300.50")],
               debtors=(("D1", "Alpha SARL", "fr"),))
    assert api.put("/debtors/D1", json={"name": "Alpha SARL", "email": "alpha@example.com", "language": "fr",
                                        "phone": "+33612345678"}).status_code == 200
    dunning_day.run(today - timedelta(days=7), [creditor.id])
    dunning_day.run(today, [creditor.id])
    db.session.rollback()
    return db.session.scalar(select(Task))


def test_the_page_lists_the_call_with_what_the_collector_needs(client, creditor, task):
    back_office_login(client, creditor)
    r = client.get("/app/calls")
    assert r.status_code == 200
    text = response_text(r)
    for expected in ("Alpha SARL", "+33612345678", "alpha@example.com", "F-1", "F-2", "Rappel"):
        assert expected in text, expected
    assert "1 500,50" in text.replace("\u202f", " ").replace("\xa0", " ")  # what D1 owes in all
    assert f'action="/app/calls/{task.id}/outcome"' in r.get_data(as_text=True)
    nav = r.get_data(as_text=True).split("</nav>")[0]
    assert 'href="/app/calls">' in nav and '<span class="badge warn">1</span>' in nav.split('href="/app/calls">')[1]


def test_recording_an_outcome_closes_the_task(client, creditor, task, today):
    back_office_login(client, creditor)
    bad = client.post(f"/app/calls/{task.id}/outcome", data={"outcome": "promise"})
    assert bad.status_code == 422 and "Alpha SARL" in response_text(bad)
    assert look(lambda: db.session.get(Task, task.id).status) == "open"

    promised = (today + timedelta(days=5)).isoformat()
    r = client.post(f"/app/calls/{task.id}/outcome", data={"outcome": "promise", "promise_date": promised,
                                                            "promise_amount": "", "note": "Pays Friday"})
    assert r.status_code == 302
    page = client.get(r.headers["Location"])
    assert flashes(page.get_data(as_text=True))
    assert "Alpha SARL" not in response_text(page).split("Calls to make", 2)[-1]
    closed = look(lambda: db.session.get(Task, task.id))
    assert (closed.status, closed.outcome, closed.note) == ("done", "promise", "Pays Friday")
    assert closed.closed_by_id is not None
    assert look(lambda: len(db.session.scalars(select(PaymentPromise)).all())) == 2
    event = look(lambda: db.session.scalar(select(Event).where(Event.type == "task.closed")))
    assert event.actor == "creditor" and event.data["user"] == creditor.email

    again = client.post(f"/app/calls/{task.id}/outcome", data={"outcome": "reached"})
    assert again.status_code == 409


def test_the_form_needs_the_csrf_token_and_other_creditors_get_404(make_app, client, creditor, new_creditor, task):
    c = make_app(WTF_CSRF_ENABLED=True).test_client()
    token = csrf_token_in(c.get("/app/login").data)
    c.post("/app/login", data={"email": creditor.email, "password": creditor.password, "csrf_token": token})
    assert c.post(f"/app/calls/{task.id}/outcome", data={"outcome": "reached"}).status_code == 400
    assert look(lambda: db.session.get(Task, task.id).status) == "open"
    page = c.get("/app/calls").data
    r = c.post(f"/app/calls/{task.id}/outcome", data={"outcome": "reached", "csrf_token": csrf_token_in(page)})
    assert r.status_code == 302
    assert look(lambda: db.session.get(Task, task.id).outcome) == "reached"

    other = back_office_login(make_app().test_client(), new_creditor("Other Corp"))
    assert "Alpha SARL" not in response_text(other.get("/app/calls"))
    assert other.post(f"/app/calls/{task.id}/outcome", data={"outcome": "no_answer"}).status_code == 404
    assert look(lambda: db.session.get(Task, task.id).outcome) == "reached"
    assert look(lambda: db.session.scalar(select(Debtor.owner_id))) is None
