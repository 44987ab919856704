"""Pay by transfer where the debtor pays (CONTRACT §7): the portal home, the page about one
invoice and the statement (HTML and PDF) show the creditor's IBAN and BIC, the reference the rule
asks for (the invoice's on a page about one invoice, the debtor's on one about several) and, in
euros, an EPC QR code read back from pixels: its amount is the one shown beside it, its reference
the one shown, its IBAN the creditor's. Never another debtor's reference or data."""
from __future__ import annotations

import re
import subprocess
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.domain.references import debtor_reference, format_reference, invoice_reference
from portal.extensions import db
from portal.models import Creditor, Debtor, Invoice
from qr_codes import needs_tools, read_data_uri, read_pdf
from support import IBAN, Api, portal_login, response_text

BIC = "AGRIFRPP"
LEGAL_NAME = "Atelier Virement SAS"


@pytest.fixture
def ledger(client, new_creditor):
    """A creditor with IBAN and BIC; D1 (French): F-1 1200.00 and F-2 300.50; D2 (English): F-3
    99.99 and F-4 5000.00, all in euros."""
    who = new_creditor("Atelier Virement", language="en", bic=BIC, legal_name=LEGAL_NAME)
    api = Api(client, who)
    api.put("/debtors/D1", json={"name": "Alpha SARL", "email": "alpha@example.com", "language": "fr"})
    api.put("/debtors/D2", json={"name": "Beta Ltd", "email": "beta@example.com", "language": "en"})
    for number, ref, amount in [("F-1", "D1", "1200.00"), ("F-2", "D1", "300.50"),
                                ("F-3", "D2", "99.99"), ("F-4", "D2", "5000.00")]:
        r = api.put(f"/invoices/{number}", json={"debtor_ref": ref, "issue_date": "2026-09-01",
                                                 "due_date": "2026-10-01", "amount": amount, "currency": "EUR"})
        assert r.status_code == 201, r.json
    return who


def debtor_ref_of(ref: str) -> str:
    return debtor_reference(db.session.scalar(select(Debtor.id).where(Debtor.ref == ref)))


def invoice_ref_of(number: str) -> str:
    return invoice_reference(db.session.scalar(select(Invoice.id).where(Invoice.number == number)))


def amount_of(shown: str) -> Decimal:
    """'€5,099.99' or '5 099,99 €' as a number."""
    digits = re.sub(r"[^\d.,]", "", shown)
    if "," in digits and ("." not in digits or digits.rindex(",") > digits.rindex(".")):
        digits = digits.replace(".", "").replace(",", ".")  # French: comma decimals
    return Decimal(digits.replace(",", ""))


def transfer_block(page: str) -> str:
    block = re.search(r'<div class="card transfer" id="transfer".*?</figure>|<div class="card transfer" '
                      r'id="transfer".*?<script', page, re.S)
    assert block, page
    return block.group(0)


def shown_reference(page: str) -> str:
    return re.search(r'<span class="mono reference">([^<]+)</span>', page).group(1)


def qr_uri(page: str) -> str | None:
    m = re.search(r'<img src="(data:image/svg\+xml;base64,[^"]+)" alt="([^"]+)"', page)
    return m.group(1) if m else None


def copies(page: str) -> dict[str, str]:
    """aria-label of each copy button -> what it copies."""
    return {label: value for value, label in
            re.findall(r'<button type="button" class="copy secondary" data-copy="([^"]*)"[^>]*aria-label="([^"]+)"',
                       page)}


def others_than(own: str) -> set[str]:
    """Every reference of the ledger but `own`, compact and formatted."""
    refs = {debtor_ref_of(r) for r in ("D1", "D2")} | {invoice_ref_of(n) for n in ("F-1", "F-2", "F-3", "F-4")}
    refs.discard(own)
    return refs | {format_reference(r) for r in refs}


@needs_tools
def test_home_shows_the_debtors_reference_iban_bic_and_a_qr_code_for_the_total_due(ledger, client, app):
    portal_login(client, app, "D2", ledger.id)
    page = response_text(client.get("/portal/"))
    block = transfer_block(page)
    own = debtor_ref_of("D2")
    assert shown_reference(block) == format_reference(own)
    assert copies(block) == {"Copy the IBAN": IBAN, "Copy the BIC": BIC, "Copy the reference": own}
    assert "FR76 3000 6000 0112 3456 7890 189" in block and f'<span class="mono">{BIC}</span>' in block
    assert "it stands for your account" in block
    # Not the debtor number and invoice numbers of old, nor any other reference, nor D1's data.
    assert not any(r in page for r in others_than(own))
    assert "Alpha" not in page and "F-1" not in page
    total = re.search(r"<span>Total due</span><strong>([^<]+)</strong>", page).group(1)
    assert amount_of(total) == Decimal("5099.99")
    code = read_data_uri(qr_uri(block))
    assert (code.amount, code.currency) == (amount_of(total), "EUR")
    assert code.reference == own and code.iban == IBAN and code.bic == BIC and code.name == LEGAL_NAME
    assert f"to pay {total}, the reference filled in" in block


@needs_tools
def test_a_french_debtor_reads_french_and_the_qr_follows_payments(ledger, client, app):
    api = Api(client, ledger)
    api.post("/invoices/F-1/payments", json={"amount": "200.00", "date": "2026-10-02", "reference": "VIR-1"})
    portal_login(client, app, "D1", ledger.id)
    page = response_text(client.get("/portal/"))
    block = transfer_block(page)
    spaced = re.sub("[\u00a0\u202f]", " ", block)  # French amounts hold no-break spaces
    for words in ("Payer par virement", "Bénéficiaire", "Référence à indiquer", ">Copier</button>",
                  'aria-label="Copier l\'IBAN"', 'aria-label="Copier la référence"',
                  "Indiquez cette seule référence dans le libellé de votre virement : elle désigne votre compte",
                  "Scannez le code avec l'application de votre banque pour payer 1 300,50 €, référence comprise."):
        assert words in spaced, words
    assert shown_reference(block) == format_reference(debtor_ref_of("D1"))
    code = read_data_uri(qr_uri(block))
    assert code.amount == Decimal("1300.50") and code.reference == debtor_ref_of("D1")


@needs_tools
def test_the_page_about_one_invoice_shows_that_invoices_reference_and_balance(ledger, make_app, app):
    creditor = db.session.get(Creditor, ledger.id)
    creditor.partial_payment_min = 1000
    db.session.commit()
    client = make_app(STRIPE_SECRET_KEY="sk_test_transfer", STRIPE_WEBHOOK_SECRET="whsec_transfer",
                      STRIPE_API_BASE="http://127.0.0.1:9").test_client()
    portal_login(client, app, "D2", ledger.id)
    Api(client, ledger).post("/invoices/F-4/payments", json={"amount": "1000.00", "date": "2026-10-02",
                                                             "reference": "VIR-4"})
    r = client.get("/portal/invoices/F-4/pay")
    assert r.status_code == 200
    page = response_text(r)
    block = transfer_block(page)
    own = invoice_ref_of("F-4")
    assert shown_reference(block) == format_reference(own)
    assert copies(block)["Copy the reference"] == own
    assert "it stands for invoice F-4" in block
    assert not any(r in page for r in others_than(own))
    code = read_data_uri(qr_uri(block))
    assert code.amount == Decimal("4000.00") and code.reference == own and code.iban == IBAN
    assert "Balance: €4,000.00" in page


@needs_tools
def test_statement_page_and_pdf_show_the_debtors_reference_and_a_qr_code_read_back(ledger, client, app, tmp_path):
    portal_login(client, app, "D2", ledger.id)
    own = debtor_ref_of("D2")
    page = response_text(client.get("/portal/statement"))
    block = transfer_block(page)
    assert shown_reference(block) == format_reference(own)
    assert not any(r in page for r in others_than(own))
    assert read_data_uri(qr_uri(block)).amount == Decimal("5099.99")

    r = client.get("/portal/statement.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    (tmp_path / "statement.pdf").write_bytes(r.data)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "statement.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert f"Reference to quote: {format_reference(own)}" in text
    assert "IBAN FR76 3000 6000 0112 3456 7890 189 — BIC AGRIFRPP" in text
    shown = re.search(r"Balance due today: ([^\n]+?)\.\n", text).group(1)
    assert not any(r in text for r in others_than(own)) and "Alpha" not in text
    [code] = read_pdf(r.data, keep=tmp_path / "pages")
    assert code.amount == amount_of(shown) == Decimal("5099.99")
    assert code.reference == own and code.iban == IBAN and code.name == LEGAL_NAME


def test_no_qr_code_without_iban_or_in_another_currency_but_the_written_details_stay(ledger, client, app):
    api = Api(client, ledger)
    api.put("/debtors/U1", json={"name": "Gamma Inc", "language": "en"})
    api.put("/invoices/U-1", json={"debtor_ref": "U1", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                                   "amount": "250.00", "currency": "USD"})
    portal_login(client, app, "U1", ledger.id)
    block = transfer_block(response_text(client.get("/portal/")))
    assert qr_uri(block) is None
    assert shown_reference(block) == format_reference(debtor_ref_of("U1")) and "FR76 3000" in block
    # The same debtor with an invoice in euros too: the code asks for the euros only.
    api.put("/invoices/E-1", json={"debtor_ref": "U1", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                                   "amount": "40.00", "currency": "EUR"})
    assert "transfer of €40.00" in transfer_block(response_text(client.get("/portal/")))

    creditor = db.session.get(Creditor, ledger.id)
    creditor.iban = None
    db.session.commit()
    portal_login(client, app, "D2", ledger.id)
    page = response_text(client.get("/portal/"))
    block = transfer_block(page)
    assert qr_uri(block) is None and "IBAN" not in block and "Contact us for our bank details." in block
    assert shown_reference(block) == format_reference(debtor_ref_of("D2"))
    assert set(copies(block)) == {"Copy the BIC", "Copy the reference"}


def test_nothing_due_no_qr_code(ledger, client, app):
    api = Api(client, ledger)
    for number, amount in (("F-3", "99.99"), ("F-4", "5000.00")):
        api.post(f"/invoices/{number}/payments", json={"amount": amount, "date": "2026-10-02", "reference": number})
    portal_login(client, app, "D2", ledger.id)
    block = transfer_block(response_text(client.get("/portal/")))
    assert qr_uri(block) is None and shown_reference(block) == format_reference(debtor_ref_of("D2"))


def test_copy_buttons_are_hidden_until_the_script_served_from_static_shows_them(ledger, client, app):
    portal_login(client, app, "D2", ledger.id)
    r = client.get("/portal/")
    page = r.get_data(as_text=True)
    assert re.findall(r'<button type="button" class="copy secondary"[^>]*>', page)
    assert all(" hidden>" in b for b in re.findall(r'<button type="button" class="copy secondary"[^>]*>', page))
    assert '<script src="/static/copy.js" defer></script>' in page
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    js = client.get("/static/copy.js")
    assert js.status_code == 200 and b"navigator.clipboard" in js.data


@needs_tools
def test_the_statement_asks_by_transfer_for_what_is_not_disputed(ledger, client, app, tmp_path):
    """D2 disputes F-4 (5000.00): the statement's transfer and its QR code, page and PDF, ask for
    F-3 alone and say why the rest is left out."""
    from portal.services import disputes

    with app.app_context():
        d2 = db.session.scalar(select(Debtor.id).where(Debtor.ref == "D2"))
        disputes.open_dispute(d2, "F-4", reason="wrong_amount", comment="Not what was ordered")
        db.session.commit()
    portal_login(client, app, "D2", ledger.id)
    page = response_text(client.get("/portal/statement"))
    assert read_data_uri(qr_uri(transfer_block(page))).amount == Decimal("99.99")
    assert "are not included in the amount to pay by transfer" in page

    r = client.get("/portal/statement.pdf")
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=r.data, capture_output=True, check=True).stdout
    assert b"Balance due today: \xe2\x82\xac99.99." in text and b"not included in the amount" in text
    [code] = read_pdf(r.data, keep=tmp_path / "pages")
    assert code.amount == Decimal("99.99")
