"""The bank reconciliation API (CONTRACT §8): import, list, match, ignore; 404 across creditors,
422 naming what is unreadable, 413 over the size limit."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from recon_files import Entry, camt053
from portal.extensions import db
from portal.models import BankTransaction, Payment
from support import Api

DAY = date(2026, 11, 20)
FIELDS = {"id", "booking_date", "amount", "currency", "counterparty", "remittance", "status", "debtor_ref",
          "invoices", "reason"}


@pytest.fixture
def app_config():
    return {"MAX_STATEMENT_BYTES": 200_000}


def _statement(api):
    rf = api.get("/invoices/F-1").json["payment_reference"]
    return camt053([Entry("1200.00", DAY, "B1", "ALPHA SARL", rf=rf),
                    Entry("300.50", DAY, "B2", "ALPHA SARL", "paiement"),
                    Entry("12.00", DAY, "B3", "M DUPONT", "divers"),
                    Entry("80.00", DAY, "B4", "Loyer", "loyer", debit=True)])


def _by_ref(api, status=None):
    r = api.get("/bank-transactions" + (f"?status={status}" if status else ""))
    assert r.status_code == 200, r.json
    return r.json["transactions"]


def test_import_list_match_ignore(seeded):
    api = seeded
    data = _statement(api)
    r = api.post("/bank-statements", data=data, content_type="application/xml")
    assert r.status_code == 201, r.json
    assert r.json == {"format": "camt.053", "transactions": 4, "new": 4, "duplicates": 0, "matched": 1,
                      "suggested": 1, "unmatched": 1}
    again = api.post("/bank-statements", data=data)
    assert again.status_code == 200 and again.json["new"] == 0 and again.json["duplicates"] == 4

    [matched] = _by_ref(api, "matched")
    assert set(matched) == FIELDS
    assert (matched["amount"], matched["currency"], matched["status"], matched["debtor_ref"], matched["invoices"],
            matched["reason"], matched["booking_date"]) == ("1200.00", "EUR", "matched", "D1", ["F-1"],
                                                            "invoice_reference", "2026-11-20")
    assert api.get("/invoices/F-1").json["status"] == "paid"
    [debit] = _by_ref(api, "ignored")
    assert (debit["amount"], debit["reason"]) == ("-80.00", "debit")
    [suggested] = _by_ref(api, "suggested")
    assert suggested["invoices"] == ["F-2"] and suggested["debtor_ref"] == "D1"

    r = api.post(f"/bank-transactions/{suggested['id']}/match")  # no body: the suggestion
    assert r.status_code == 200 and r.json["status"] == "matched" and r.json["invoices"] == ["F-2"]
    assert api.post(f"/bank-transactions/{suggested['id']}/match", json={"invoices": ["F-2"]}).status_code == 200
    assert api.get("/invoices/F-2").json["status"] == "paid"

    [unmatched] = _by_ref(api, "unmatched")
    r = api.post(f"/bank-transactions/{unmatched['id']}/match", json={"invoices": ["F-3", "F-1"]})
    assert (r.status_code, r.json["error"]["code"], r.json["error"]["field"]) == (422, "several_debtors", "invoices")
    r = api.post(f"/bank-transactions/{unmatched['id']}/match", json={"invoices": "F-3"})
    assert r.status_code == 422 and r.json["error"]["field"] == "invoices"
    r = api.post(f"/bank-transactions/{unmatched['id']}/ignore")
    assert r.status_code == 200 and (r.json["status"], r.json["reason"]) == ("ignored", "manual")
    r = api.post(f"/bank-transactions/{matched['id']}/ignore")
    assert r.status_code == 409
    assert len(_by_ref(api)) == 4
    assert api.get("/bank-transactions?status=paid").status_code == 422
    events = [e["type"] for e in api.get("/events").json["events"]]
    assert {"bank.statement_imported", "bank.transaction_matched", "bank.transaction_suggested",
            "bank.transaction_ignored"} <= set(events)


def test_another_creditors_transactions_are_not_found(seeded, client, new_creditor):
    seeded.post("/bank-statements", data=_statement(seeded))
    [tx] = _by_ref(seeded, "unmatched")
    other = Api(client, new_creditor("Other"))
    assert _by_ref(other) == []
    for action in ("match", "ignore"):
        r = other.post(f"/bank-transactions/{tx['id']}/{action}", json={"invoices": ["F-3"]})
        assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    for tx_id in ("999999", "6353394097", "1e3", "-1"):  # past an INTEGER key too: 404, never a 500
        assert other.post(f"/bank-transactions/{tx_id}/ignore").status_code == 404


def test_unreadable_file_is_422_with_its_location_and_records_nothing(seeded):
    good = _statement(seeded)
    bad = good.replace(b">300.50<", b">3OO,5O<", 1)
    r = seeded.post("/bank-statements", data=bad)
    assert r.status_code == 422, r.json
    assert r.json["error"]["code"] == "unreadable_statement" and r.json["error"]["field"]
    assert r.json["error"]["field"] in r.json["error"]["message"]
    r = seeded.post("/bank-statements", data=b"")
    assert r.status_code == 422
    r = seeded.post("/bank-statements", data=b"%PDF-1.4 not a statement")
    assert r.status_code == 422 and r.json["error"]["code"] == "unreadable_statement"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(BankTransaction)) == 0
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 0


def test_a_statement_over_the_limit_is_413(seeded):
    r = seeded.post("/bank-statements", data=b"<" * 200_001)
    assert r.status_code == 413 and r.json["error"]["code"] == "too_large"


def test_openapi_lists_the_bank_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"/bank-statements", "/bank-transactions", "/bank-transactions/{id}/match",
            "/bank-transactions/{id}/ignore"} <= set(paths)
