"""A collector's morning in a real browser (issue 18): signing in lands on Today, which lists the
two formal notices to approve, the call due and the bank suggestion with their counts; the
collector confirms the suggestion (the transfer is matched, the invoice paid), approves both
notices from the approvals page, records a call that ended in a promise (date and amount), and
after each step Today's counts go down, in the page and in the menu, as the database says."""
from __future__ import annotations

import os
import re
import uuid
from datetime import timedelta

import pytest
import requests
from playwright.sync_api import expect

from recon_files import Entry, camt053

from .conftest import CHROMIUM, DESKTOP, SKIP_REASON, WAIT_MS, make_creditor

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=SKIP_REASON)


def _put(env, who, path, body):
    r = env.api("PUT", path, who, json=body)
    assert r.status_code in (200, 201), r.text


def _morning(env, who):
    """Two debtors 40 days late whose notices wait for approval, one debtor to call today, and a
    transfer of exactly one open invoice's amount without a reference (a suggestion)."""
    from dunning_jobs import day as dunning_day
    from sqlalchemy import select, update

    from portal.extensions import db
    from portal.models import Debtor, DunningPlan, DunningStep, Invoice, Task, TaskInvoice
    from portal.services import plans

    today = env.today()
    with env.app.app_context():
        plans.ensure_default_plans(who.id)
        plan_ids = select(DunningPlan.id).where(DunningPlan.creditor_id == who.id)
        db.session.execute(update(DunningStep).where(DunningStep.plan_id.in_(plan_ids), DunningStep.offset_days > 0)
                           .values(requires_approval=True))
        db.session.commit()
    for ref, name, amount in (("N1", "Nord Outillage", "2400.00"), ("N2", "Sud Emballages", "900.00")):
        _put(env, who, f"/debtors/{ref}", {"name": name, "email": f"{ref.lower()}@example.com", "language": "fr"})
        _put(env, who, f"/invoices/F-{ref}", {"debtor_ref": ref, "issue_date": (today - timedelta(days=70)).isoformat(),
                                             "due_date": (today - timedelta(days=40)).isoformat(),
                                             "amount": amount, "currency": "EUR"})
    with env.app.app_context():
        assert dunning_day.run(today, creditor_ids=[who.id]).awaiting_approval == 2
        db.session.remove()
    # Added after the run: not reminded today; the call and the transfer are their own work.
    _put(env, who, "/debtors/C1", {"name": "Centre Bureautique", "email": "c1@example.com", "language": "fr",
                                   "phone": "+33123456789"})
    _put(env, who, "/invoices/F-C1", {"debtor_ref": "C1", "issue_date": (today - timedelta(days=60)).isoformat(),
                                      "due_date": (today - timedelta(days=30)).isoformat(), "amount": "1500.00",
                                      "currency": "EUR"})
    _put(env, who, "/debtors/T1", {"name": "Transports Martin", "email": "t1@example.com", "language": "fr"})
    _put(env, who, "/invoices/F-T1", {"debtor_ref": "T1", "issue_date": (today - timedelta(days=20)).isoformat(),
                                      "due_date": (today + timedelta(days=10)).isoformat(), "amount": "1234.56",
                                      "currency": "EUR"})
    with env.app.app_context():
        debtor_id, invoice_id = db.session.execute(select(Invoice.debtor_id, Invoice.id).where(
            Invoice.creditor_id == who.id, Invoice.number == "F-C1")).one()
        task = Task(creditor_id=who.id, debtor_id=debtor_id, kind="call", step_code="call", due=today, status="open")
        db.session.add(task)
        db.session.flush()
        db.session.add(TaskInvoice(task_id=task.id, invoice_id=invoice_id))
        db.session.commit()
        task_id = task.id
        assert db.session.scalar(select(Debtor.id).where(Debtor.creditor_id == who.id, Debtor.ref == "T1"))
        db.session.remove()
    statement = camt053([Entry("1234.56", today, f"MORNING-{uuid.uuid4().hex[:8]}", "M. MARTIN", "virement")])
    r = requests.post(f"{env.url}/api/v1/bank-statements", data=statement, timeout=10,
                      headers={"Authorization": f"Bearer {who.api_key}", "Content-Type": "application/xml"})
    assert r.status_code in (200, 201), r.text
    assert r.json()["suggested"] == 1, r.text
    return task_id


def _state(env, who):
    from sqlalchemy import select

    from portal.extensions import db
    from portal.models import BankTransaction, Invoice, PaymentPromise, Reminder, Task
    with env.app.app_context():
        try:
            return {"tx": db.session.scalar(select(BankTransaction.status).where(BankTransaction.creditor_id == who.id)),
                    "T1": db.session.scalar(select(Invoice.status).where(Invoice.creditor_id == who.id,
                                                                          Invoice.number == "F-T1")),
                    "waiting": db.session.scalars(select(Reminder.status).where(
                        Reminder.creditor_id == who.id, Reminder.status == "awaiting_approval")).all(),
                    "task": db.session.scalar(select(Task.status).where(Task.creditor_id == who.id)),
                    "promises": db.session.execute(select(PaymentPromise.promised_date, PaymentPromise.amount,
                                                          PaymentPromise.status)
                                                   .where(PaymentPromise.creditor_id == who.id)).all()}
        finally:
            db.session.remove()


def _counts(page, total, approvals, calls, bank):
    """What Today shows: the total in the menu and in the page, and each list's badge."""
    menu = page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(r"^Today"))
    if total:
        expect(menu).to_have_text(f"Today {total}")
        expect(page.locator("#today-total")).to_contain_text(f"{total} thing")
    else:
        expect(menu).to_have_text("Today")
        expect(page.locator("#today-total")).to_have_text("Nothing waits for you today.")
    for name, n in (("approvals", approvals), ("calls", calls), ("bank", bank), ("disputes", 0), ("promises", 0),
                    ("bounces", 0)):
        expect(page.locator(f"#{name}-h .badge")).to_have_text(str(n))


def test_a_collectors_morning_from_today(env, browser, shot):
    who = make_creditor(env.app, "Matin Recouvrement")
    task_id = _morning(env, who)
    ctx = browser.new_context(viewport=DESKTOP, locale="en-GB")
    ctx.set_default_timeout(WAIT_MS)
    try:
        page = ctx.new_page()
        page.goto(f"{env.url}/app/login")
        page.get_by_label("E-mail").fill(who.email)
        page.get_by_label("Password").fill(who.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{env.url}/app/")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Today")
        _counts(page, 4, approvals=2, calls=1, bank=1)
        approvals = page.locator("#approvals")
        expect(approvals.get_by_role("row").nth(1)).to_contain_text("Nord Outillage")  # 2 400 € before 900 €
        expect(approvals.get_by_role("row").nth(2)).to_contain_text("Sud Emballages")
        expect(page.locator("#calls")).to_contain_text("Centre Bureautique")
        expect(page.locator("#calls")).to_contain_text("+33123456789")
        expect(page.locator("#bank")).to_contain_text("M. MARTIN")
        expect(page.get_by_text("No promise broken in the last 30 days.")).to_be_visible()
        shot(page, "today")

        # The bank suggestion: from Today to the reconciliation screen, confirmed in one click.
        page.locator("#bank").get_by_role("link", name="Confirm or correct").click()
        suggestion = page.locator("section", has=page.get_by_role("heading", name="Suggested matches")) \
            .get_by_role("row").filter(has_text="M. MARTIN")
        expect(suggestion).to_contain_text("F-T1")
        suggestion.get_by_role("button", name="Confirm").click()
        expect(page.locator("section", has=page.get_by_role("heading", name="Recently matched"))).to_contain_text("F-T1")
        state = _state(env, who)
        assert (state["tx"], state["T1"]) == ("matched", "paid"), state
        page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(r"^Today")).click()
        _counts(page, 3, approvals=2, calls=1, bank=0)
        expect(page.get_by_text("No bank suggestion to confirm.")).to_be_visible()

        # Both formal notices, ticked on the approvals page and approved in one go.
        page.locator("#approvals").get_by_role("link", name="Review and approve").first.click()
        page.get_by_label("Select the formal notice to Nord Outillage").check()
        page.get_by_label("Select the formal notice to Sud Emballages").check()
        page.get_by_role("button", name="Approve the selected notices").click()
        expect(page.get_by_text("Nothing awaits your approval.")).to_be_visible()
        assert _state(env, who)["waiting"] == []
        page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(r"^Today")).click()
        _counts(page, 1, approvals=0, calls=1, bank=0)

        # The call: the debtor promises 600 € in a week.
        promised = env.today() + timedelta(days=7)
        page.locator("#calls").get_by_role("link", name="Record the call").click()
        card = page.locator(f"#task-{task_id}")
        card.get_by_label("Promised to pay").check()
        card.get_by_label("Promised date (for a promise)").fill(promised.isoformat())
        card.get_by_label("Promised amount (empty: everything owed)").fill("600.00")
        card.get_by_role("button", name="Record the call").click()
        expect(page.get_by_text("Call recorded.")).to_be_visible()
        state = _state(env, who)
        assert state["task"] == "done" and state["promises"] == [(promised, 60000, "live")], state
        page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(r"^Today")).click()
        _counts(page, 0, approvals=0, calls=0, bank=0)
        expect(page.get_by_text("No call to make today.")).to_be_visible()
        shot(page, "done")
    finally:
        ctx.close()
