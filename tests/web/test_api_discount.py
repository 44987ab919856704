"""The early-payment discount through the API and the ledger (CONTRACT §4, §10): PUT validation,
GET's `early_payment_discount` and `amount_due_now`, a transfer of the discounted amount posted
(POST /invoices/{n}/payments) or read from a bank statement, by the last day (paid, the discount
granted once, through the ledger) or a day late (partially paid). SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from recon_files import Entry, camt053
from portal.domain.calendar import today_in
from portal.extensions import db
from portal.models import Event, Invoice, Payment, PaymentAllocation
from support import back_office_login, response_text

TODAY = today_in("Europe/Paris")  # the test creditor's time zone


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def body(until: str | None = None, percent="2", amount="1000.50", **extra) -> dict:
    out = {"debtor_ref": "D1", "issue_date": day(-40), "due_date": day(20), "amount": amount, "currency": "EUR",
           **extra}
    if until is not None:
        out["early_payment_discount"] = {"percent": percent, "until": until}
    return out


@pytest.fixture
def d1(api):
    api.put("/debtors/D1", json={"name": "Alpha SARL", "email": "alpha@example.com", "language": "fr"})
    return api


def granted(number: str) -> list[tuple[str, int]]:
    db.session.rollback()  # see what the requests committed
    return db.session.execute(
        select(Payment.provider, PaymentAllocation.amount).join(PaymentAllocation, PaymentAllocation.payment_id == Payment.id)
        .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
        .where(Invoice.number == number, Payment.provider == "discount")).all()


def events_of(api, type_: str) -> list[dict]:
    return [e for e in api.get("/events?limit=1000").json["events"] if e["type"] == type_]


BAD = [({"percent": "0", "until": day(1)}, "early_payment_discount.percent"),
       ({"percent": "100", "until": day(1)}, "early_payment_discount.percent"),
       ({"percent": "-2", "until": day(1)}, "early_payment_discount.percent"),
       ({"percent": "2.125", "until": day(1)}, "early_payment_discount.percent"),
       ({"percent": 2, "until": day(1)}, "early_payment_discount.percent"),
       ({"percent": "2,5", "until": day(1)}, "early_payment_discount.percent"),
       ({"percent": "abc", "until": day(1)}, "early_payment_discount.percent"),
       ({"until": day(1)}, "early_payment_discount.percent"),
       ({"percent": "2", "until": "2026-02-30"}, "early_payment_discount.until"),
       ({"percent": "2", "until": "14/12/2026"}, "early_payment_discount.until"),
       ({"percent": "2"}, "early_payment_discount.until"),
       ({"percent": "2", "until": day(-41)}, "early_payment_discount.until"),  # before the issue date
       ({"percent": "2", "until": day(1), "extra": 1}, "early_payment_discount"),
       ("2%", "early_payment_discount"), ([], "early_payment_discount")]


def test_put_refuses_bad_discounts_naming_the_field(d1):
    for value, field in BAD:
        r = d1.put("/invoices/E-1", json={**body(), "early_payment_discount": value})
        assert r.status_code == 422, (value, r.json)
        assert r.json["error"]["field"] == field, (value, r.json)
    assert d1.get("/invoices/E-1").status_code == 404  # nothing recorded


def test_get_shows_the_discount_and_the_amount_due_now(d1):
    r = d1.put("/invoices/E-1", json=body(until=day(10), percent="2.5"))
    assert r.status_code == 201, r.json
    # 2.5 % of 1000.50 = 25.0125 -> 25.01 (half up); due now 975.49
    assert r.json["early_payment_discount"] == {"percent": "2.5", "until": day(10)}
    assert (r.json["balance"], r.json["amount_due_now"]) == ("1000.50", "975.49")
    assert d1.get("/invoices/E-1").json["amount_due_now"] == "975.49"
    assert d1.get("/debtors/D1").json["open_invoices"][0]["amount_due_now"] == "975.49"
    # The last day is today: still available. Yesterday: the full balance is due.
    assert d1.put("/invoices/E-1", json=body(until=day(0))).json["amount_due_now"] == "980.49"
    r = d1.put("/invoices/E-1", json=body(until=day(-1)))
    assert (r.json["early_payment_discount"]["until"], r.json["amount_due_now"]) == (day(-1), "1000.50")
    # Absent leaves it as it is; null removes it.
    assert d1.put("/invoices/E-1", json=body()).json["early_payment_discount"] == {"percent": "2", "until": day(-1)}
    r = d1.put("/invoices/E-1", json={**body(), "early_payment_discount": None})
    assert r.status_code == 200 and r.json["early_payment_discount"] is None and r.json["amount_due_now"] == "1000.50"
    changed = events_of(d1, "invoice.updated")
    assert {"discount_percent", "discount_until"} <= {f for e in changed for f in e["data"]["fields"]}


def pay(api, amount, on, reference):
    return api.post("/invoices/E-1/payments", json={"amount": amount, "date": on, "reference": reference})


def test_transfer_of_the_discounted_amount_by_the_last_day_settles_the_invoice(d1):
    assert d1.put("/invoices/E-1", json=body(until=day(-3))).status_code == 201
    r = pay(d1, "980.49", day(-3), "VIR-1")  # booked on the last day
    assert r.status_code == 201, r.json
    assert (r.json["allocated"], r.json["unallocated"]) == ("980.49", "0.00")
    inv = d1.get("/invoices/E-1").json
    assert (inv["status"], inv["amount_paid"], inv["balance"], inv["amount_due_now"]) == \
        ("paid", "1000.50", "0.00", "0.00")
    assert granted("E-1") == [("discount", 2001)]
    [event] = events_of(d1, "discount.granted")
    assert event["invoice_number"] == "E-1"
    assert (event["data"]["amount"], event["data"]["percent"], event["data"]["until"], event["data"]["paid_on"]) == \
        ("20.01", "2", day(-3), day(-3))
    assert len(events_of(d1, "invoice.paid")) == 1
    # Posted again (a retry): the same payment, the discount not granted twice.
    assert pay(d1, "980.49", day(-3), "VIR-1").status_code == 200
    assert granted("E-1") == [("discount", 2001)] and len(events_of(d1, "discount.granted")) == 1
    assert d1.get("/debtors/D1").json["balance"] == "0.00"


def test_transfer_a_day_after_the_last_day_leaves_the_discount_open(d1):
    assert d1.put("/invoices/E-1", json=body(until=day(-3))).status_code == 201
    assert pay(d1, "980.49", day(-2), "VIR-1").status_code == 201
    inv = d1.get("/invoices/E-1").json
    assert (inv["status"], inv["balance"], inv["amount_due_now"]) == ("partially_paid", "20.01", "20.01")
    assert granted("E-1") == [] and events_of(d1, "discount.granted") == []


def test_two_part_payments_by_the_last_day_earn_it_and_full_price_needs_none(d1):
    assert d1.put("/invoices/E-1", json=body(until=day(0))).status_code == 201
    assert pay(d1, "500.00", day(-1), "VIR-1").status_code == 201
    assert d1.get("/invoices/E-1").json["amount_due_now"] == "480.49"
    assert pay(d1, "480.49", day(0), "VIR-2").status_code == 201
    assert d1.get("/invoices/E-1").json["status"] == "paid" and granted("E-1") == [("discount", 2001)]
    # An invoice paid at its full price in time needs no discount.
    assert d1.put("/invoices/E-2", json=body(until=day(0))).status_code == 201
    r = d1.post("/invoices/E-2/payments", json={"amount": "1000.50", "date": day(0), "reference": "VIR-3"})
    assert r.status_code == 201 and r.json["invoice"]["status"] == "paid" and granted("E-2") == []


def test_a_payment_for_two_invoices_keeps_each_invoice_s_discount_to_itself(d1):
    """The ledger allocates up to each invoice's discounted amount first: paying the discounted E-1
    and the undiscounted E-2 (older) together never spends E-1's discount on E-2."""
    assert d1.put("/invoices/E-2", json={**body(amount="100.00"), "due_date": day(1)}).status_code == 201
    assert d1.put("/invoices/E-1", json=body(until=day(0))).status_code == 201
    creditor = db.session.scalar(select(Invoice.creditor_id).where(Invoice.number == "E-1"))
    from portal.services import ledger
    debtor_id = db.session.scalar(select(Invoice.debtor_id).where(Invoice.number == "E-1"))
    ledger.record_payment(creditor, debtor_id, provider="offline", reference="BOTH", amount=98049 + 10000,
                          currency="EUR", received_on=TODAY, invoice_ids=None, actor="test")
    assert d1.get("/invoices/E-1").json["status"] == "paid" and d1.get("/invoices/E-2").json["status"] == "paid"
    assert granted("E-1") == [("discount", 2001)]


@pytest.mark.parametrize("offset, status", [(-3, "paid"), (-2, "partially_paid")], ids=["last_day", "day_after"])
def test_bank_statement_transfer_of_the_discounted_amount(d1, offset, status):
    assert d1.put("/invoices/FA-2026-117", json=body(until=day(-3))).status_code == 201
    # Quoting the invoice's number: matched, recorded on its booking date.
    statement = camt053([Entry("980.49", TODAY + timedelta(days=offset), "B1", "ALPHA SARL", "Facture FA-2026-117")])
    r = d1.post("/bank-statements", data=statement, content_type="application/xml")
    assert r.status_code == 201 and r.json["matched"] == 1, r.json
    inv = d1.get("/invoices/FA-2026-117").json
    assert inv["status"] == status
    assert granted("FA-2026-117") == ([("discount", 2001)] if status == "paid" else [])
    [tx] = d1.get("/bank-transactions?status=matched").json["transactions"]
    assert (tx["invoices"], tx["reason"]) == (["FA-2026-117"], "invoice_numbers")


def test_bank_statement_suggests_the_invoice_for_its_discounted_amount(d1):
    """No reference, no number: a debtor's invoice whose discounted balance is the amount, on the
    booking day, is suggested (exact amount); confirming it grants the discount."""
    assert d1.put("/invoices/E-1", json=body(until=day(-3))).status_code == 201
    statement = camt053([Entry("980.49", TODAY + timedelta(days=-4), "B1", "A. SARL", "virement")])
    r = d1.post("/bank-statements", data=statement, content_type="application/xml")
    assert r.json["suggested"] == 1, r.json
    [tx] = d1.get("/bank-transactions?status=suggested").json["transactions"]
    assert (tx["invoices"], tx["reason"]) == (["E-1"], "exact_amount")
    assert d1.post(f"/bank-transactions/{tx['id']}/match").status_code == 200
    assert d1.get("/invoices/E-1").json["status"] == "paid" and granted("E-1") == [("discount", 2001)]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.type == "discount.granted")) == 1


def test_back_office_invoice_page_shows_the_terms_then_the_discount_granted(d1, client, creditor):
    assert d1.put("/invoices/E-1", json=body(until=day(0))).status_code == 201
    back_office_login(client, creditor)
    page = response_text(client.get("/app/invoices/E-1"))
    assert "Escompte" in page and "2\u00a0% (20,01\u00a0€) pour un règlement intégral" in page
    assert "980,49\u00a0€ à régler aujourd'hui" in page
    assert "avoir de TVA" not in page
    assert "Escompte jusqu'au" in response_text(client.get("/app/debtors/D1"))
    assert pay(d1, "980.49", day(0), "VIR-1").status_code == 201
    page = response_text(client.get("/app/invoices/E-1"))
    assert "Escompte pour paiement anticipé accordé\u00a0: 20,01\u00a0€" in page
    assert "L'avoir de TVA correspondant est à émettre par votre logiciel de facturation." in page
    assert "escompte pour paiement anticipé accordé" in page  # the payments list names it
