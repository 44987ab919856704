"""Late-payment charges paid through the providers: by card (Stripe Checkout through the real SDK, the
fake server and its signed webhook), which names them for the debtor, and by automatic SEPA collection
(GoCardless fake); paying what was asked settles invoice and charges with no credit. SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from dunning_jobs import auto_collect
from portal.extensions import db
from portal.models import Creditor, Debtor, Invoice, PaymentAttempt
from portal.services import charge_items, ledger, mandates
from support import portal_login, set_up_mandate


@pytest.fixture
def d1(seeded, client, app, creditor, live_app):
    """D1 in English owes F-1 (1200.00), F-2 (300.50) and 40.00 of charges claimed on F-1."""
    seeded.put("/debtors/D1", json={"name": "Alpha SARL", "email": "alpha@example.com", "language": "en"})
    invoice = ledger.get_invoice(creditor.id, "F-1")
    charge_items.claim(creditor.id, invoice.debtor_id, invoice, 4000, date(2026, 10, 10))
    db.session.commit()
    portal_login(client, app, "D1", creditor.id)
    return seeded


@pytest.fixture
def app_config(providers_config):
    """Both providers, pointed at the fakes."""
    return providers_config


def test_invoice_and_its_charges_paid_by_card_settle_with_no_credit(d1, client, fake_stripe):
    home = client.get("/portal/").get_data(as_text=True)
    assert "Late-payment charges — invoice F-1" in home
    assert 'name="invoice" value="F-1+F1"' in home and 'name="only" value="F-1+F1"' in home
    assert 'aria-label="Pay the late-payment charges on invoice F-1"' in home
    assert 'aria-label="Select the late-payment charges on invoice F-1"' in home

    # Ticked charges first: the checkout still lists the principal first.
    r = client.post("/portal/pay", data={"method": "card", "invoice": ["F-1+F1", "F-1"]})
    assert r.status_code == 303, r.data
    sid = r.headers["Location"].rsplit("/", 1)[1]
    items = fake_stripe.line_items[sid]
    assert [(li["description"], li["price"]["unit_amount"]) for li in items] == [
        ("Invoice F-1", 120000), ("Late-payment charges — invoice F-1", 4000)]
    assert fake_stripe.sessions[sid]["amount_total"] == 124000
    assert fake_stripe.sessions[sid]["metadata"]["invoices"] == "F-1,F-1+F1"

    fake_stripe.pay(sid)
    assert [d.status for d in fake_stripe.deliveries] == [200, 200]
    db.session.expire_all()
    paid = {i.number: (i.status, i.balance) for i in db.session.scalars(select(Invoice))
            if i.number in ("F-1", "F-1+F1")}
    assert paid == {"F-1": ("paid", 0), "F-1+F1": ("paid", 0)}
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.provider_ref == sid))
    assert attempt.status == "succeeded"
    received = next(e for e in d1.get("/events?limit=1000").json["events"] if e["type"] == "payment.received")
    assert received["data"]["amount"] == "1240.00" and received["data"]["unallocated"] == "0.00"
    page = client.get(f"/portal/payments/{attempt.id}").get_data(as_text=True)
    assert "Late-payment charges — invoice F-1" in page
    assert d1.get("/debtors/D1").json["balance"] == "300.50"


def test_automatic_collection_takes_the_charges_after_the_principal(d1, client, fake_gocardless, creditor):
    set_up_mandate(client, fake_gocardless)
    mandates.set_auto_collect(db.session.scalar(select(Debtor).where(Debtor.ref == "D1")), True, actor="creditor")
    # Charges claimed on F-2, which the debtor disputes: they wait with it.
    f2 = ledger.get_invoice(creditor.id, "F-2")
    charge_items.claim(creditor.id, f2.debtor_id, f2, 1500, date(2026, 10, 10))
    f2.disputed = True
    db.session.commit()
    # 10 Oct: F-1 (due 1 Oct) and its charges (claimed 10 Oct) are due; F-2 (31 Oct) is not.
    assert auto_collect.collect_due(db.session.get(Creditor, creditor.id), date(2026, 10, 10)) == 1
    [attempt] = db.session.scalars(select(PaymentAttempt)).all()
    assert [(line.invoice.number, line.amount) for line in attempt.lines] == [("F-1", 120000), ("F-1+F1", 4000)]
    fake_gocardless.confirm_payment(attempt.provider_ref)
    db.session.expire_all()
    assert {i.number: i.status for i in db.session.scalars(select(Invoice))
            if i.debtor.ref == "D1"} == {"F-1": "paid", "F-1+F1": "paid", "F-2": "open", "F-2+F1": "open"}
    assert ledger.debtor_credit(attempt.debtor_id) == {}
