"""The creditor REST API (CONTRACT §4): every endpoint's happy path, tenant isolation, authentication."""
from __future__ import annotations

import base64
import re
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.domain.references import invoice_reference
from portal.extensions import db
from portal.models import Document, Event, Invoice, Payment, PaymentAllocation
from support import Api

INVOICE_FIELDS = {"number", "debtor_ref", "amount", "amount_paid", "balance", "currency", "issue_date", "due_date",
                  "status", "disputed", "last_reminder", "payment_reference", "early_payment_discount",
                  "amount_due_now"}


def invoice_body(ref="D1", issue="2026-09-01", due="2026-10-01", amount="1200.00", currency="EUR", **extra):
    return {"debtor_ref": ref, "issue_date": issue, "due_date": due, "amount": amount, "currency": currency, **extra}


def count(model) -> int:
    db.session.rollback()  # see what the requests committed
    return db.session.scalar(select(func.count()).select_from(model))


# --- debtors ------------------------------------------------------------------------------------------

def test_put_debtor_creates_then_updates(api):
    r = api.put("/debtors/C-001", json={"name": "Alpha SARL", "email": "alpha@example.com", "language": "en",
                                        "profile": "key_account", "phone": "+33 1 23 45 67 89"})
    assert r.status_code == 201, r.json
    assert r.json["ref"] == "C-001"
    assert r.json["name"] == "Alpha SARL"
    assert r.json["email"] == "alpha@example.com"
    assert r.json["language"] == "en"
    assert r.json["profile"] == "key_account"
    assert r.json["phone"] == "+33123456789"  # stored as E.164 (CONTRACT §4)
    assert r.json["balance"] == "0.00"
    assert r.json["open_invoices"] == []

    r = api.put("/debtors/C-001", json={"name": "Alpha SAS", "email": "compta@alpha.example", "language": "fr"})
    assert r.status_code == 200, r.json
    got = api.get("/debtors/C-001").json
    assert (got["name"], got["email"], got["language"]) == ("Alpha SAS", "compta@alpha.example", "fr")
    # Fields left out of the update keep their value.
    assert got["profile"] == "key_account" and got["phone"] == "+33123456789"
    types = [e["type"] for e in api.get("/events").json["events"] if e["debtor_ref"] == "C-001"]
    assert types == ["debtor.created", "debtor.updated"]


def test_put_debtor_same_data_twice_is_200_and_records_no_change(api):
    body = {"name": "Alpha", "email": "a@example.com", "language": "fr"}
    assert api.put("/debtors/D1", json=body).status_code == 201
    assert api.put("/debtors/D1", json=body).status_code == 200
    types = [e["type"] for e in api.get("/events").json["events"] if e["debtor_ref"] == "D1"]
    assert types == ["debtor.created"]


def test_put_debtor_update_keeps_what_it_leaves_out(api):
    api.put("/debtors/D1", json={"name": "Beta Ltd", "email": "beta@example.com", "language": "en",
                                 "profile": "risky", "phone": "+44 20 1234 5678", "kind": "consumer"})
    r = api.put("/debtors/D1", json={"name": "Beta Limited"})
    assert r.status_code == 200
    got = api.get("/debtors/D1").json
    assert got["name"] == "Beta Limited"
    # An English debtor does not turn French, nor lose its e-mail, because the update did not repeat them.
    assert (got["email"], got["language"], got["profile"], got["phone"], got["kind"]) == \
        ("beta@example.com", "en", "risky", "+442012345678", "consumer")
    # An explicit null clears the e-mail.
    assert api.put("/debtors/D1", json={"name": "Beta Limited", "email": None}).json["email"] is None


def test_put_debtor_language_defaults_to_the_creditors(client, new_creditor):
    en = Api(client, new_creditor("English Ltd", language="en"))
    assert en.put("/debtors/X1", json={"name": "No language given"}).json["language"] == "en"


def test_get_debtor_with_balance_and_open_invoices(seeded):
    r = seeded.get("/debtors/D1")
    assert r.status_code == 200
    d = r.json
    assert (d["ref"], d["name"], d["email"], d["language"]) == ("D1", "Alpha SARL", "alpha@example.com", "fr")
    assert d["balance"] == "1500.50"  # 1200.00 + 300.50
    assert [i["number"] for i in d["open_invoices"]] == ["F-1", "F-2"]  # due date order
    assert d["open_invoices"][0] == seeded.get("/invoices/F-1").json
    assert seeded.get("/debtors/D2").json["balance"] == "5099.99"


def test_debtor_balance_leaves_out_paid_cancelled_and_other_currencies(seeded):
    seeded.post("/invoices/F-1/payments", json={"amount": "1200.00", "date": "2026-10-02", "reference": "VIR-1"})
    seeded.put("/invoices/F-2", json=invoice_body(issue="2026-10-01", due="2026-10-31", amount="300.50",
                                                  cancelled=True))
    seeded.put("/invoices/U-1", json=invoice_body(amount="10.00", currency="USD"))
    d = seeded.get("/debtors/D1").json
    assert d["balance"] == "0.00"
    assert d["balances"] == {"USD": "10.00"}
    assert [i["number"] for i in d["open_invoices"]] == ["U-1"]


# --- invoices -----------------------------------------------------------------------------------------

def test_put_invoice_201_then_get_exact_fields(seeded):
    r = seeded.put("/invoices/FA-2026/0001", json=invoice_body(amount="1200.00"))
    assert r.status_code == 201, r.json
    expected = {"number": "FA-2026/0001", "debtor_ref": "D1", "amount": "1200.00", "amount_paid": "0.00",
                "balance": "1200.00", "currency": "EUR", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                "status": "open", "disputed": False, "last_reminder": None, "early_payment_discount": None,
                "amount_due_now": "1200.00"}
    db.session.rollback()  # see what the request committed
    invoice_id = db.session.scalar(select(Invoice.id).where(Invoice.number == "FA-2026/0001"))
    expected["payment_reference"] = invoice_reference(invoice_id)
    assert r.json == expected
    g = seeded.get("/invoices/FA-2026/0001")
    assert g.status_code == 200
    assert g.json == expected
    assert set(g.json) == INVOICE_FIELDS


def test_put_invoice_again_updates_in_place(seeded):
    before = count(Invoice)
    r = seeded.put("/invoices/F-1", json=invoice_body(ref="D2", issue="2026-09-02", due="2026-11-01",
                                                       amount="1250.10", currency="eur"))
    assert r.status_code == 200, r.json
    assert count(Invoice) == before
    g = seeded.get("/invoices/F-1").json
    assert (g["debtor_ref"], g["issue_date"], g["due_date"], g["amount"], g["balance"], g["currency"]) == \
        ("D2", "2026-09-02", "2026-11-01", "1250.10", "1250.10", "EUR")
    updated = [e for e in seeded.get("/events").json["events"] if e["type"] == "invoice.updated"]
    assert len(updated) == 1 and updated[0]["invoice_number"] == "F-1"
    assert set(updated[0]["data"]["fields"]) == {"amount", "debtor_id", "due_date", "issue_date"}


def test_amounts_keep_the_currency_exponent(seeded):
    assert seeded.put("/invoices/J-1", json=invoice_body(amount="1500", currency="JPY")).json["amount"] == "1500"
    assert seeded.put("/invoices/B-1", json=invoice_body(amount="12.345", currency="BHD")).json["amount"] == "12.345"
    assert seeded.put("/invoices/E-1", json=invoice_body(amount="7.5")).json["amount"] == "7.50"
    assert seeded.put("/invoices/E-2", json=invoice_body(amount="10000000000.00")).json["amount"] == "10000000000.00"


def test_put_invoice_with_pdf_stores_the_document(seeded):
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    r = seeded.put("/invoices/P-1", json=invoice_body(pdf_base64=base64.b64encode(pdf).decode()))
    assert r.status_code == 201, r.json
    db.session.rollback()
    doc = db.session.scalar(select(Document).join(Invoice, Invoice.id == Document.invoice_id)
                            .where(Invoice.number == "P-1"))
    assert doc.content == pdf and doc.source == "uploaded"
    # The same PDF again changes nothing; another one replaces it.
    seeded.put("/invoices/P-1", json=invoice_body(pdf_base64=base64.b64encode(pdf).decode()))
    uploads = [e for e in seeded.get("/events").json["events"] if e["type"] == "document.uploaded"]
    assert len(uploads) == 1
    pdf2 = pdf + b"% v2\n"
    assert seeded.put("/invoices/P-1", json=invoice_body(pdf_base64=base64.b64encode(pdf2).decode())).status_code == 200
    db.session.rollback()
    assert db.session.scalar(select(Document.content).where(Document.id == doc.id)) == pdf2
    assert count(Document) == 1


def test_cancel_and_reopen_invoice(seeded):
    r = seeded.put("/invoices/F-3", json=invoice_body(ref="D2", issue="2026-10-15", due="2026-11-14",
                                                       amount="99.99", cancelled=True))
    assert r.status_code == 200
    assert (r.json["status"], r.json["balance"]) == ("cancelled", "0.00")
    # A later PUT without "cancelled" keeps it cancelled; cancelled: false reopens it.
    r = seeded.put("/invoices/F-3", json=invoice_body(ref="D2", issue="2026-10-15", due="2026-11-14", amount="99.99"))
    assert r.json["status"] == "cancelled"
    r = seeded.put("/invoices/F-3", json=invoice_body(ref="D2", issue="2026-10-15", due="2026-11-14",
                                                       amount="99.99", cancelled=False))
    assert (r.json["status"], r.json["balance"]) == ("open", "99.99")


# --- payments -----------------------------------------------------------------------------------------

def pay(api, number, amount, reference, date="2026-10-15"):
    return api.post(f"/invoices/{number}/payments", json={"amount": amount, "date": date, "reference": reference})


def test_partial_then_full_payment(seeded):
    r = pay(seeded, "F-1", "200.00", "VIR-001")
    assert r.status_code == 201, r.json
    assert (r.json["reference"], r.json["amount"], r.json["currency"], r.json["date"]) == \
        ("VIR-001", "200.00", "EUR", "2026-10-15")
    assert (r.json["allocated"], r.json["unallocated"]) == ("200.00", "0.00")
    inv = seeded.get("/invoices/F-1").json
    assert (inv["status"], inv["amount_paid"], inv["balance"]) == ("partially_paid", "200.00", "1000.00")
    assert seeded.get("/debtors/D1").json["balance"] == "1300.50"

    r = pay(seeded, "F-1", "1000.00", "VIR-002", date="2026-10-20")
    assert r.status_code == 201
    inv = seeded.get("/invoices/F-1").json
    assert (inv["status"], inv["amount_paid"], inv["balance"]) == ("paid", "1200.00", "0.00")
    assert [i["number"] for i in seeded.get("/debtors/D1").json["open_invoices"]] == ["F-2"]
    types = [e["type"] for e in seeded.get("/events").json["events"] if e.get("invoice_number") == "F-1"]
    assert types == ["invoice.created", "payment.received", "payment.received", "invoice.paid"]


def test_payment_is_idempotent_on_reference(seeded):
    first = pay(seeded, "F-1", "200.00", "VIR-001")
    assert first.status_code == 201
    again = pay(seeded, "F-1", "200.00", "VIR-001")
    assert again.status_code == 200
    assert again.json["id"] == first.json["id"]
    assert seeded.get("/invoices/F-1").json["amount_paid"] == "200.00"  # counted once
    assert count(Payment) == 1
    assert len([e for e in seeded.get("/events").json["events"] if e["type"] == "payment.received"]) == 1


def test_concurrent_retries_of_one_reference_count_once(seeded, make_app, creditor):
    """Eight requests at once, half of them with another amount: one payment, and every answer
    is the one a sequential retry would get (200 for the same payment, 409 for another)."""
    clients = [make_app().test_client() for _ in range(8)]
    barrier = threading.Barrier(len(clients), timeout=120)
    results = []

    def post(i):
        amount = "100.00" if i % 2 else "150.00"
        barrier.wait()
        r = clients[i].post("/api/v1/invoices/F-1/payments", headers=creditor.headers,
                            json={"amount": amount, "date": "2026-10-01", "reference": "SAME"})
        results.append((amount, r.status_code))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [amount for amount, status in results if status == 201]
    assert len(winners) == 1, results
    for amount, status in results:
        assert status in (200, 201) if amount == winners[0] else status == 409, results
    assert seeded.get("/invoices/F-1").json["amount_paid"] == winners[0]
    assert count(Payment) == 1


@pytest.mark.parametrize("amount, date, number", [
    ("300.00", "2026-10-15", "F-1"),   # another amount
    ("200.00", "2026-10-16", "F-1"),   # another date
    ("200.00", "2026-10-15", "F-2"),   # another invoice
])
def test_same_reference_for_another_payment_is_409(seeded, amount, date, number):
    assert pay(seeded, "F-1", "200.00", "VIR-001").status_code == 201
    r = pay(seeded, number, amount, "VIR-001", date=date)
    assert r.status_code == 409
    assert r.json["error"]["code"] == "conflict" and r.json["error"]["field"] == "reference"
    assert seeded.get("/invoices/F-1").json["amount_paid"] == "200.00"
    assert seeded.get("/invoices/F-2").json["amount_paid"] == "0.00"
    assert count(Payment) == 1


def test_overpayment_pays_the_invoice_and_keeps_the_rest_unallocated(seeded):
    r = pay(seeded, "F-2", "400.00", "VIR-9")
    assert r.status_code == 201
    assert (r.json["allocated"], r.json["unallocated"]) == ("300.50", "99.50")
    assert r.json["invoice"]["status"] == "paid"
    assert seeded.get("/invoices/F-1").json["amount_paid"] == "0.00"  # never spills to another invoice
    db.session.rollback()
    assert db.session.scalar(select(func.sum(PaymentAllocation.amount))) == 30050


def test_payment_on_cancelled_invoice_is_409(seeded):
    seeded.put("/invoices/F-2", json=invoice_body(issue="2026-10-01", due="2026-10-31", amount="300.50",
                                                  cancelled=True))
    r = pay(seeded, "F-2", "10.00", "VIR-X")
    assert r.status_code == 409
    assert count(Payment) == 0


def test_invoice_with_payments_cannot_drop_below_paid_or_move(seeded):
    pay(seeded, "F-1", "500.00", "VIR-1")
    r = seeded.put("/invoices/F-1", json=invoice_body(amount="499.99"))
    assert r.status_code == 409 and r.json["error"]["field"] == "amount"
    r = seeded.put("/invoices/F-1", json=invoice_body(ref="D2"))
    assert r.status_code == 409 and r.json["error"]["field"] == "debtor_ref"
    r = seeded.put("/invoices/F-1", json=invoice_body(currency="USD"))
    assert r.status_code == 409 and r.json["error"]["field"] == "currency"
    inv = seeded.get("/invoices/F-1").json
    assert (inv["debtor_ref"], inv["amount"], inv["currency"], inv["amount_paid"]) == ("D1", "1200.00", "EUR", "500.00")
    # Down to exactly what was paid: the invoice is paid.
    r = seeded.put("/invoices/F-1", json=invoice_body(amount="500.00"))
    assert (r.status_code, r.json["status"], r.json["balance"]) == (200, "paid", "0.00")


# --- links --------------------------------------------------------------------------------------------

def test_post_link_returns_a_working_portal_url(seeded, client):
    r = seeded.post("/debtors/D2/links")
    assert r.status_code == 201, r.json
    assert r.json["url"].startswith("http://portal.test/l/")
    expires = datetime.fromisoformat(r.json["expires_at"])
    assert expires.tzinfo is not None
    days = (expires - datetime.now(expires.tzinfo)).total_seconds() / 86400
    assert 44.9 < days <= 45  # PORTAL_LINK_MAX_AGE_DAYS
    opened = client.get(r.json["url"].removeprefix("http://portal.test"))
    assert opened.status_code == 303
    page = client.get("/portal/")
    assert page.status_code == 200
    assert b"F-3" in page.data and b"F-1" not in page.data


def test_each_link_is_new(seeded):
    a, b = seeded.post("/debtors/D1/links").json["url"], seeded.post("/debtors/D1/links").json["url"]
    assert a != b


# --- events -------------------------------------------------------------------------------------------

def test_events_oldest_first_with_refs_and_after(seeded, client):
    pay(seeded, "F-1", "200.00", "VIR-1")
    url = seeded.post("/debtors/D1/links").json["url"]
    client.get(url.removeprefix("http://portal.test"))

    events = seeded.get("/events").json["events"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    types = [e["type"] for e in events]
    assert types.index("invoice.created") < types.index("payment.received") < types.index("link.issued") \
        < types.index("portal.opened")
    for e in events:
        assert {"id", "type", "at", "debtor_ref", "data"} <= set(e) <= {"id", "type", "at", "debtor_ref",
                                                                        "invoice_number", "data"}
        assert datetime.fromisoformat(e["at"]).tzinfo is not None
    created = [e for e in events if e["type"] == "invoice.created"]
    assert [(e["debtor_ref"], e["invoice_number"]) for e in created] == \
        [("D1", "F-1"), ("D1", "F-2"), ("D2", "F-3"), ("D2", "F-4")]
    # Amounts in event data are decimal strings too, and invoices are named by number.
    assert (created[0]["data"]["amount"], created[0]["data"]["currency"]) == ("1200.00", "EUR")
    payment = next(e for e in events if e["type"] == "payment.received")
    assert (payment["debtor_ref"], payment["invoice_number"]) == ("D1", "F-1")
    assert payment["data"]["reference"] == "VIR-1"
    assert (payment["data"]["amount"], payment["data"]["unallocated"]) == ("200.00", "0.00")
    assert payment["data"]["allocations"] == [{"invoice_number": "F-1", "amount": "200.00"}]
    opened = next(e for e in events if e["type"] == "portal.opened")
    assert opened["debtor_ref"] == "D1" and "invoice_number" not in opened

    after = seeded.get(f"/events?after={payment['id']}").json["events"]
    assert [e["id"] for e in after] == [i for i in ids if i > payment["id"]]
    assert seeded.get(f"/events?after={ids[-1]}").json["events"] == []
    assert [e["id"] for e in seeded.get("/events?limit=2").json["events"]] == ids[:2]
    assert [e["id"] for e in seeded.get(f"/events?after={ids[1]}&limit=1").json["events"]] == [ids[2]]


# --- reports ------------------------------------------------------------------------------------------

def test_summary_computed_by_hand(api):
    """A small ledger whose figures are worked out below, as at 2026-06-30."""
    api.put("/debtors/S1", json={"name": "Summary SA"})
    for number, issue, due, amount, extra in [
        ("I1", "2026-01-01", "2026-01-31", "1000.00", {}),   # 150 days late, 400 paid in window -> 600 over_90
        ("I2", "2026-04-01", "2026-05-01", "500.00", {}),    # 60 days late, 200 paid -> 300 in 31_60
        ("I3", "2026-05-15", "2026-05-31", "250.00", {}),    # 30 days late -> 1_30
        ("I4", "2026-06-01", "2026-07-01", "100.00", {}),    # not due
        ("I5", "2026-06-15", "2026-06-30", "50.00", {}),     # due today: not due
        ("I6", "2026-03-01", "2026-03-31", "450.00", {}),    # paid in full before as_of
        ("I7", "2026-04-01", "2026-04-30", "80.00", {}),     # 61 days late; paid after as_of -> 61_90
        ("I8", "2026-02-01", "2026-03-01", "999.00", {"cancelled": True}),        # cancelled: ignored
        ("I9", "2026-02-01", "2026-03-01", "777.00", {"currency": "USD"}),        # other currency: ignored
        ("I10", "2026-07-10", "2026-08-09", "333.00", {}),   # issued after as_of: ignored
    ]:
        r = api.put(f"/invoices/{number}", json={"debtor_ref": "S1", "issue_date": issue, "due_date": due,
                                                 "amount": amount, "currency": "EUR", **extra})
        assert r.status_code == 201, r.json
    for number, amount, date, ref in [("I1", "400.00", "2026-06-10", "P1"), ("I2", "200.00", "2026-05-15", "P2"),
                                      ("I6", "450.00", "2026-04-10", "P6"), ("I7", "80.00", "2026-07-05", "P7")]:
        assert pay(api, number, amount, ref, date=date).status_code == 201

    r = api.get("/reports/summary?as_of=2026-06-30")
    assert r.status_code == 200, r.json
    s = r.json
    assert s["as_of"] == "2026-06-30" and s["currency"] == "EUR"
    assert s["ageing"] == {"not_due": "150.00", "1_30": "250.00", "31_60": "300.00", "61_90": "80.00",
                           "over_90": "600.00"}
    assert s["outstanding"] == "1380.00"
    assert s["overdue"] == "1230.00"
    # Countback from 1380.00: June sales 150 (31 d), May 250 (30 d), April 580 (31 d) absorb 980 in 92 days;
    # March (30 d) had 450 of sales for the 400 left: 30 * 400 / 450 = 26.67 -> 118.7 days.
    assert s["dso_days"] == 118.7
    # CEI over 2026-05-31..06-30: opening 1630 (I1 1000, I2 300, I3 250, I7 80), sales 150 (I4, I5),
    # closing 1380 of which 150 current: (1630 + 150 - 1380) / (1630 + 150 - 150) = 24.5 %.
    assert s["cei"] == 24.5


def test_summary_defaults_to_today_in_the_creditors_zone(seeded):
    s = seeded.get("/reports/summary").json
    assert s["as_of"] == datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()
    total = sum(float(v) for v in s["ageing"].values())
    assert f"{total:.2f}" == s["outstanding"] == "6600.49"


def test_summary_of_an_empty_ledger(api):
    s = api.get("/reports/summary?as_of=2026-01-01").json
    assert s["outstanding"] == s["overdue"] == "0.00"
    assert set(s["ageing"]) == {"not_due", "1_30", "31_60", "61_90", "over_90"}
    assert s["dso_days"] == 0 and s["cei"] is None


# --- OpenAPI ------------------------------------------------------------------------------------------

def _api_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = rule.rule.removeprefix("/api/v1")
            for arg in rule.arguments:
                path = path.replace(f"<path:{arg}>", f"{{{arg}}}").replace(f"<{arg}>", f"{{{arg}}}")
            yield path, {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}}


def test_openapi_document_describes_every_route(client, app):
    r = client.get("/api/v1/openapi.json")  # no key needed
    assert r.status_code == 200
    doc = r.json
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"][0]["url"] == "http://portal.test/api/v1"
    served = list(_api_rules(app))
    assert len(served) >= 7
    for path, methods in served:
        assert path in doc["paths"], path
        assert methods <= set(doc["paths"][path]), (path, methods)
    assert set(doc["paths"]) == {p for p, _ in served}

    # Every $ref points at a schema that exists.
    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    assert set(schemas["Invoice"]["properties"]) == INVOICE_FIELDS
    assert set(schemas["Summary"]["properties"]) == {"as_of", "currency", "outstanding", "overdue", "dso_days",
                                                     "ageing", "cei"}


def test_responses_have_the_fields_the_document_names(seeded, client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    payment = pay(seeded, "F-1", "100.00", "V-1").json
    responses = {"Debtor": seeded.get("/debtors/D1").json, "Invoice": seeded.get("/invoices/F-1").json,
                 "Payment": payment, "Link": seeded.post("/debtors/D1/links").json,
                 "Summary": seeded.get("/reports/summary").json,
                 "EventPage": seeded.get("/events").json}
    for name, body in responses.items():
        assert set(body) == set(schemas[name]["properties"]), name
    assert set(responses["Summary"]["ageing"]) == set(schemas["Summary"]["properties"]["ageing"]["properties"])
    amount = re.compile(schemas["Invoice"]["properties"]["amount"]["pattern"])
    for key in ("amount", "amount_paid", "balance"):
        assert amount.match(responses["Invoice"][key])
    for key in ("outstanding", "overdue", *[f"ageing.{k}" for k in responses["Summary"]["ageing"]]):
        value = responses["Summary"]
        for part in key.split("."):
            value = value[part]
        assert amount.match(value), key


# --- authentication and isolation ---------------------------------------------------------------------

ENDPOINTS = [("get", "/debtors/D1"), ("put", "/debtors/D1"), ("get", "/invoices/F-1"), ("put", "/invoices/F-1"),
             ("post", "/invoices/F-1/payments"), ("post", "/debtors/D1/links"), ("get", "/events"),
             ("get", "/reports/summary")]


def test_missing_or_invalid_key_is_401(seeded, client, creditor):
    events_before = count(Event)
    for header in [None, "Bearer", "Bearer rl_live_not-a-real-key", "Basic dXNlcjpwYXNz", creditor.api_key,
                   f"Token {creditor.api_key}", f"Bearer {creditor.api_key}x", "Bearer " + "x" * 5000]:
        headers = {"Authorization": header} if header else {}
        for method, path in ENDPOINTS:
            r = getattr(client, method)("/api/v1" + path, headers=headers, json={"name": "Mallory"})
            assert r.status_code == 401, (header, method, path)
            assert r.json["error"]["code"] == "unauthorized"
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert count(Event) == events_before
    assert seeded.get("/debtors/D1").json["name"] == "Alpha SARL"


def test_revoked_key_is_401_and_other_keys_still_work(seeded, client, creditor):
    from portal.services import tenants
    second = tenants.create_api_key(creditor.id, "second")
    first_id = tenants.api_keys(creditor.id)[0].id
    assert tenants.revoke_api_key(creditor.id, first_id)
    r = client.get("/api/v1/debtors/D1", headers=creditor.headers)
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    r = client.get("/api/v1/debtors/D1", headers={"Authorization": f"bearer {second}"})
    assert r.status_code == 200 and r.json["ref"] == "D1"


@pytest.fixture
def other(client, new_creditor):
    """Creditor B with its own debtor B1 and invoice BF-1."""
    b = Api(client, new_creditor("Other Corp"))
    assert b.put("/debtors/B1", json={"name": "Secret Customer", "email": "secret@example.com"}).status_code == 201
    assert b.put("/invoices/BF-1", json=invoice_body(ref="B1", amount="777.00")).status_code == 201
    return b


def test_another_creditors_references_are_404(seeded, other):
    for method, path, body in [
        ("get", "/debtors/B1", None),
        ("get", "/invoices/BF-1", None),
        ("post", "/invoices/BF-1/payments", {"amount": "1.00", "date": "2026-10-15", "reference": "STEAL"}),
        ("post", "/debtors/B1/links", None),
    ]:
        r = getattr(seeded, method)(path, json=body)
        assert r.status_code == 404, (path, r.status_code)
        assert r.json["error"]["code"] == "not_found"
        assert b"Secret" not in r.data and b"777" not in r.data
        # Exactly what a reference that exists nowhere gets.
        missing = getattr(seeded, method)(path.replace("B1", "ZZ9").replace("BF-1", "ZZ-9"), json=body)
        assert (missing.status_code, missing.json) == (r.status_code, r.json)
    assert other.get("/invoices/BF-1").json["amount_paid"] == "0.00"
    assert count(Payment) == 0


def test_invoice_for_another_creditors_debtor_is_refused_like_an_unknown_one(seeded, other):
    r = seeded.put("/invoices/X-1", json=invoice_body(ref="B1"))
    unknown = seeded.put("/invoices/X-1", json=invoice_body(ref="NOBODY"))
    assert r.status_code == unknown.status_code == 422
    assert r.json["error"]["field"] == "debtor_ref"
    assert r.json["error"]["message"] == unknown.json["error"]["message"]
    assert seeded.get("/invoices/X-1").status_code == 404


def test_same_references_in_two_tenants_never_touch_each_other(seeded, other):
    # A writes under B's references: it creates its own records, B's stay as they were.
    assert seeded.put("/debtors/B1", json={"name": "A's own B1"}).status_code == 201
    assert seeded.put("/invoices/BF-1", json=invoice_body(ref="B1", amount="1.00")).status_code == 201
    assert pay(seeded, "BF-1", "1.00", "SAME-REF").status_code == 201
    assert pay(other, "BF-1", "7.00", "SAME-REF").status_code == 201  # references are per creditor
    assert other.get("/debtors/B1").json["name"] == "Secret Customer"
    b_inv = other.get("/invoices/BF-1").json
    assert (b_inv["amount"], b_inv["amount_paid"], b_inv["status"]) == ("777.00", "7.00", "partially_paid")
    a_inv = seeded.get("/invoices/BF-1").json
    assert (a_inv["amount"], a_inv["status"]) == ("1.00", "paid")
    # And B's report knows nothing of A's ledger.
    assert other.get("/reports/summary?as_of=2026-12-31").json["outstanding"] == "770.00"


def test_events_never_include_another_creditors(seeded, other, client):
    url = other.post("/debtors/B1/links").json["url"]
    client.get(url.removeprefix("http://portal.test"))
    pay(other, "BF-1", "7.00", "B-PAY")
    mine = seeded.get("/events?limit=1000").json["events"]
    theirs = other.get("/events?limit=1000").json["events"]
    assert mine and theirs
    assert not {e["id"] for e in mine} & {e["id"] for e in theirs}
    assert all(e["debtor_ref"] in (None, "D1", "D2") for e in mine)
    assert not any(e.get("invoice_number") == "BF-1" for e in mine)
    assert {"portal.opened", "payment.received"} <= {e["type"] for e in theirs}
    # Paging past B's ids does not reveal them either.
    assert all(e["id"] > theirs[0]["id"] for e in seeded.get(f"/events?after={theirs[0]['id']}").json["events"])
    db.session.rollback()
    total = db.session.scalar(select(func.count()).select_from(Event))
    assert len(mine) + len(theirs) == total
