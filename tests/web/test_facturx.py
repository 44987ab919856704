"""Invoices given as Factur-X PDFs (issue 16): PUT /invoices/{number} with pdf_base64, and the
back office's upload of several at once. The PDFs are written here (tests/facturx_files.py): a
WeasyPrint page with a CII XML embedded by the factur-x library, checked against its BASIC XSD."""
from __future__ import annotations

import base64
import io

import pytest

from facturx_files import attached, cii_xml, facturx_pdf, page_pdf
from portal.extensions import db
from portal.models import Creditor, Debtor, Document, Event, Invoice
from support import back_office_login, count

NUMBER = "FA-2026-001"


def b64(pdf: bytes) -> str:
    return base64.b64encode(pdf).decode()


def put(api, pdf: bytes, number=NUMBER, **fields):
    return api.put(f"/invoices/{number}", json={"pdf_base64": b64(pdf), **fields})


@pytest.fixture
def buyer(api):
    r = api.put("/debtors/CLI-42", json={"name": "Boulangerie Martin", "email": "b@martin.test"})
    assert r.status_code == 201
    return "CLI-42"


def test_fields_are_taken_from_the_xml(api, buyer):
    pdf = facturx_pdf()
    r = put(api, pdf)
    assert r.status_code == 201, r.json
    body = r.json
    assert (body["number"], body["debtor_ref"], body["issue_date"], body["due_date"], body["amount"],
            body["currency"]) == (NUMBER, "CLI-42", "2026-10-01", "2026-10-31", "1200.00", "EUR")
    # The PDF itself is the invoice's document, byte for byte.
    doc = db.session.scalar(db.select(Document).join(Invoice).where(Invoice.number == NUMBER))
    assert doc.content == pdf and doc.source == "uploaded"
    assert api.get(f"/invoices/{NUMBER}").json["amount"] == "1200.00"
    # Sent again: nothing changes.
    r = put(api, pdf)
    assert r.status_code == 200 and count(Event, Event.type == "invoice.updated") == 0


def test_the_amount_is_the_amount_due_for_payment(api, buyer):
    """BT-115: the gross total (1200.00) less what was paid in advance (BT-113, 200.00)."""
    r = put(api, facturx_pdf(prepaid="200.00"))
    assert r.status_code == 201 and r.json["amount"] == "1000.00"


def test_fields_given_that_agree(api, buyer):
    r = put(api, facturx_pdf(), debtor_ref="CLI-42", issue_date="2026-10-01", due_date="2026-10-31",
            amount="1200", currency="eur")
    assert r.status_code == 201, r.json


@pytest.mark.parametrize("field, value, bt, found", [
    ("amount", "1000.00", "BT-115", "1200.00"),
    ("currency", "USD", "BT-5", "EUR"),
    ("issue_date", "2026-10-02", "BT-2", "2026-10-01"),
    ("due_date", "2026-11-30", "BT-9", "2026-10-31"),
    ("debtor_ref", "CLI-43", "BT-46", "CLI-42"),
])
def test_a_field_that_disagrees_is_refused(api, buyer, field, value, bt, found):
    r = put(api, facturx_pdf(), **{field: value})
    assert r.status_code == 422, r.json
    error = r.json["error"]
    assert (error["code"], error["field"]) == ("facturx_mismatch", field)
    assert value in error["message"] and bt in error["message"] and found in error["message"]
    assert count(Invoice) == 0


def test_the_number_in_the_path_must_be_bt_1(api, buyer):
    r = put(api, facturx_pdf(), number="FA-2026-002")
    assert r.status_code == 422
    assert r.json["error"]["field"] == "number" and "BT-1" in r.json["error"]["message"]
    assert count(Invoice) == 0


def test_without_bt_9_the_payment_terms_apply(api, buyer, creditor):
    row = db.session.get(Creditor, creditor.id)
    row.payment_terms_days = 45
    db.session.commit()
    r = put(api, facturx_pdf(due=None))
    assert r.status_code == 201 and r.json["due_date"] == "2026-11-15"  # 1 October + 45 days
    # A due date the JSON gives is then taken: the XML has none to disagree with.
    r = put(api, facturx_pdf(due=None, number="FA-2026-002"), number="FA-2026-002", due_date="2026-12-01")
    assert r.status_code == 201 and r.json["due_date"] == "2026-12-01"


def test_debtor_found_by_siren_or_the_siren_of_a_siret(api):
    api.put("/debtors/552100554", json={"name": "Boulangerie Martin"})
    r = put(api, facturx_pdf(buyer_id=None))
    assert r.status_code == 201 and r.json["debtor_ref"] == "552100554"
    r = put(api, facturx_pdf(number="FA-2026-002", buyer_id=None, buyer_siren="552 100 554 00013"),
            number="FA-2026-002")
    assert r.status_code == 201 and r.json["debtor_ref"] == "552100554"
    # BT-46 names no debtor, the SIREN does: that one.
    r = put(api, facturx_pdf(number="FA-2026-003"), number="FA-2026-003")
    assert r.status_code == 201 and r.json["debtor_ref"] == "552100554"
    assert count(Debtor) == 1


def test_an_unknown_buyer_becomes_a_debtor(api):
    r = put(api, facturx_pdf())
    assert r.status_code == 201 and r.json["debtor_ref"] == "CLI-42"
    debtor = db.session.scalar(db.select(Debtor).where(Debtor.ref == "CLI-42"))
    assert (debtor.name, debtor.email, debtor.language) == ("Boulangerie Martin SARL", "compta@boulangerie-martin.test",
                                                             "fr")
    assert count(Event, Event.type == "debtor.created") == 1
    # Without BT-46, under its SIREN; a BT-49 that is no e-mail address gives none.
    r = put(api, facturx_pdf(number="FA-2026-002", buyer_id=None, buyer_siren="41234567800017",
                             buyer_email=None), number="FA-2026-002")
    assert r.status_code == 201 and r.json["debtor_ref"] == "41234567800017"
    assert db.session.scalar(db.select(Debtor.email).where(Debtor.ref == "41234567800017")) is None


def test_a_buyer_that_cannot_be_identified_is_refused(api):
    r = put(api, facturx_pdf(buyer_id=None, buyer_siren=None))
    assert r.status_code == 422
    assert (r.json["error"]["code"], r.json["error"]["field"]) == ("debtor_unknown", "debtor_ref")
    assert "create the debtor first" in r.json["error"]["message"]
    assert count(Invoice) == 0 and count(Debtor) == 0
    # A debtor_ref the JSON gives is taken when the XML has no BT-46 (it must exist, as always).
    assert api.put("/debtors/MARTIN", json={"name": "Martin"}).status_code == 201
    r = put(api, facturx_pdf(buyer_id=None, buyer_siren=None), debtor_ref="MARTIN")
    assert r.status_code == 201 and r.json["debtor_ref"] == "MARTIN"
    r = put(api, facturx_pdf(number="FA-2026-002", buyer_id=None), number="FA-2026-002", debtor_ref="NOBODY")
    assert r.status_code == 422 and "create it first" in r.json["error"]["message"]


def test_a_credit_note_is_refused(api, buyer):
    r = put(api, facturx_pdf(type_code="381"))
    assert r.status_code == 422
    error = r.json["error"]
    assert error["code"] == "credit_note_unsupported"
    assert "credit note" in error["message"] and "381" in error["message"]
    assert count(Invoice) == 0


def test_nothing_due_is_refused(api, buyer):
    r = put(api, facturx_pdf(prepaid="1200.00"))
    assert r.status_code == 422 and r.json["error"]["code"] == "facturx_nothing_due"


def test_an_invoice_of_another_seller_is_refused(api, buyer, creditor):
    row = db.session.get(Creditor, creditor.id)
    row.registration_number, row.vat_number = "732 829 320 00074", "FR44732829320"  # the test invoices' seller
    db.session.commit()
    assert put(api, facturx_pdf()).status_code == 201
    row.registration_number = "111111111"
    db.session.commit()
    r = put(api, facturx_pdf(number="FA-2026-002"), number="FA-2026-002")
    assert r.status_code == 422 and r.json["error"]["code"] == "facturx_other_seller"
    assert "BT-30" in r.json["error"]["message"]


def test_a_plain_pdf_is_as_before(api, buyer):
    pdf = page_pdf("Facture F-1")
    fields = {"debtor_ref": "CLI-42", "issue_date": "2026-10-01", "due_date": "2026-10-31", "amount": "10.00",
              "currency": "EUR"}
    r = api.put("/invoices/F-1", json={**fields, "pdf_base64": b64(pdf)})
    assert r.status_code == 201 and r.json["amount"] == "10.00"
    assert db.session.scalar(db.select(Document.content)) == pdf
    # Every field is required, with the same answer as without a PDF.
    plain = api.put("/invoices/F-2", json={"pdf_base64": b64(pdf)})
    nothing = api.put("/invoices/F-2", json={})
    assert plain.status_code == nothing.status_code == 422
    assert plain.json == nothing.json
    # A damaged PDF is stored as before too: it is nobody's Factur-X.
    r = api.put("/invoices/F-3", json={**fields, "pdf_base64": b64(b"%PDF-1.4 not really")})
    assert r.status_code == 201


def test_unusable_xml_is_refused_naming_the_bt(api, buyer):
    r = put(api, attached(b"<rsm:CrossIndustryInvoice><broken"))
    assert r.status_code == 422 and r.json["error"]["code"] == "facturx_invalid"
    assert "factur-x.xml" in r.json["error"]["message"]
    for bt in ("BT-115", "BT-2", "BT-1", "BT-5"):
        r = put(api, attached(cii_xml(omit=(bt,))))
        assert r.status_code == 422, bt
        assert r.json["error"]["code"] == "facturx_invalid" and bt in r.json["error"]["message"], r.json
    r = put(api, attached(cii_xml(due="2026-10-31")))
    assert r.status_code == 422 and "BT-9" in r.json["error"]["message"]
    assert count(Invoice) == 0


def test_openapi_says_so(client):
    schema = client.get("/api/v1/openapi.json").json["components"]["schemas"]["InvoiceInput"]
    assert "required" not in schema
    assert {"required": ["pdf_base64"]} in schema["anyOf"]
    assert "Factur-X" in schema["description"] and "BT-115" in schema["description"]


# --- the back office -----------------------------------------------------------------------------

def upload(client, *files):
    return client.post("/app/facturx", data={"files": [(io.BytesIO(content), name) for name, content in files]},
                       content_type="multipart/form-data")


def test_upload_of_several_files_lists_each_outcome(client, app, creditor, api):
    back_office_login(client, creditor)
    page = client.get("/app/facturx").get_data(as_text=True)
    assert 'type="file"' in page and "multiple" in page and 'name="csrf_token"' in page
    api.put("/debtors/CLI-42", json={"name": "Boulangerie Martin"})
    r = upload(client,
               ("a.pdf", facturx_pdf()),
               ("b.pdf", facturx_pdf(number="FA-2026-002", buyer_id="CLI-7", buyer_name="Café du Port")),
               ("avoir.pdf", facturx_pdf(number="AV-1", type_code="381")),
               ("plain.pdf", page_pdf()),
               ("notes.txt", b"hello"),
               ("a-again.pdf", facturx_pdf(prepaid="200.00")))
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    rows = {name: page.split(f"<td>{name}</td>", 1)[1].split("</tr>", 1)[0] for name in
            ("a.pdf", "b.pdf", "avoir.pdf", "plain.pdf", "notes.txt", "a-again.pdf")}
    assert "Facture créée" in rows["a.pdf"] and "FA-2026-001" in rows["a.pdf"]
    assert "Facture créée" in rows["b.pdf"] and "CLI-7" in rows["b.pdf"]
    assert "Refusé" in rows["avoir.pdf"] and "avoir (type 381)" in rows["avoir.pdf"]
    assert "Refusé" in rows["plain.pdf"] and "Factur-X" in rows["plain.pdf"]
    assert "Refusé" in rows["notes.txt"] and "PDF" in rows["notes.txt"]
    assert "Facture modifiée" in rows["a-again.pdf"]
    db.session.rollback()
    amounts = dict(db.session.execute(db.select(Invoice.number, Invoice.amount)).all())
    assert amounts == {"FA-2026-001": 100000, "FA-2026-002": 120000}
    assert db.session.scalar(db.select(Debtor.name).where(Debtor.ref == "CLI-7")) == "Café du Port"


def test_upload_in_english_and_with_no_file(client, app, new_creditor):
    who = new_creditor("English Ltd", language="en")
    back_office_login(client, who)
    r = client.post("/app/facturx", data={}, content_type="multipart/form-data")
    assert r.status_code == 422 and "Choose one or more Factur-X PDF files" in r.get_data(as_text=True)
    r = upload(client, ("bad.pdf", attached(cii_xml(omit=("BT-115",)))))
    assert r.status_code == 422
    assert "amount due for payment (BT-115) is missing or invalid" in r.get_data(as_text=True)


def test_upload_needs_login(client):
    assert client.get("/app/facturx").status_code == 302
    assert client.post("/app/facturx").status_code in (302, 400)


def test_an_upload_over_the_request_limit_is_refused_cleanly(make_app, app, creditor):
    small = make_app(MAX_CONTENT_LENGTH=20_000).test_client()
    back_office_login(small, creditor)
    r = upload(small, *[(f"{n}.pdf", facturx_pdf(number=f"FA-{n}")) for n in range(4)])
    assert r.status_code == 303 and r.headers["Location"].endswith("/app/facturx")
    assert "trop volumineux ensemble : 0 Mo au plus" in small.get("/app/facturx").get_data(as_text=True)
    assert count(Invoice) == 0


def test_an_upload_that_the_ledger_refuses_says_why(client, app, creditor, api):
    """An invoice already partly paid: the new file's amount due is below what was paid."""
    back_office_login(client, creditor)
    assert put(api, facturx_pdf()).status_code == 201
    r = api.post(f"/invoices/{NUMBER}/payments", json={"amount": "1100.00", "date": "2026-10-05", "reference": "VIR-1"})
    assert r.status_code == 201
    r = upload(client, ("lower.pdf", facturx_pdf(prepaid="200.00")))
    assert r.status_code == 422
    assert "Le montant à payer est inférieur à ce qui a déjà été réglé" in r.get_data(as_text=True)
    assert api.get(f"/invoices/{NUMBER}").json["amount"] == "1200.00"


def test_the_totals_without_vat_and_of_vat_are_kept(api, buyer):
    """BT-109 and BT-110 fill the invoice's amount_excl_tax and tax_amount (the summary PDF shows
    them); a later Factur-X without them clears them: the XML is the invoice."""
    assert put(api, facturx_pdf(net="1000.00")).status_code == 201
    invoice = db.session.scalar(db.select(Invoice).where(Invoice.number == NUMBER))
    assert (invoice.amount, invoice.amount_excl_tax, invoice.tax_amount) == (120000, 100000, 20000)
    xml = cii_xml(net="1000.00").replace(b"<ram:TaxBasisTotalAmount>1000.00</ram:TaxBasisTotalAmount>", b"").replace(
        b'<ram:TaxTotalAmount currencyID="EUR">200.00</ram:TaxTotalAmount>', b"")
    assert put(api, facturx_pdf(xml, check_xsd=False)).status_code == 200
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    assert (invoice.amount, invoice.amount_excl_tax, invoice.tax_amount) == (120000, None, None)


def test_the_back_office_upload_keeps_the_totals(client, app, creditor, api):
    back_office_login(client, creditor)
    api.put("/debtors/CLI-42", json={"name": "Boulangerie Martin"})
    assert upload(client, ("a.pdf", facturx_pdf(net="250.00"))).status_code == 200
    db.session.rollback()
    invoice = db.session.scalar(db.select(Invoice).where(Invoice.number == NUMBER))
    assert (invoice.amount_excl_tax, invoice.tax_amount, invoice.amount) == (25000, 5000, 30000)
