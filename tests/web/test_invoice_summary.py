"""The invoice PDF Relance makes when the creditor uploaded none (issue 17): a summary of the
invoice, not a second one, with the L441-9 payment terms, in the debtor's language; downloaded
from the portal as a debtor does, its text read back with pypdf, on both engines."""
from __future__ import annotations

import base64
import io
import re
from datetime import date
from decimal import Decimal

from pypdf import PdfReader

from facturx_files import page_pdf
from portal.domain.references import format_reference, invoice_reference
from portal.extensions import db
from portal.models import Creditor, Debtor, Document, Invoice
from support import portal_login

ADDRESS = "Service comptabilité\nZI des Trois Chênes\n12 rue des Lilas\nBâtiment B\n75011 PARIS\nFRANCE"


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1  # one A4 page: nothing runs over
    # Line breaks are the layout's, not the text's; the no-break spaces are kept and checked.
    return re.sub(r"[ \t\r\n]+", " ", reader.pages[0].extract_text())


def download(client, number: str) -> bytes:
    r = client.get(f"/portal/invoices/{number}.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf", r.status_code
    return r.data


def setup(api, creditor, *, lang, kind="business", taxes=False, discount=False, rate_bp=None):
    api.put("/debtors/D1", json={"name": "Boulangerie Martin", "email": "b@martin.test", "language": lang,
                                 "kind": kind, "address": ADDRESS})
    r = api.put("/invoices/F-123", json={"debtor_ref": "D1", "issue_date": "2026-11-01", "due_date": "2026-12-01",
                                         "amount": "1200.00", "currency": "EUR"})
    assert r.status_code == 201, r.json
    c = db.session.get(Creditor, creditor.id)
    c.legal_name, c.registration_number, c.vat_number = "Atelier Test SAS", "732829320", "FR44732829320"
    c.address, c.late_interest_bp = "3 place Bellecour\n69002 Lyon", rate_bp
    invoice = db.session.scalar(db.select(Invoice).where(Invoice.number == "F-123"))
    if taxes:
        invoice.amount_excl_tax, invoice.tax_amount = 100000, 20000
    if discount:
        invoice.discount_percent, invoice.discount_until = Decimal("2"), date(2026, 12, 14)
    db.session.commit()
    return invoice.id


def test_french_summary_with_taxes_and_discount(client, app, api, creditor):
    invoice_id = setup(api, creditor, lang="fr", taxes=True, discount=True)
    api.post("/invoices/F-123/payments", json={"amount": "200.00", "date": "2026-11-20", "reference": "VIR-1"})
    portal_login(client, app, "D1", creditor.id)
    text = pdf_text(download(client, "F-123"))
    nb = "\u00a0"
    for expected in ["Récapitulatif de la facture F-123",
                     "il ne la remplace pas. Seule la facture originale fait foi.",
                     f"Atelier Test SAS 3 place Bellecour 69002 Lyon", f"SIREN{nb}: 732829320",
                     f"TVA intracommunautaire{nb}: FR44732829320",
                     "Boulangerie Martin Service comptabilité ZI des Trois Chênes 12 rue des Lilas Bâtiment B "
                     "75011 PARIS FRANCE",
                     "Date d'émission 1er novembre 2026", "Échéance 1er décembre 2026",
                     f"Montant hors taxes 1\u202f000,00{nb}€", f"TVA 200,00{nb}€",
                     f"Montant toutes taxes comprises 1\u202f200,00{nb}€", f"Déjà réglé 200,00{nb}€",
                     f"Reste à payer 1\u202f000,00{nb}€",
                     "Référence de paiement " + format_reference(invoice_reference(invoice_id)),
                     "Paiement à effectuer au plus tard le 1er décembre 2026.",
                     f"Escompte pour paiement anticipé{nb}: 2\u202f% jusqu'au 14 décembre 2026.",
                     "Banque centrale européenne majoré de 10 points",
                     f"pour frais de recouvrement due par un professionnel en cas de retard de paiement{nb}: 40,00{nb}€",
                     "L441-10 et D441-5 du Code de commerce"]:
        assert expected in text, (expected, text)
    assert "Pas d'escompte" not in text and "Facture F-123" not in text
    # Made afresh on each request: a later payment shows at once, and nothing is stored.
    api.post("/invoices/F-123/payments", json={"amount": "300.00", "date": "2026-11-25", "reference": "VIR-2"})
    text = pdf_text(download(client, "F-123"))
    assert f"Déjà réglé 500,00{nb}€" in text and f"Reste à payer 700,00{nb}€" in text
    assert db.session.scalar(db.select(db.func.count()).select_from(Document)) == 0


def test_english_summary_without_taxes_nor_discount(client, app, api, creditor):
    setup(api, creditor, lang="en", rate_bp=1200)
    portal_login(client, app, "D1", creditor.id)
    text = pdf_text(download(client, "F-123"))
    for expected in ["Summary of invoice F-123", "it does not replace it. The original invoice is the legal document.",
                     "SIREN: 732829320", "VAT number: FR44732829320", "Customer reference: D1",
                     "Issue date 1 November 2026", "Due date 1 December 2026",
                     "Amount including VAT €1,200.00", "Paid so far €0.00", "Balance due €1,200.00",
                     "Payment due by 1 December 2026.", "No discount for early payment.",
                     "Late-payment interest: 12% a year, from the day after the due date.",
                     "Fixed indemnity for recovery costs owed by a business paying late: €40.00"]:
        assert expected in text, (expected, text)
    # Unknown amounts without VAT and of VAT: only the total including VAT is shown.
    assert "excluding VAT" not in text and not re.search("(?<!including )VAT €", text)
    assert "discount:" not in text


def test_a_consumer_owes_no_indemnity_and_a_public_buyer_its_own_code(client, app, api, creditor):
    setup(api, creditor, lang="en", kind="consumer", taxes=True)
    portal_login(client, app, "D1", creditor.id)
    text = pdf_text(download(client, "F-123"))
    assert "Amount excluding VAT €1,000.00" in text and "VAT €200.00" in text
    assert "€40" not in text and "Late-payment interest" not in text and "No discount for early payment." in text
    api.put("/debtors/D1", json={"name": "Mairie de Lille", "kind": "public", "language": "fr"})
    text = pdf_text(download(client, "F-123"))
    assert "majoré de 8 points" in text and "L2192-13 et D2192-35 du Code de la commande publique" in text


def test_an_uploaded_pdf_is_served_as_is(client, app, api, creditor):
    setup(api, creditor, lang="fr")
    uploaded = page_pdf("La vraie facture")
    r = api.put("/invoices/F-123", json={"debtor_ref": "D1", "issue_date": "2026-11-01", "due_date": "2026-12-01",
                                         "amount": "1200.00", "currency": "EUR",
                                         "pdf_base64": base64.b64encode(uploaded).decode()})
    assert r.status_code == 200, r.json
    portal_login(client, app, "D1", creditor.id)
    assert download(client, "F-123") == uploaded


def test_the_longest_number_and_address_stay_on_one_page(client, app, api, creditor):
    """A 64-character number, six address lines of 38 capitals, long names, every mention: one
    A4 page (pdf_text checks it), nothing cut."""
    number = "F-" + "9" * 62
    api.put("/debtors/D1", json={"name": "Société des Établissements Longuement Nommés du Grand Ouest",
                                 "language": "fr", "kind": "public", "address": "\n".join(["W" * 38] * 6)})
    assert api.put(f"/invoices/{number}", json={"debtor_ref": "D1", "issue_date": "2026-11-01",
                                                "due_date": "2026-12-01", "amount": "999999999.99",
                                                "currency": "EUR"}).status_code == 201
    invoice = db.session.scalar(db.select(Invoice).where(Invoice.number == number))
    invoice.amount_excl_tax, invoice.tax_amount = 83333333333, 16666666666
    invoice.discount_percent, invoice.discount_until = Decimal("12.5"), date(2026, 11, 15)
    c = db.session.get(Creditor, creditor.id)
    c.legal_name = "Atelier de Démonstration des Très Longs Noms de Société par Actions Simplifiée"
    c.address, c.registration_number, c.vat_number = "Bâtiment C, 3e étage\n12 rue des Lilas\n69003 Lyon", "732829320", "FR44732829320"
    db.session.commit()
    portal_login(client, app, "D1", creditor.id)
    text = pdf_text(download(client, number))
    assert "W" * 38 in text.replace(" ", "") and "D2192-35 du Code de la commande publique" in text
    assert "majoré de 8 points" in text and "12,5\u202f%" in text
