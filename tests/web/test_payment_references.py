"""`payment_reference` in the API (CONTRACT §4, §7): each debtor's and each invoice's ISO 11649
reference, derived from its id, stable, distinct, and shown only to its own creditor."""
from __future__ import annotations

from sqlalchemy import select
from stdnum import iso11649

from portal.domain.references import DEBTOR, INVOICE, parse_reference
from portal.extensions import db
from portal.models import Debtor, Invoice
from support import Api

INVOICES = {"F-1": "D1", "F-2": "D1", "F-3": "D2", "F-4": "D2"}


def test_debtors_and_invoices_carry_a_valid_reference_of_their_own_row(seeded):
    db.session.rollback()  # see what the requests committed
    for ref in ("D1", "D2"):
        got = seeded.get(f"/debtors/{ref}").json["payment_reference"]
        assert iso11649.is_valid(got) and got == iso11649.compact(got) and len(got) <= 25
        row_id = db.session.scalar(select(Debtor.id).where(Debtor.ref == ref))
        assert parse_reference(got) == (DEBTOR, row_id)
    for number in INVOICES:
        got = seeded.get(f"/invoices/{number}").json["payment_reference"]
        assert iso11649.is_valid(got) and got == iso11649.compact(got)
        row_id = db.session.scalar(select(Invoice.id).where(Invoice.number == number))
        assert parse_reference(got) == (INVOICE, row_id)


def test_references_are_stable_and_distinct(seeded):
    debtors = {ref: seeded.get(f"/debtors/{ref}").json["payment_reference"] for ref in ("D1", "D2")}
    invoices = {n: seeded.get(f"/invoices/{n}").json["payment_reference"] for n in INVOICES}
    assert len(set(debtors.values())) == 2 and len(set(invoices.values())) == 4
    assert not set(debtors.values()) & set(invoices.values())
    # The same on every call, and after updates of the debtor and the invoice.
    assert seeded.put("/debtors/D1", json={"name": "Alpha SAS"}).json["payment_reference"] == debtors["D1"]
    r = seeded.put("/invoices/F-1", json={"debtor_ref": "D1", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                                          "amount": "1250.00", "currency": "EUR"})
    assert r.status_code == 200 and r.json["payment_reference"] == invoices["F-1"]
    for ref, expected in debtors.items():
        assert seeded.get(f"/debtors/{ref}").json["payment_reference"] == expected
    for number, expected in invoices.items():
        assert seeded.get(f"/invoices/{number}").json["payment_reference"] == expected
    # A debtor's open invoices carry their own references, not the debtor's.
    listed = {i["number"]: i["payment_reference"] for i in seeded.get("/debtors/D2").json["open_invoices"]}
    assert listed == {n: invoices[n] for n in ("F-3", "F-4")}


def test_another_creditor_neither_sees_nor_shares_a_reference(seeded, client, new_creditor):
    other = Api(client, new_creditor("Other Corp"))
    assert other.put("/debtors/D1", json={"name": "Same ref, other creditor"}).status_code == 201
    r = other.put("/invoices/F-1", json={"debtor_ref": "D1", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                                         "amount": "10.00", "currency": "EUR"})
    assert r.status_code == 201
    theirs_debtor = other.get("/debtors/D1").json["payment_reference"]
    theirs_invoice = r.json["payment_reference"]
    # Same business references, different rows: different payment references.
    assert theirs_debtor != seeded.get("/debtors/D1").json["payment_reference"]
    assert theirs_invoice != seeded.get("/invoices/F-1").json["payment_reference"]
    # A's own rows stay A's; B's only ones answer 404 to A, as any unknown reference does.
    assert other.put("/debtors/B9", json={"name": "Secret Customer"}).status_code == 201
    r = other.put("/invoices/BF-9", json={"debtor_ref": "B9", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                                          "amount": "777.00", "currency": "EUR"})
    hidden = {other.get("/debtors/B9").json["payment_reference"], r.json["payment_reference"],
              theirs_debtor, theirs_invoice}
    for path, unknown in (("/debtors/B9", "/debtors/ZZ9"), ("/invoices/BF-9", "/invoices/ZZ-9")):
        r = seeded.get(path)
        assert r.status_code == 404 and r.json == seeded.get(unknown).json
        assert not any(h.encode() in r.data for h in hidden)
    for path in ("/debtors/D1", "/debtors/D2", "/invoices/F-1"):
        body = seeded.get(path).data
        assert not any(h.encode() in body for h in hidden)


def test_openapi_documents_the_reference(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    for name in ("Debtor", "Invoice"):
        assert schemas[name]["properties"]["payment_reference"]["pattern"] == "^RF[0-9]{2}[0-9A-Z]{1,21}$"
