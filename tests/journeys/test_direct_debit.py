"""SEPA Direct Debit journeys through the portal, the real `gocardless-pro` SDK and the fake
GoCardless server: setting up a mandate on the hosted flow, collecting invoices, failures,
charge-backs, cancelling the mandate, automatic collection on due dates, and a portal without
GoCardless keys. SQLite and PostgreSQL."""
from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select

from dunning_jobs import day as dunning_day
from portal.extensions import db
from portal.models import Debtor, Event, Invoice, Mandate, OutboxMessage, Payment, PaymentAttempt, Reminder
from support import (IBAN, buttons, count, flashes, mandate_row, portal_login, portal_text as page, set_up_mandate,
                     start_mandate_flow)

# D2's invoices: F-3 99.99 due 2026-11-14, F-4 5000.00 due 2026-12-31. On RUN_DAY both are past due.
RUN_DAY = date(2027, 1, 2)


@pytest.fixture
def app_config(providers_config):
    return providers_config


@pytest.fixture
def d2(seeded, client, app, creditor, live_app):
    """D2 (English) logged into the portal in `client`; webhooks go to the live app."""
    portal_login(client, app, "D2", creditor.id)
    return seeded


def event_types(api) -> list[str]:
    return [e["type"] for e in api.get("/events?limit=1000").json["events"]]


def invoice(api, number: str) -> dict:
    return api.get(f"/invoices/{number}").json


def attempts() -> list[PaymentAttempt]:
    db.session.expire_all()
    return list(db.session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id)))


def reminded(number: str) -> bool:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Reminder).join(Invoice, Invoice.id == Reminder.invoice_id)
                             .where(Invoice.number == number, Reminder.step_code != "thank_you")) > 0


def steps(number: str) -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(select(Reminder.step_code).join(Invoice, Invoice.id == Reminder.invoice_id)
                                   .where(Invoice.number == number).order_by(Reminder.id)))


def thanked(number: str) -> bool:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Reminder).join(Invoice, Invoice.id == Reminder.invoice_id)
                             .where(Invoice.number == number, Reminder.step_code == "thank_you")) == 1


def pay_by_direct_debit(client, *numbers) -> PaymentAttempt:
    r = client.post("/portal/pay", data={"method": "direct_debit", "invoice": list(numbers)})
    assert r.status_code == 303, r.data
    m = re.fullmatch(r"(?:http://[^/]+)?/portal/payments/(\d+)", r.headers["Location"])
    assert m, r.headers["Location"]
    return db.session.get(PaymentAttempt, int(m.group(1)))


def test_mandate_set_up(d2, client, fake_gocardless, app, creditor):
    home = page(client)
    assert "Set up Direct Debit" in buttons(home)
    assert any("Direct Debit" in name for name in buttons(home))
    assert "Pay by Direct Debit" not in buttons(home)  # no mandate yet

    fake_gocardless.auto_deliver = False  # the return, not the webhook, brings the mandate first
    flow_id = start_mandate_flow(client, fake_gocardless)
    flow = fake_gocardless.billing_request_flows[flow_id]
    assert flow["redirect_uri"] == "http://portal.test/portal/mandate/return"
    assert flow["exit_uri"] == "http://portal.test/portal/"
    assert flow["prefilled_customer"] == {"company_name": "Beta Ltd", "email": "beta@example.com"}
    brq = fake_gocardless.billing_requests[flow["links"]["billing_request"]]
    debtor_id = db.session.scalar(select(Debtor.id).where(Debtor.ref == "D2"))
    assert brq["mandate_request"]["currency"] == "EUR" and brq["metadata"] == {"relance_debtor": str(debtor_id)}
    m = mandate_row()
    assert (m.status, m.billing_request_ref, m.debtor_id, m.mandate_ref) == ("requested", brq["id"], debtor_id, None)
    assert "Mandate set-up not finished" in page(client)

    redirect_uri = fake_gocardless.authorise(flow_id, iban=IBAN, account_holder_name="Beta Ltd")
    r = client.get(redirect_uri.replace("http://portal.test", ""))
    assert r.status_code == 303 and r.headers["Location"].endswith("/portal/")
    m = mandate_row()
    assert m.mandate_ref == brq["mandate_request"]["links"]["mandate"]
    assert (m.status, m.bank_name, m.account_ending) == ("pending_submission", "Fake Bank", "89")
    home = page(client)
    assert "Thank you: your Direct Debit mandate is set up." in home
    assert "Mandate pending" in home and "Fake Bank" in home and "•••• 89" in home
    assert "Mandate active" not in home and "Set up Direct Debit" not in buttons(home)
    assert {"Cancel the Direct Debit mandate", "Pay by Direct Debit"} <= set(buttons(home))

    # The held webhooks arrive late: nothing changes, nothing is recorded twice.
    fake_gocardless.auto_deliver = True
    assert [d.status for d in fake_gocardless.deliver_pending()] == [200, 200]
    assert mandate_row().status == "pending_submission"
    fake_gocardless.activate_mandate(m.mandate_ref)
    assert [d.status for d in fake_gocardless.deliveries[-1:]] == [200]
    assert mandate_row().status == "active"
    home = page(client)
    assert "Mandate active" in home and "Mandate pending" not in home and "•••• 89" in home

    types = [t for t in event_types(d2) if t.startswith("mandate.")]
    # "submitted" and "active" come in one delivery: both re-fetch the mandate, already active.
    assert sorted(types) == ["mandate.active", "mandate.pending_submission", "mandate.requested"]
    events = d2.get("/events?limit=1000").json["events"]
    active = next(e for e in events if e["type"] == "mandate.active")
    assert active["data"]["mandate"] == m.mandate_ref and active["data"]["account_ending"] == "89"


def test_collect_two_invoices(d2, client, fake_gocardless, app):
    mandate_id = set_up_mandate(client, fake_gocardless)
    attempt = pay_by_direct_debit(client, "F-3", "F-4")
    assert (attempt.provider, attempt.status, attempt.amount, attempt.currency, attempt.initiated_by) == (
        "gocardless", "processing", 509999, "EUR", "debtor")
    pm = fake_gocardless.payments[attempt.provider_ref]
    assert (pm["amount"], pm["currency"], pm["links"]["mandate"]) == (509999, "EUR", mandate_id)
    assert pm["metadata"] == {"relance_attempt": str(attempt.id)} and "F-3, F-4" in pm["description"]
    assert len(fake_gocardless.payments) == 1

    assert "Payment processing" in page(client, f"/portal/payments/{attempt.id}")
    home = page(client)
    assert 'name="invoice" value="F-3"' not in home and 'name="invoice" value="F-4"' not in home
    dunning_day.run(RUN_DAY)
    assert not reminded("F-3") and not reminded("F-4")
    assert count(Payment) == 0 and invoice(d2, "F-3")["status"] == "open"

    fake_gocardless.confirm_payment(pm["id"])
    assert all(d.status == 200 for d in fake_gocardless.deliveries)
    for n in ("F-3", "F-4"):
        inv = invoice(d2, n)
        assert (inv["status"], inv["balance"]) == ("paid", "0.00"), inv
    payment = db.session.scalar(select(Payment))
    assert (payment.provider, payment.reference, payment.amount) == ("gocardless", pm["id"], 509999)
    assert count(Payment) == 1 and attempts()[0].status == "succeeded"
    types = event_types(d2)
    assert types.count("payment.received") == 1 and types.count("invoice.paid") == 2
    text = page(client, f"/portal/payments/{attempt.id}")
    assert "Paid" in text and "Payment processing" not in text and "5,099.99" in text

    dunning_day.run(date(2027, 1, 3))
    assert thanked("F-3") and thanked("F-4")
    assert not reminded("F-3") and not reminded("F-4")


def test_failed_direct_debit(d2, client, fake_gocardless, app):
    set_up_mandate(client, fake_gocardless)
    attempt = pay_by_direct_debit(client, "F-3", "F-4")
    dunning_day.run(RUN_DAY)
    assert not reminded("F-3")
    fake_gocardless.fail_payment(attempt.provider_ref)
    assert all(d.status == 200 for d in fake_gocardless.deliveries)
    assert attempts()[0].status == "failed" and count(Payment) == 0
    for n in ("F-3", "F-4"):
        inv = invoice(d2, n)
        assert (inv["status"], inv["amount_paid"]) == ("open", "0.00")
    assert event_types(d2).count("payment.failed") == 1
    assert "did not go through" in page(client, f"/portal/payments/{attempt.id}")
    assert 'name="invoice" value="F-3"' in page(client)  # can be paid again
    dunning_day.run(date(2027, 1, 3))
    assert reminded("F-3") and reminded("F-4")


def test_charge_back_after_confirmation(d2, client, fake_gocardless, app, creditor):
    set_up_mandate(client, fake_gocardless)
    attempt = pay_by_direct_debit(client, "F-3", "F-4")
    fake_gocardless.confirm_payment(attempt.provider_ref)
    fake_gocardless.pay_out(attempt.provider_ref)
    assert invoice(d2, "F-4")["status"] == "paid"
    dunning_day.run(RUN_DAY)
    assert not reminded("F-3") and not reminded("F-4")
    assert count(OutboxMessage, OutboxMessage.kind == "creditor_alert") == 0

    fake_gocardless.charge_back(attempt.provider_ref)
    assert all(d.status == 200 for d in fake_gocardless.deliveries)
    for n in ("F-3", "F-4"):
        inv = invoice(d2, n)
        assert (inv["status"], inv["amount_paid"], inv["balance"]) == ("open", "0.00", inv["amount"]), inv
    payment = db.session.scalar(select(Payment))
    db.session.refresh(payment)
    assert payment.reversed_amount == payment.amount == 509999
    events = d2.get("/events?limit=1000").json["events"]
    back = [e for e in events if e["type"] == "payment.charged_back"]
    assert len(back) == 1 and back[0]["data"]["amount"] == "5099.99"
    assert sorted(e["invoice_number"] for e in events if e["type"] == "invoice.reopened") == ["F-3", "F-4"]
    alerts = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "creditor_alert")).all()
    assert len(alerts) == 1 and alerts[0].to_addr == creditor.email
    assert "F-3" in alerts[0].text_body and "F-4" in alerts[0].text_body
    assert attempts()[0].status == "succeeded"  # the money came, then went back: a reversal, not a failure

    # The same charge-back told again changes nothing more.
    last = next(e for e in reversed(fake_gocardless.events) if e["action"] == "charged_back")
    assert fake_gocardless.deliver([last]).status == 200
    assert count(OutboxMessage, OutboxMessage.kind == "creditor_alert") == 1
    assert event_types(d2).count("payment.charged_back") == 1
    dunning_day.run(date(2027, 1, 3))
    assert reminded("F-3") and reminded("F-4")


def test_cancel_the_mandate(d2, client, fake_gocardless, app):
    mandate_id = set_up_mandate(client, fake_gocardless)
    r = client.post("/portal/mandate/cancel")
    assert r.status_code == 303 and r.headers["Location"].endswith("/portal/")
    assert fake_gocardless.mandates[mandate_id]["status"] == "cancelled"
    assert mandate_row().status == "cancelled"
    assert [d.status for d in fake_gocardless.deliver_pending()] == [200]  # its webhook: nothing more
    assert mandate_row().status == "cancelled"
    assert event_types(d2).count("mandate.cancelled") == 1
    home = page(client)
    assert "Your Direct Debit mandate is cancelled." in home
    assert "Set up Direct Debit" in buttons(home) and "Previous mandate ended" in home
    assert "Mandate active" not in home and "Cancel the Direct Debit mandate" not in buttons(home)
    assert "Pay by Direct Debit" not in buttons(home)

    r = client.post("/portal/pay", data={"method": "direct_debit", "invoice": ["F-3"]})
    assert r.status_code == 303 and r.headers["Location"].endswith("/portal/")
    home = page(client)
    # Not "unavailable at the moment, try later": without a mandate it is not a way to pay.
    assert flashes(home) == ["This way of paying is not available."]
    assert count(PaymentAttempt) == 0 and fake_gocardless.payments == {}
    assert invoice(d2, "F-3")["status"] == "open"
    # Cancelling again: nothing to cancel.
    client.post("/portal/mandate/cancel")
    assert "could not be cancelled" in page(client)


def test_automatic_collection(d2, client, fake_gocardless, app, creditor, make_app, providers_config):
    assert db.session.scalar(select(Debtor.auto_collect).where(Debtor.ref == "D2")) is False
    set_up_mandate(client, fake_gocardless)
    # Active mandate: the open invoices are collected through it from now on (CONTRACT §6).
    db.session.expire_all()
    assert db.session.scalar(select(Debtor.auto_collect).where(Debtor.ref == "D2")) is True
    [switched] = [e for e in d2.get("/events?limit=1000").json["events"] if e["type"] == "debtor.auto_collect"]
    assert switched["data"] == {"enabled": True, "reason": "mandate_active"}
    assert "Your open invoices are collected through this mandate on their due dates." in page(client)
    bo = make_app(**providers_config).test_client()
    r = bo.post("/app/login", data={"email": creditor.email, "password": creditor.password})
    assert r.status_code == 302
    r = bo.post("/app/debtors/D2/auto-collect", data={"enabled": "1"})  # already on: the choice is recorded
    assert r.status_code == 302 and r.headers["Location"].endswith("/app/debtors/D2")
    db.session.expire_all()
    assert db.session.scalar(select(Debtor.auto_collect).where(Debtor.ref == "D2")) is True
    assert event_types(d2).count("debtor.auto_collect") == 2

    dunning_day.run(date(2026, 11, 13))  # the day before F-3 is due: its courtesy notice only
    assert attempts() == [] and fake_gocardless.payments == {}
    before = steps("F-3")
    assert len(before) == 1
    dunning_day.run(date(2026, 11, 14))
    [first] = attempts()
    assert (first.status, first.initiated_by, first.amount) == ("processing", "system", 9999)
    assert [line.invoice.number for line in first.lines] == ["F-3"]  # F-4 is not due yet
    assert list(fake_gocardless.payments) == [first.provider_ref]
    dunning_day.run(date(2026, 11, 14))
    dunning_day.run(date(2026, 11, 15))
    assert len(attempts()) == 1 and len(fake_gocardless.payments) == 1
    assert steps("F-3") == before  # in flight: its D+1 reminder waits

    fake_gocardless.fail_payment(first.provider_ref)
    assert attempts()[0].status == "failed"
    dunning_day.run(date(2026, 11, 16))
    dunning_day.run(date(2026, 11, 17))
    assert len(attempts()) == 1 and len(fake_gocardless.payments) == 1  # no automatic retry
    assert len(steps("F-3")) == 2 and invoice(d2, "F-3")["status"] == "open"  # dunning took over

    # Another invoice coming due is collected on its own day, once.
    dunning_day.run(date(2026, 12, 31))
    dunning_day.run(date(2026, 12, 31))
    assert len(attempts()) == 2
    assert [line.invoice.number for line in attempts()[1].lines] == ["F-4"]

    # Switched off: nothing more is requested.
    assert bo.post("/app/debtors/D2/auto-collect", data={"enabled": "0"}).status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(Debtor.auto_collect).where(Debtor.ref == "D2")) is False
    r = d2.put("/invoices/F-9", json={"debtor_ref": "D2", "issue_date": "2026-12-01", "due_date": "2027-01-15",
                                      "amount": "10.00", "currency": "EUR"})
    assert r.status_code == 201
    dunning_day.run(date(2027, 1, 15))
    assert len(attempts()) == 2 and len(fake_gocardless.payments) == 2


def test_without_gocardless_keys(seeded, make_app, app, creditor):
    plain = make_app()  # default config: no provider configured
    browser = plain.test_client()
    portal_login(browser, app, "D2", creditor.id)
    home = page(browser)
    assert "F-3" in home and "Direct Debit" not in home and "direct_debit" not in home
    assert not any("Direct Debit" in b for b in buttons(home))
    r = browser.post("/portal/mandate")
    assert r.status_code == 303
    assert "This way of paying is not available." in page(browser)
    r = browser.post("/portal/pay", data={"method": "direct_debit", "invoice": ["F-3"]})
    assert r.status_code == 303 and "This way of paying is not available." in page(browser)
    r = browser.post("/webhooks/gocardless", data=b'{"events": []}', headers={"Webhook-Signature": "00"})
    assert r.status_code == 404
    assert count(Mandate) == 0 and count(PaymentAttempt) == 0
    assert count(Event, Event.type.like("mandate.%")) == 0


def test_creditor_switched_off_before_the_mandate_stays_off(d2, client, fake_gocardless, app, creditor, make_app,
                                                           providers_config):
    bo = make_app(**providers_config).test_client()
    bo.post("/app/login", data={"email": creditor.email, "password": creditor.password})
    assert bo.post("/app/debtors/D2/auto-collect", data={"enabled": "0"}).status_code == 302
    set_up_mandate(client, fake_gocardless)
    db.session.expire_all()
    assert db.session.scalar(select(Debtor.auto_collect).where(Debtor.ref == "D2")) is False
    dunning_day.run(date(2026, 11, 14))  # F-3 due: not collected, the debtor can still pay by direct debit
    assert attempts() == [] and fake_gocardless.payments == {}



def test_direct_debit_after_an_open_card_checkout_pays_once(d2, client, fake_gocardless, fake_stripe, app):
    """Issue 15, 1(a): a card checkout left open, then the same invoice by direct debit, then the
    card checkout completed: the debit expires the checkout first, so one payment only."""
    set_up_mandate(client, fake_gocardless)
    r = client.post("/portal/pay", data={"method": "card", "only": "F-3"})
    assert r.status_code == 303 and "/c/pay/" in r.headers["Location"]
    sid = r.headers["Location"].rsplit("/", 1)[1]
    attempt = pay_by_direct_debit(client, "F-3")
    assert attempt.provider == "gocardless" and attempt.status == "processing"
    assert fake_stripe.sessions[sid]["status"] == "expired"
    card = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.provider_ref == sid))
    assert card.status == "expired"
    with pytest.raises(Exception, match="no longer active"):
        fake_stripe.pay(sid)
    fake_gocardless.confirm_payment(attempt.provider_ref)
    assert count(Payment) == 1
    assert (invoice(d2, "F-3")["status"], invoice(d2, "F-3")["amount_paid"]) == ("paid", "99.99")
    # And the other way round: a debit in flight, a card payment is refused without a new checkout.
    r = client.post("/portal/pay", data={"method": "card", "only": "F-4"})
    sid4 = r.headers["Location"].rsplit("/", 1)[1]
    debit = pay_by_direct_debit(client, "F-4")
    assert fake_stripe.sessions[sid4]["status"] == "expired"
    r = client.post("/portal/pay", data={"method": "card", "only": "F-4"})
    assert r.status_code == 303 and "/c/pay/" not in r.headers["Location"]
    assert len(fake_stripe.sessions) == 2 and debit.status == "processing"
