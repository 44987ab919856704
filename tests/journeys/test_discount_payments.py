"""The early-payment discount paid by card (real `stripe` SDK, fake Stripe server) and by direct
debit (real `gocardless-pro` SDK, fake GoCardless server) (CONTRACT §10): the checkout and the
debit ask the discounted amount, the webhook applying the money grants the discount once however
often it is delivered, the invoice is paid and thanked. SQLite and PostgreSQL."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.domain.calendar import today_in
from portal.extensions import db
from portal.models import Event, Invoice, Payment, PaymentAllocation, PaymentAttempt
from support import count, deliver_ten_times, portal_login, set_up_mandate

TODAY = today_in("Europe/Paris")  # the test creditor's time zone


@pytest.fixture
def app_config(providers_config):
    return providers_config


def discounted_invoice(api, ref: str, until) -> None:
    """E-1: 1000.50, 2 % off until `until` (980.49 due while it lasts)."""
    r = api.put("/invoices/E-1", json={"debtor_ref": ref, "issue_date": (TODAY - timedelta(days=10)).isoformat(),
                                       "due_date": (TODAY + timedelta(days=20)).isoformat(), "amount": "1000.50",
                                       "currency": "EUR",
                                       "early_payment_discount": {"percent": "2", "until": until.isoformat()}})
    assert r.status_code == 201, r.json


def discount_rows() -> list[tuple[int, int]]:
    db.session.expire_all()
    return db.session.execute(select(Payment.amount, PaymentAllocation.amount)
                              .join(PaymentAllocation, PaymentAllocation.payment_id == Payment.id)
                              .where(Payment.provider == "discount")).all()


def test_card_payment_in_the_discount_period_grants_it_once(seeded, client, app, creditor, live_app, fake_stripe):
    seeded.put("/debtors/D1", json={"name": "Alpha SARL", "email": "alpha@example.com", "language": "en"})
    discounted_invoice(seeded, "D1", TODAY + timedelta(days=3))
    portal_login(client, app, "D1", creditor.id)
    r = client.post("/portal/pay", data={"method": "card", "invoice": ["E-1", "F-2"]})
    assert r.status_code == 303 and "/c/pay/" in r.headers["Location"], r.data
    sid = r.headers["Location"].rsplit("/", 1)[1]
    # The checkout asks the amount due now: the discount deducted, and named.
    items = [(li["description"], li["price"]["unit_amount"]) for li in fake_stripe.line_items[sid]]
    assert sorted(items) == [("Invoice E-1 (2% early-payment discount deducted)", 98049), ("Invoice F-2", 30050)]
    assert fake_stripe.sessions[sid]["amount_total"] == 98049 + 30050

    fake_stripe.pay(sid)
    assert all(d.status == 200 for d in fake_stripe.deliveries)
    e1 = seeded.get("/invoices/E-1").json
    assert (e1["status"], e1["amount_paid"], e1["balance"]) == ("paid", "1000.50", "0.00")
    assert seeded.get("/invoices/F-2").json["status"] == "paid"
    assert discount_rows() == [(2001, 2001)]
    money = db.session.scalar(select(Payment).where(Payment.provider == "stripe"))
    assert money.amount == 128099 and sorted(a.amount for a in money.allocations) == [30050, 98049]

    # The same webhook again, five at once and five in a row: applied once, granted once.
    event = next(e for e in fake_stripe.events if e["type"] == "checkout.session.completed")
    body = json.dumps(event).encode()
    answers = deliver_ten_times(live_app.url + "/webhooks/stripe", body, {"Stripe-Signature": fake_stripe.sign(body)})
    assert all(200 <= s < 300 for s in answers), answers
    assert discount_rows() == [(2001, 2001)]
    assert count(Payment, Payment.provider == "stripe") == 1
    assert count(Event, Event.type == "discount.granted") == 1
    [granted] = [e for e in seeded.get("/events?limit=1000").json["events"] if e["type"] == "discount.granted"]
    assert (granted["invoice_number"], granted["data"]["amount"], granted["data"]["percent"]) == ("E-1", "20.01", "2")


def test_direct_debit_created_by_the_last_day_earns_it_when_confirmed_later(seeded, client, app, creditor, live_app,
                                                                          fake_gocardless):
    """The day that counts for a direct debit is the day it was created, not the day GoCardless
    confirms it (days later)."""
    discounted_invoice(seeded, "D2", TODAY)
    portal_login(client, app, "D2", creditor.id)
    set_up_mandate(client, fake_gocardless)
    r = client.post("/portal/pay", data={"method": "direct_debit", "invoice": ["E-1"]})
    assert r.status_code == 303, r.data
    attempt = db.session.get(PaymentAttempt, int(re.search(r"/portal/payments/(\d+)", r.headers["Location"]).group(1)))
    pm = fake_gocardless.payments[attempt.provider_ref]
    assert (attempt.amount, pm["amount"]) == (98049, 98049)

    # Confirmed four days later: the debit was created on the last day (moved back here so that
    # the discount's last day is behind us when the confirmation comes).
    yesterday = TODAY - timedelta(days=4)
    db.session.execute(update(Invoice).where(Invoice.number == "E-1").values(discount_until=yesterday))
    db.session.execute(update(PaymentAttempt).where(PaymentAttempt.id == attempt.id)
                       .values(created_at=attempt.created_at - timedelta(days=4)))
    db.session.commit()
    assert seeded.get("/invoices/E-1").json["amount_due_now"] == "1000.50"  # over for anyone paying today
    fake_gocardless.confirm_payment(pm["id"])
    assert all(d.status == 200 for d in fake_gocardless.deliveries)
    e1 = seeded.get("/invoices/E-1").json
    assert (e1["status"], e1["balance"]) == ("paid", "0.00")
    assert discount_rows() == [(2001, 2001)]
    fake_gocardless.deliver_pending()
    assert count(Event, Event.type == "discount.granted") == 1
