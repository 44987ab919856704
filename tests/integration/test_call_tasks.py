"""Call tasks (CONTRACT §4 /tasks, §9): a dunning run that reaches a `call` step makes one open
task per debtor and day with the invoices at that step, and no message for them; the outcome
closes it and counts as the step sent for the ladder (the next rung comes 7 days later); a
promise made on the phone is a promise like the portal's and pauses the dunning; another
creditor's task is 404. Real SMTP server, both engines; concurrent runs on PostgreSQL."""
from __future__ import annotations

import os
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from dunning_jobs import day as dunning_day
from fakes.cli_process import app_env, flask, json_line
from portal.extensions import db
from portal.models import (CreditorUser, Debtor, Event, Invoice, OutboxMessage, PaymentPromise, Reminder, Task,
                           TaskInvoice)
from support import Api, put_ledger

CALL_PLAN = [
    {"code": "courtesy", "offset_days": -7, "channel": "email", "tone": "courtesy", "needs_approval": False},
    {"code": "reminder_1", "offset_days": 1, "channel": "email", "tone": "reminder", "needs_approval": False},
    {"code": "call_1", "offset_days": 8, "channel": "call", "tone": "reminder", "needs_approval": False},
    {"code": "firm", "offset_days": 15, "channel": "email", "tone": "firm", "needs_approval": False},
    {"code": "formal_notice", "offset_days": 30, "channel": "letter", "tone": "formal_notice",
     "needs_approval": True},
]


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


@pytest.fixture
def calls(api, creditor, today, smtp_server):
    """D1 (owned by the creditor's user) with two invoices and D2 with one, all due 8 days ago,
    their first reminder sent 7 days ago; today's run reaches the call step."""
    assert api.put("/plans/standard", json={"steps": CALL_PLAN}).status_code == 200
    due = today - timedelta(days=8)
    put_ledger(api, [("F-1", "D1", due, "100.00"), ("F-2", "D1", due, "100.00"), ("F-3", "D2", due, "80.00")])
    user = db.session.scalar(select(CreditorUser).where(CreditorUser.creditor_id == creditor.id))
    db.session.scalar(select(Debtor).where(Debtor.ref == "D1")).owner_id = user.id
    db.session.commit()
    assert dunning_day.run(today - timedelta(days=7), [creditor.id]).sent == 2
    smtp_server.handler.take()
    result = dunning_day.run(today, [creditor.id])
    assert result.failed == 0
    db.session.rollback()
    return user


def run(day, creditor):
    result = dunning_day.run(day, [creditor.id])
    assert result.failed == 0
    db.session.rollback()
    return result


def planned(code):
    return set(db.session.scalars(select(Invoice.number).join(Reminder, Reminder.invoice_id == Invoice.id)
                                  .where(Reminder.step_code == code)))


def test_a_call_step_makes_one_task_per_debtor_and_no_message(api, creditor, today, calls, smtp_server):
    assert smtp_server.handler.take() == []  # nobody is e-mailed for a call step
    tasks = db.session.scalars(select(Task).order_by(Task.id)).all()
    assert [(t.debtor.ref, t.kind, t.due, t.status, t.step_code) for t in tasks] == [
        ("D1", "call", today, "open", "call_1"), ("D2", "call", today, "open", "call_1")]
    assert tasks[0].assigned_to_id == calls.id and tasks[1].assigned_to_id is None
    statuses = Counter(db.session.scalars(select(Reminder.status).where(Reminder.step_code == "call_1")))
    assert statuses == {"awaiting_call": 3}
    assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.created_at >= tasks[0].created_at)) is None
    assert db.session.scalars(select(Event.data).where(Event.type == "task.opened")).all()[0]["invoices"] == [
        "F-1", "F-2"]

    run(today, creditor)  # again the same day: nothing new
    assert len(db.session.scalars(select(Task)).all()) == 2
    assert len(db.session.scalars(select(TaskInvoice)).all()) == 3

    r = api.get("/tasks")
    assert r.status_code == 200
    assert [{k: t[k] for k in ("kind", "debtor_ref", "invoices", "due", "status")} for t in r.json["tasks"]] == [
        {"kind": "call", "debtor_ref": "D1", "invoices": ["F-1", "F-2"], "due": today.isoformat(), "status": "open"},
        {"kind": "call", "debtor_ref": "D2", "invoices": ["F-3"], "due": today.isoformat(), "status": "open"}]
    assert api.get("/tasks?status=done").json == {"tasks": []}
    assert api.get("/tasks?status=later").status_code == 422


def test_reached_closes_the_task_and_the_next_rung_comes_after_the_gap(api, creditor, today, calls, smtp_server):
    task = db.session.scalar(select(Task).join(Debtor).where(Debtor.ref == "D2"))
    r = api.post(f"/tasks/{task.id}/outcome", json={"outcome": "reached", "note": "Will pay next week"})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "done" and r.json["outcome"] == "reached" and r.json["note"] == "Will pay next week"
    db.session.rollback()
    invoice = db.session.scalar(select(Invoice).where(Invoice.number == "F-3"))
    assert (invoice.rung_reached, invoice.rung_sent_on) == (2, today)  # the call counts as the step sent
    assert db.session.scalar(select(Reminder.status).where(Reminder.invoice_id == invoice.id,
                                                           Reminder.step_code == "call_1")) == "sent"
    closed = db.session.scalar(select(Event).where(Event.type == "task.closed"))
    assert (closed.debtor_id, closed.data["outcome"], closed.actor) == (invoice.debtor_id, "reached", "api")

    again = api.post(f"/tasks/{task.id}/outcome", json={"outcome": "no_answer"})
    assert again.status_code == 409 and again.json["error"]["code"] == "task_closed"

    run(today + timedelta(days=6), creditor)
    assert planned("firm") == set()
    run(today + timedelta(days=7), creditor)
    assert planned("firm") == {"F-3"}  # D1's call is still open: its invoices wait on rung 1
    assert [api.get("/tasks?status=done").json["tasks"][0][k] for k in ("debtor_ref", "status")] == ["D2", "done"]


def test_a_promise_on_the_phone_is_recorded_as_the_portal_does_and_pauses_dunning(api, creditor, today, calls):
    task = db.session.scalar(select(Task).join(Debtor).where(Debtor.ref == "D1"))
    promised_on = today + timedelta(days=10)
    bad = api.post(f"/tasks/{task.id}/outcome", json={"outcome": "promise"})
    assert bad.status_code == 422 and bad.json["error"]["field"] == "promise_date"
    bad = api.post(f"/tasks/{task.id}/outcome", json={"outcome": "promise", "promise_date": promised_on.isoformat(),
                                                      "promise_amount": "500.00"})
    assert bad.status_code == 422 and bad.json["error"]["field"] == "promise_amount"
    assert api.post(f"/tasks/{task.id}/outcome", json={"outcome": "maybe"}).json["error"]["field"] == "outcome"
    db.session.rollback()
    assert db.session.get(Task, task.id).status == "open"  # refusals change nothing

    r = api.post(f"/tasks/{task.id}/outcome", json={"outcome": "promise", "promise_date": promised_on.isoformat(),
                                                    "promise_amount": "150.00", "note": "Accounts payable"})
    assert r.status_code == 200, r.json
    db.session.rollback()
    promises = {p.invoice.number: p for p in db.session.scalars(select(PaymentPromise))}
    assert {n: (p.status, p.promised_date, p.amount) for n, p in promises.items()} == {
        "F-1": ("live", promised_on, None), "F-2": ("live", promised_on, 5000)}
    made = db.session.scalars(select(Event).where(Event.type == "promise.made")).all()
    assert {e.actor for e in made} == {"creditor"} and len(made) == 2
    assert db.session.get(Task, task.id).outcome == "promise"
    assert {i.rung_reached for i in db.session.scalars(select(Invoice).where(Invoice.number.in_(["F-1", "F-2"])))} \
        == {2}

    run(today + timedelta(days=7), creditor)  # the firm step is due, but the promise is live
    assert planned("firm") == set()


def test_another_creditors_task_is_404(api, client, creditor, new_creditor, calls):
    task = db.session.scalar(select(Task).order_by(Task.id))
    other = Api(client, new_creditor("Other Corp"))
    assert other.get("/tasks").json == {"tasks": []}
    r = other.post(f"/tasks/{task.id}/outcome", json={"outcome": "reached"})
    assert r.status_code == 404
    assert other.post("/tasks/abc/outcome", json={"outcome": "reached"}).status_code == 404
    db.session.rollback()
    assert db.session.get(Task, task.id).status == "open"


POSTGRESQL_ONLY = pytest.mark.parametrize("engine_name", [
    pytest.param("sqlite", marks=pytest.mark.skip(reason="concurrent `dunning run` processes: PostgreSQL only")),
    pytest.param("postgresql", marks=pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"), reason="needs TEST_DATABASE_URL (PostgreSQL)")),
])


@POSTGRESQL_ONLY
def test_two_concurrent_runs_make_each_call_task_once(api, creditor, smtp_server, database_url):
    d = date(2026, 6, 15)
    assert api.put("/plans/standard", json={"steps": CALL_PLAN}).status_code == 200
    debtors = [(f"C{n:02d}", f"Client {n}", "fr") for n in range(30)]
    put_ledger(api, [(f"F{n:02d}-{k}", f"C{n:02d}", d - timedelta(days=8 + k), "50.00")
                     for n in range(30) for k in range(2)], debtors=debtors)
    for invoice in db.session.scalars(select(Invoice)):  # first reminder sent a week ago
        invoice.rung_reached, invoice.rung_sent_on = 1, d - timedelta(days=7)
    db.session.commit()
    db.session.remove()

    env = app_env(database_url, smtp_server.url, MAIL_FROM="Atelier Test <relances@atelier.test>")
    procs = [flask("dunning", "run", "--date", d.isoformat(), env=env) for _ in range(2)]
    outputs = [json_line(p, timeout=600) for p in procs]
    assert all(o["failed"] == 0 for o in outputs)
    assert sum(o["planned"] for o in outputs) == 60

    tasks = db.session.scalars(select(Task)).all()
    assert Counter(t.debtor_id for t in tasks).most_common(1)[0][1] == 1 and len(tasks) == 30
    links = db.session.scalars(select(TaskInvoice)).all()
    assert len(links) == 60 and len({link.reminder_id for link in links}) == 60
    assert set(db.session.scalars(select(Reminder.status))) == {"awaiting_call"}
    assert smtp_server.handler.take() == []
