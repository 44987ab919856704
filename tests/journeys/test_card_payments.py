"""Card payment journeys through the portal, the real `stripe` SDK and the fake Stripe server:
paying several invoices, declines, partial payments, server-side amounts, asynchronous settlement,
refunds and chargebacks, overpayment, and a portal without Stripe keys. SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from dunning_jobs import day as dunning_day
from fakes.stripe_server import CARD_DECLINED, CardDeclined
from portal.extensions import db
from portal.models import Creditor, Event, Invoice, OutboxMessage, Payment, PaymentAttempt, Reminder
from support import back_office_login, count, portal_login

RUN_DAY = date(2026, 10, 2)  # F-1 (due 2026-10-01) is due its first reminder; F-2, F-5 nothing yet


@pytest.fixture
def app_config(providers_config):
    return providers_config


@pytest.fixture
def d1(seeded, client, app, creditor, live_app):
    """D1 in English with three open invoices, logged into the portal in `client`."""
    seeded.put("/debtors/D1", json={"name": "Alpha SARL", "email": "alpha@example.com", "language": "en"})
    r = seeded.put("/invoices/F-5", json={"debtor_ref": "D1", "issue_date": "2026-10-05", "due_date": "2026-11-04",
                                          "amount": "45.25", "currency": "EUR"})
    assert r.status_code == 201, r.json
    portal_login(client, app, "D1", creditor.id)
    return seeded


def checkout(client, **form) -> str:
    """Post the portal's Pay form; the Checkout Session id it sent the browser to."""
    r = client.post("/portal/pay", data={"method": "card", **form})
    assert r.status_code == 303, r.data
    assert "/c/pay/" in r.headers["Location"], r.headers["Location"]
    return r.headers["Location"].rsplit("/", 1)[1]


def refused(client, **form) -> str:
    """Post the Pay form expecting a refusal: back to the portal home; the page with its flash."""
    r = client.post("/portal/pay", data={"method": "card", **form})
    assert r.status_code == 303 and r.headers["Location"].endswith("/portal/"), r.headers.get("Location")
    return client.get("/portal/").get_data(as_text=True)


def attempt_of(sid: str) -> PaymentAttempt:
    db.session.expire_all()
    return db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.provider_ref == sid))


def invoice(api, number: str) -> dict:
    return api.get(f"/invoices/{number}").json


def event_types(api) -> list[str]:
    return [e["type"] for e in api.get("/events?limit=1000").json["events"]]


def reminded(number: str) -> bool:
    """Has the dunning planned a step (not a thank-you) for this invoice?"""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Reminder).join(Invoice, Invoice.id == Reminder.invoice_id)
                             .where(Invoice.number == number, Reminder.step_code != "thank_you")) > 0


def status_page(client, sid: str) -> str:
    attempt = attempt_of(sid)
    return client.get(f"/portal/payments/{attempt.id}?session_id={sid}").get_data(as_text=True)


def test_three_invoices_by_card(d1, client, fake_stripe, app):
    home = client.get("/portal/").get_data(as_text=True)
    for n in ("F-1", "F-2", "F-5"):
        assert f'name="only" value="{n}"' in home
    sid = checkout(client, invoice=["F-1", "F-2", "F-5"])

    session = fake_stripe.sessions[sid]
    items = fake_stripe.line_items[sid]
    # One line per invoice, amounts from the ledger (due date order), currency from the invoices.
    assert [(li["description"], li["price"]["unit_amount"], li["quantity"]) for li in items] == [
        ("Invoice F-1", 120000, 1), ("Invoice F-2", 30050, 1), ("Invoice F-5", 4525, 1)]
    assert session["amount_total"] == 154575 and session["currency"] == "eur"
    assert session["metadata"]["invoices"] == "F-1,F-2,F-5" and session["metadata"]["debtor_ref"] == "D1"
    assert session["customer_email"] == "alpha@example.com"
    attempt = attempt_of(sid)
    assert (attempt.status, attempt.amount, len(attempt.lines)) == ("created", 154575, 3)
    assert "Payment processing" in status_page(client, sid)

    success = fake_stripe.pay(sid)
    assert [d.status for d in fake_stripe.deliveries] == [200, 200]
    assert success.startswith(f"http://portal.test/portal/payments/{attempt.id}?session_id={sid}")
    page = client.get(success.replace("http://portal.test", "")).get_data(as_text=True)
    assert "Paid" in page and "Payment processing" not in page
    fragment = client.get(f"/portal/payments/{attempt.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Paid" in fragment and "hx-get" not in fragment and "<html" not in fragment

    for n in ("F-1", "F-2", "F-5"):
        inv = invoice(d1, n)
        assert (inv["status"], inv["balance"]) == ("paid", "0.00"), inv
    assert count(Payment) == 1 and attempt_of(sid).status == "succeeded"
    payment = db.session.scalar(select(Payment))
    assert (payment.provider, payment.amount, payment.reference) == (
        "stripe", 154575, fake_stripe.sessions[sid]["payment_intent"])
    events = d1.get("/events?limit=1000").json["events"]
    types = [e["type"] for e in events]
    assert types.count("payment.started") == 1 and types.count("payment.received") == 1
    assert sorted(e["invoice_number"] for e in events if e["type"] == "invoice.paid") == ["F-1", "F-2", "F-5"]
    received = next(e for e in events if e["type"] == "payment.received")
    assert received["data"]["amount"] == "1545.75" and received["data"]["unallocated"] == "0.00"
    assert sorted(a["invoice_number"] for a in received["data"]["allocations"]) == ["F-1", "F-2", "F-5"]

    home = client.get("/portal/").get_data(as_text=True)
    for n in ("F-1", "F-2", "F-5"):
        assert f'name="only" value="{n}"' not in home and f'name="invoice" value="{n}"' not in home
    # Paying them again is refused: nothing is open.
    assert "Choose at least one open invoice" in refused(client, invoice=["F-1"])
    assert len(fake_stripe.sessions) == 1


def test_declined_card_changes_nothing(d1, client, fake_stripe):
    sid = checkout(client, only="F-1")
    with pytest.raises(CardDeclined):
        fake_stripe.pay(sid, card=CARD_DECLINED)
    assert fake_stripe.deliveries == []
    assert invoice(d1, "F-1")["status"] == "open" and invoice(d1, "F-1")["amount_paid"] == "0.00"
    assert count(Payment) == 0 and attempt_of(sid).status == "created"
    assert "payment.received" not in event_types(d1)
    assert "Payment processing" in status_page(client, sid)  # still open for another card
    # The debtor goes back (Stripe's cancel_url, a GET): a page that says so and changes nothing.
    r = client.get(f"/portal/payments/{attempt_of(sid).id}/cancel")
    assert r.status_code == 200 and "Payment not completed" in r.get_data(as_text=True)
    assert 'action="/portal/payments/%d/cancel"' % attempt_of(sid).id in r.get_data(as_text=True)
    assert fake_stripe.sessions[sid]["status"] == "open" and attempt_of(sid).status == "created"
    # Cancelling is a POST: the session is expired, nothing was charged, the invoice can be paid.
    r = client.post(f"/portal/payments/{attempt_of(sid).id}/cancel")
    assert r.status_code == 303 and r.headers["Location"].endswith("/portal/")
    assert fake_stripe.sessions[sid]["status"] == "expired" and attempt_of(sid).status == "expired"
    assert checkout(client, only="F-1") != sid


def test_partial_payment(d1, client, fake_stripe, app, creditor):
    db.session.get(Creditor, creditor.id).partial_payment_min = 10000  # 100.00
    db.session.commit()
    page = client.get("/portal/invoices/F-1/pay")
    assert page.status_code == 200 and "100.00" in page.get_data(as_text=True)

    assert "Enter an amount between" in refused(client, only="F-1", amount="99.99")
    assert "Enter an amount between" in refused(client, only="F-1", amount="1200.01")
    assert "Enter an amount between" in refused(client, only="F-1", amount="-5")
    assert count(PaymentAttempt) == 0 and fake_stripe.sessions == {}

    sid = checkout(client, only="F-1", amount="250,50")
    assert [li["price"]["unit_amount"] for li in fake_stripe.line_items[sid]] == [25050]
    assert fake_stripe.line_items[sid][0]["description"] == "Invoice F-1 (part payment)"
    fake_stripe.pay(sid)
    inv = invoice(d1, "F-1")
    assert (inv["status"], inv["amount_paid"], inv["balance"]) == ("partially_paid", "250.50", "949.50")
    assert "invoice.paid" not in event_types(d1)
    # The rest: the minimum is the balance when the balance is smaller.
    fake_stripe.pay(checkout(client, only="F-1", amount="949.50"))
    assert invoice(d1, "F-1")["status"] == "paid" and count(Payment) == 2


def test_amount_is_computed_server_side(d1, client, fake_stripe):
    # No partial payments allowed: a posted amount is refused, never sent to Stripe.
    assert "Enter an amount between" in refused(client, only="F-1", amount="1.00")
    assert fake_stripe.sessions == {} and count(PaymentAttempt) == 0
    # Another debtor's invoice: no checkout, nothing of D2 in the answer.
    r = client.post("/portal/pay", data={"method": "card", "invoice": ["F-3"]}, follow_redirects=True)
    text = r.get_data(as_text=True)
    assert "Choose at least one open invoice" in text
    assert "F-3" not in text and "Beta" not in text and "99.99" not in text
    assert fake_stripe.sessions == {} and count(PaymentAttempt) == 0
    # Mixed with its own invoice: only its own is paid.
    sid = checkout(client, invoice=["F-3", "F-2"])
    assert [li["description"] for li in fake_stripe.line_items[sid]] == ["Invoice F-2"]
    assert fake_stripe.sessions[sid]["amount_total"] == 30050
    fake_stripe.pay(sid)
    assert invoice(d1, "F-3")["status"] == "open" and invoice(d1, "F-2")["status"] == "paid"


@pytest.mark.parametrize("succeed", [True, False])
def test_async_payment(d1, client, fake_stripe, app, succeed):
    sid = checkout(client, only="F-1")
    fake_stripe.complete_async(sid)
    assert attempt_of(sid).status == "processing"
    assert "Payment processing" in status_page(client, sid)
    home = client.get("/portal/").get_data(as_text=True)
    assert 'name="only" value="F-1"' not in home  # in flight: not offered again
    assert "Choose at least one open invoice" in refused(client, only="F-1")
    dunning_day.run(RUN_DAY)
    assert not reminded("F-1")
    assert invoice(d1, "F-1")["status"] == "open" and count(Payment) == 0

    fake_stripe.settle_async(sid, succeed=succeed)
    if succeed:
        assert attempt_of(sid).status == "succeeded" and invoice(d1, "F-1")["status"] == "paid"
        assert "Paid" in status_page(client, sid)
        dunning_day.run(RUN_DAY)
        assert not reminded("F-1")
    else:
        assert attempt_of(sid).status == "failed" and count(Payment) == 0
        assert invoice(d1, "F-1")["status"] == "open" and "payment.failed" in event_types(d1)
        assert "did not go through" in status_page(client, sid)
        assert 'name="only" value="F-1"' in client.get("/portal/").get_data(as_text=True)
        dunning_day.run(RUN_DAY)
        assert reminded("F-1")


def _alerts() -> int:
    return count(OutboxMessage, OutboxMessage.kind == "creditor_alert")


def test_refunds_reopen_invoices_and_dunning_resumes(d1, client, fake_stripe, app):
    sid = checkout(client, invoice=["F-1", "F-2"])
    fake_stripe.pay(sid)
    pi = fake_stripe.sessions[sid]["payment_intent"]
    dunning_day.run(RUN_DAY)
    assert not reminded("F-1")

    fake_stripe.refund(pi, amount=20000)  # 200.00: taken from the last allocation first (F-2)
    f1, f2 = invoice(d1, "F-1"), invoice(d1, "F-2")
    assert (f1["status"], f2["status"], f2["amount_paid"], f2["balance"]) == ("paid", "partially_paid", "100.50", "200.00")
    types = event_types(d1)
    assert types.count("payment.refunded") == 1 and types.count("invoice.reopened") == 1
    assert _alerts() == 1

    fake_stripe.refund(pi)  # the rest
    for n in ("F-1", "F-2"):
        inv = invoice(d1, n)
        assert (inv["status"], inv["amount_paid"]) == ("open", "0.00"), inv
    payment = db.session.scalar(select(Payment))
    db.session.refresh(payment)
    assert payment.reversed_amount == payment.amount == 150050
    types = event_types(d1)
    assert types.count("payment.refunded") == 2 and types.count("invoice.reopened") == 3
    assert _alerts() == 2
    alert = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "creditor_alert")).all()[-1]
    assert alert.to_addr == "owner1@creditor1.test" and "F-1" in alert.text_body
    assert 'name="only" value="F-1"' in client.get("/portal/").get_data(as_text=True)
    dunning_day.run(RUN_DAY)
    assert reminded("F-1")


def test_chargeback_reopens_invoice(d1, client, fake_stripe, app):
    sid = checkout(client, only="F-1")
    fake_stripe.pay(sid)
    assert invoice(d1, "F-1")["status"] == "paid"
    dispute = fake_stripe.dispute(fake_stripe.sessions[sid]["payment_intent"])
    assert fake_stripe.deliveries[-1].status == 200
    inv = invoice(d1, "F-1")
    assert (inv["status"], inv["amount_paid"]) == ("open", "0.00")
    events = d1.get("/events?limit=1000").json["events"]
    back = [e for e in events if e["type"] == "payment.charged_back"]
    assert len(back) == 1 and back[0]["data"]["amount"] == "1200.00" and back[0]["data"]["reversal"] == dispute["id"]
    assert [e["invoice_number"] for e in events if e["type"] == "invoice.reopened"] == ["F-1"]
    assert _alerts() == 1
    # The same dispute told twice changes nothing more.
    fake_stripe.deliver(next(e for e in fake_stripe.events if e["type"] == "charge.dispute.created"))
    assert _alerts() == 1 and event_types(d1).count("payment.charged_back") == 1
    dunning_day.run(RUN_DAY)
    assert reminded("F-1")


def test_chargeback_won_pays_the_invoice_again(d1, client, fake_stripe, app):
    sid = checkout(client, only="F-1")
    fake_stripe.pay(sid)
    dispute = fake_stripe.dispute(fake_stripe.sessions[sid]["payment_intent"])
    assert invoice(d1, "F-1")["status"] == "open"
    fake_stripe.close_dispute(dispute["id"], "won")
    assert fake_stripe.deliveries[-1].status == 200
    inv = invoice(d1, "F-1")
    assert (inv["status"], inv["amount_paid"]) == ("paid", "1200.00")
    won = db.session.scalar(select(Payment).where(Payment.reference == f"{dispute['id']}:won"))
    assert won is not None and won.amount == 120000 and count(Payment) == 2
    fake_stripe.deliver(fake_stripe.events[-1])  # told twice: nothing more
    assert count(Payment) == 2 and invoice(d1, "F-1")["amount_paid"] == "1200.00"

    # Lost, and won but told out of order: the invoice ends as the dispute did.
    sid2 = checkout(client, only="F-2")
    fake_stripe.pay(sid2)
    lost = fake_stripe.dispute(fake_stripe.sessions[sid2]["payment_intent"])
    fake_stripe.close_dispute(lost["id"], "lost")
    assert invoice(d1, "F-2")["status"] == "open" and count(Payment) == 3
    fake_stripe.auto_deliver = False
    sid3 = checkout(client, only="F-5")
    fake_stripe.pay(sid3)
    late = fake_stripe.dispute(fake_stripe.sessions[sid3]["payment_intent"])
    fake_stripe.close_dispute(late["id"], "won")
    for type_ in ("charge.dispute.closed", "checkout.session.completed", "charge.dispute.created"):
        assert fake_stripe.deliver(next(e for e in fake_stripe.pending if e["type"] == type_)).status == 200
    inv = invoice(d1, "F-5")
    assert (inv["status"], inv["amount_paid"]) == ("paid", "45.25")
    assert event_types(d1).count("payment.charged_back") == 2  # F-1 and F-2, never F-5


def test_overpayment_becomes_credit(d1, client, fake_stripe, app):
    sid = checkout(client, only="F-2")
    home = client.get("/portal/").get_data(as_text=True)
    assert "Credit on your account" not in home
    r = d1.post("/invoices/F-2/payments", json={"amount": "300.50", "date": "2026-11-30", "reference": "VIR-77"})
    assert r.status_code == 201 and r.json["invoice"]["status"] == "paid"
    fake_stripe.pay(sid)  # the checkout was still open: the debtor pays again
    assert count(Payment) == 2
    inv = invoice(d1, "F-2")
    assert (inv["status"], inv["amount_paid"]) == ("paid", "300.50")  # not 601.00
    received = [e for e in d1.get("/events?limit=1000").json["events"] if e["type"] == "payment.received"]
    assert received[-1]["data"]["unallocated"] == "300.50" and received[-1]["data"]["allocations"] == []
    assert invoice(d1, "F-1")["status"] == "open"  # the credit is not spent on another invoice by itself
    home = client.get("/portal/").get_data(as_text=True)
    assert "Credit on your account" in home
    credit = home.split("Credit on your account", 1)[1][:200]
    assert "300.50" in credit


def test_without_stripe_keys(seeded, make_app, app, creditor):
    seeded.put("/debtors/D1", json={"name": "Alpha SARL", "email": "alpha@example.com", "language": "en"})
    plain = make_app()  # default config: no provider configured
    browser = plain.test_client()
    portal_login(browser, app, "D1", creditor.id)
    home = browser.get("/portal/").get_data(as_text=True)
    assert "F-1" in home and 'name="only"' not in home and 'value="card"' not in home
    r = browser.post("/portal/pay", data={"only": "F-1", "method": "card"}, follow_redirects=True)
    assert "This way of paying is not available." in r.get_data(as_text=True)
    assert count(PaymentAttempt) == 0
    r = browser.post("/webhooks/stripe", data=b'{"id": "evt_1"}', headers={"Stripe-Signature": "t=1,v1=00"})
    assert r.status_code == 404
    assert browser.get("/portal/invoices/F-1/pay").status_code == 404


def test_a_second_checkout_expires_the_first(d1, client, fake_stripe):
    """Two tabs (or a visit abandoned on the Checkout page): one invoice is never paid twice."""
    first = checkout(client, only="F-2")
    second = checkout(client, only="F-2")
    assert fake_stripe.sessions[first]["status"] == "expired" and attempt_of(first).status == "expired"
    with pytest.raises(Exception, match="no longer active"):
        fake_stripe.pay(first)
    fake_stripe.pay(second)
    assert count(Payment) == 1 and invoice(d1, "F-2")["status"] == "paid"

    # The first tab was paid while its webhook is late: the second tab records that payment
    # instead of opening another checkout.
    fake_stripe.auto_deliver = False
    third = checkout(client, only="F-1")
    fake_stripe.pay(third)
    page = refused(client, only="F-1")
    assert "Choose at least one open invoice that is not already being paid." in page
    assert attempt_of(third).status == "succeeded" and count(Payment) == 2
    assert invoice(d1, "F-1")["status"] == "paid"
    assert count(PaymentAttempt) == 3


def test_concurrent_pay_clicks_open_one_checkout(d1, client, fake_stripe, app, make_app, app_config, creditor):
    """Issue 15, 1(b): four Pay clicks for one invoice in the same instant. The database lets one
    attempt start (one in-flight line per invoice); the others are told a payment is under way,
    with a way to continue or cancel it, never a 500. Paying every session: one payment."""
    browsers = [client] + [make_app(**app_config).test_client() for _ in range(3)]
    for browser in browsers[1:]:
        portal_login(browser, app, "D1", creditor.id)
    fake_stripe.latency = 0.3  # every click has written its attempt before Stripe answers the first
    barrier, answers = threading.Barrier(len(browsers), timeout=120), [None] * len(browsers)

    def click(i):
        barrier.wait()
        answers[i] = browsers[i].post("/portal/pay", data={"method": "card", "only": "F-2"})
    threads = [threading.Thread(target=click, args=(i,)) for i in range(len(browsers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    fake_stripe.latency = 0.0
    assert all(r is not None and r.status_code == 303 for r in answers), [
        (r.status_code, r.get_data(as_text=True)[:300]) for r in answers if r is not None]
    payable = [sid for sid, s in fake_stripe.sessions.items() if s["status"] == "open"]
    assert len(payable) == 1, {sid: s["status"] for sid, s in fake_stripe.sessions.items()}
    winner = attempt_of(payable[0])
    told = [(b, r) for b, r in zip(browsers, answers) if "/c/pay/" not in r.headers["Location"]]
    assert told
    for browser, r in told:
        assert r.headers["Location"].endswith(f"/portal/payments/{winner.id}"), r.headers["Location"]
        page = browser.get(f"/portal/payments/{winner.id}").get_data(as_text=True)
        assert "A payment for this invoice is already under way" in page
        assert "Continue to payment" in page and "Cancel this payment" in page
    resume = told[0][0].get(f"/portal/payments/{winner.id}/resume")
    assert resume.status_code == 303 and resume.headers["Location"] == fake_stripe.checkout_url(payable[0])

    for sid in list(fake_stripe.sessions):
        try:
            fake_stripe.pay(sid)
        except Exception:
            pass  # expired or never opened: not payable
    assert count(Payment) == 1
    assert (invoice(d1, "F-2")["status"], invoice(d1, "F-2")["amount_paid"]) == ("paid", "300.50")


def test_money_received_twice_is_credit_the_creditor_is_told_and_refunds_it(d1, client, fake_stripe, app,
                                                                             make_app, app_config, creditor):
    """Issue 15, 1: a provider race still brings money twice (the card checkout is paid while its
    webhook is late and a transfer pays the invoice meanwhile): the second becomes credit on the
    account, the creditor hears of it, and refunds it in one click in the back office."""
    sid = checkout(client, only="F-2")
    fake_stripe.auto_deliver = False
    fake_stripe.pay(sid)
    r = d1.post("/invoices/F-2/payments", json={"amount": "300.50", "date": "2026-11-30", "reference": "VIR-78"})
    assert r.status_code == 201
    alerts_before = _alerts()
    fake_stripe.auto_deliver = True
    assert [d.status for d in fake_stripe.deliver_pending()] == [200, 200]
    inv = invoice(d1, "F-2")
    assert (inv["status"], inv["amount_paid"]) == ("paid", "300.50") and count(Payment) == 2
    overpaid = [e for e in d1.get("/events?limit=1000").json["events"] if e["type"] == "payment.overpaid"]
    assert len(overpaid) == 1 and overpaid[0]["data"]["amount"] == "300.50"
    assert overpaid[0]["data"]["invoices"] == ["F-2"]
    assert _alerts() == alerts_before + 1
    alert = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "creditor_alert")
                               .order_by(OutboxMessage.id.desc())).first()
    assert "Payé deux fois" in alert.subject and "page Paiements" in alert.text_body  # the creditor's French

    office = back_office_login(make_app(**app_config).test_client(), creditor)
    page = office.get("/app/payments").get_data(as_text=True)
    card = db.session.scalar(select(Payment).where(Payment.provider == "stripe"))
    assert f'action="/app/payments/{card.id}/refund"' in page and "Rembourser 300,50" in page
    r = office.post(f"/app/payments/{card.id}/refund")
    assert r.status_code == 303
    [refund] = fake_stripe.refunds.values()
    assert (refund["amount"], refund["payment_intent"]) == (30050, card.reference)
    db.session.refresh(card)
    assert card.reversed_amount == 30050
    inv = invoice(d1, "F-2")
    assert (inv["status"], inv["amount_paid"]) == ("paid", "300.50")  # the credit went back, not the invoice
    assert "Credit on your account" not in client.get("/portal/").get_data(as_text=True)
    page = office.get("/app/payments").get_data(as_text=True)
    assert "avoir a été remboursé" in page and f'/app/payments/{card.id}/refund"' not in page
    # A second click: nothing more to refund, nothing sent to Stripe.
    office.post(f"/app/payments/{card.id}/refund")
    assert len(fake_stripe.refunds) == 1
    assert "aucun avoir à rembourser" in office.get("/app/payments").get_data(as_text=True)
    assert event_types(d1).count("payment.refunded") == 1
