"""Letters fit to send (issue 14): the PDF of services/letters.py read back as a reader, a postman
and a bank app would: its text (pdftotext), its layout (word boxes) and its EPC QR code (zbarimg).

One amount (the sentence, the table's total and the QR code all say demand.total, no other total),
long dates only, the delivery stated as chosen, the short link on one line, the law of the
debtor's kind, the address in the envelope's window. Rendering touches no SQL of its own, so these
run on SQLite only; test_short_links.py drives a letter through composing on both engines.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date

import pytest

from portal.domain.money import format_money
from portal.domain.references import debtor_reference, format_reference
from portal.extensions import db
from portal.models import Creditor, Debtor, Invoice
from portal.services import documents, letters
from portal.services.demand import Demand, Line, Sent

pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("pdftotext", "pdftoppm", "zbarimg")),
                                reason="needs poppler-utils (pdftotext, pdftoppm) and zbar-tools (zbarimg)")

DAY = date(2026, 12, 6)
DEADLINE = date(2026, 12, 14)
EARLIER = [Sent(date(2026, 11, 2), "first", "reminder"), Sent(date(2026, 11, 12), "second", "firm")]
URL = "http://portal.test/l/k7m2x9pqrs"
ADDRESS = "Service comptabilité\n3 avenue des Fleurs\nBP 12\n75008 PARIS"
MM = 72 / 25.4  # PDF points per millimetre
DELIVERY_LINES = {"registered": {"fr": "Lettre recommandée avec accusé de réception",
                                 "en": "Registered letter with acknowledgement of receipt"},
                  "email": {"fr": "Envoyée par courrier électronique", "en": "Sent by e-mail"}}
ARTICLES = {"business": ["L441-10", "D441-5"], "public": ["L2192-13", "R2192-31", "D2192-35"],
            "consumer": ["1231-6"]}
ALL_ARTICLES = {a for articles in ARTICLES.values() for a in articles}
NUMERIC_DATE = re.compile(r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b")
SHORT_MONTH = re.compile(r"\b(janv|févr|avr|juil|sept|oct|nov|déc|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\.?(?=\s\d)")


@pytest.fixture
def engine_name():
    return "sqlite"


@pytest.fixture
def creditor_row(app, creditor):
    row = db.session.get(Creditor, creditor.id)
    row.legal_name, row.address = "Atelier Test SARL", "12 rue des Lilas\n69003 LYON"
    row.registration_number, row.vat_number, row.bic = "123 456 789", "FR32123456789", "AGRIFRPP"
    row.phone = "+33 4 72 00 00 00"
    db.session.commit()
    return row


def make_debtor(creditor_row, kind="business", lang="fr", address=ADDRESS) -> Debtor:
    ref = f"{kind[:3].upper()}-{lang}-{'A' if address else 'N'}-{db.session.query(Debtor).count()}"
    debtor = Debtor(creditor_id=creditor_row.id, ref=ref, name=f"Client {kind} {lang}", email="d@example.com",
                    language=lang, kind=kind, address=address)
    db.session.add(debtor)
    db.session.flush()
    return debtor


def make_invoice(debtor, suffix, due, amount, paid=0, kind="invoice", charged=None) -> Invoice:
    invoice = Invoice(creditor_id=debtor.creditor_id, debtor_id=debtor.id, number=f"{debtor.ref}-{suffix}",
                      issue_date=min(due, date(2026, 9, 1)), due_date=due, amount=amount, amount_paid=paid, currency="EUR",
                      status="open" if not paid else "partially_paid", kind=kind,
                      charged_invoice_id=charged.id if charged else None)
    db.session.add(invoice)
    db.session.flush()
    return invoice


def make_demand(debtor, *, charges: bool, earlier=EARLIER, deadline=DEADLINE) -> Demand:
    """Two invoices; with charges (businesses, public buyers): interest and the indemnity claimed now."""
    f1 = make_invoice(debtor, "F1", date(2026, 10, 1), 120_000)
    f2 = make_invoice(debtor, "F2", date(2026, 10, 31), 30_050, paid=10_000)
    lines = [Line(f1, 120_000, 66, 2_345 if charges else 0, 4_000 if charges else 0),
             Line(f2, 20_050, 36, 0, 4_000 if charges else 0)]
    total = sum(line.balance + line.interest + line.indemnity for line in lines)
    return Demand("EUR", lines, total, debtor_reference(debtor.id), deadline, list(earlier))


def render(tmp_path, creditor_row, debtor, demand, *, kind="formal_notice", delivery="registered", url=URL):
    pdf = documents.html_pdf(letters.letter_html(creditor_row, debtor, kind, demand, None, url=url, day=DAY,
                                                 delivery=delivery))
    path = tmp_path / f"{debtor.ref}-{delivery}.pdf"
    path.write_bytes(pdf)
    return path


def pdf_text(path, *layout) -> str:
    out = subprocess.run(["pdftotext", *layout, str(path), "-"], check=True, capture_output=True, text=True).stdout
    return out.replace("\u202f", " ").replace("\u00a0", " ")


def money(minor, lang) -> str:
    return format_money(minor, "EUR", lang).replace("\u202f", " ").replace("\u00a0", " ")


MONEY = {"fr": re.compile(r"\d{1,3}(?: \d{3})*,\d{2} €"), "en": re.compile(r"€\d{1,3}(?:,\d{3})*\.\d{2}")}


def qr_payload(tmp_path, pdf_path) -> str:
    """Page 1 at 150 dpi, read by zbarimg: what a bank app scanning the printed letter gets."""
    prefix = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", str(pdf_path), str(prefix)], check=True)
    [png] = tmp_path.glob("page*.png")
    out = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True)
    png.unlink()
    assert out.returncode == 0, "no QR code found on page 1"
    return out.stdout.rstrip("\n")


def check_one_amount(text: str, demand: Demand, lang: str):
    """Every money figure is a line of the table or the total, and the total appears exactly twice:
    in the demand sentence and in the table's total row. No second total anywhere."""
    total = money(demand.total, lang)
    lines = [money(x, lang) for line in demand.lines for x in (line.balance, line.interest, line.indemnity) if x]
    figures = MONEY[lang].findall(text)
    for figure in lines:
        figures.remove(figure)
    assert figures == [total, total], figures
    flat = " ".join(text.split())
    sentence = (f"nous vous mettons en demeure de régler la somme de {total}" if lang == "fr"
                else f"formal notice to pay the sum of {total}")
    assert sentence in flat
    assert re.search(("Total dû" if lang == "fr" else "Total due") + r"\s+" + re.escape(total), text)
    balances_only = money(sum(line.balance for line in demand.lines), lang)
    if demand.new_charges:
        assert balances_only not in text  # the old letter's second amount


def check_long_dates(text: str, lang: str, demand: Demand):
    assert not NUMERIC_DATE.search(text), NUMERIC_DATE.search(text).group(0)
    assert not SHORT_MONTH.search(text), SHORT_MONTH.search(text).group(0)
    flat = " ".join(text.split())
    if lang == "fr":
        expected = ["Lyon, le 6 décembre 2026", "au plus tard le 14 décembre 2026", "1er octobre 2026",
                    "31 octobre 2026", "Malgré nos relances des 2 et 12 novembre 2026,"]
    else:
        expected = ["6 December 2026", "by 14 December 2026 at the latest", "1 October 2026", "31 October 2026",
                    "Despite our reminders of 2 and 12 November 2026,"]
    for piece in expected:
        assert piece in flat, piece


# --- the full check, per kind of debtor and language ---------------------------------------------

@pytest.mark.parametrize("kind", ["business", "public", "consumer"])
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_formal_notice_per_kind_and_language(tmp_path, creditor_row, kind, lang):
    debtor = make_debtor(creditor_row, kind, lang)
    demand = make_demand(debtor, charges=kind != "consumer")
    path = render(tmp_path, creditor_row, debtor, demand)
    text = pdf_text(path, "-layout")

    check_one_amount(text, demand, lang)
    check_long_dates(text, lang, demand)
    flat = " ".join(pdf_text(path).split())
    assert DELIVERY_LINES["registered"][lang] in flat
    assert ("Objet : Mise en demeure de payer" if lang == "fr" else "Subject: Formal notice to pay") in flat
    for article in ARTICLES[kind]:
        assert article in text, article
    for article in ALL_ARTICLES - set(ARTICLES[kind]):
        assert article not in text, article
    if kind == "consumer":
        assert "indemnit" not in text.lower() and "40 euros" not in text and "€40" not in text
    # The short link, whole on one line; the reference and IBAN written out before the QR code.
    assert URL in pdf_text(path).splitlines()
    assert format_reference(demand.reference) in text
    assert "FR76 3000 6000 0112 3456 7890 189" in text and "AGRIFRPP" in text
    # The QR code on page 1 asks for exactly the letter's amount, with the letter's reference.
    payload = qr_payload(tmp_path, path).split("\n")
    euros, cents = divmod(demand.total, 100)
    assert payload[:4] == ["BCD", "002", "1", "SCT"]
    assert payload[6] == "FR7630006000011234567890189" and payload[5] == "Atelier Test SARL"
    assert payload[7] == f"EUR{euros}.{cents:02d}" and payload[9] == demand.reference


def test_french_letter_reads_as_a_french_formal_notice(tmp_path, creditor_row):
    debtor = make_debtor(creditor_row, "business", "fr")
    demand = make_demand(debtor, charges=True)
    flat = " ".join(pdf_text(render(tmp_path, creditor_row, debtor, demand)).split())
    total = money(demand.total, "fr")
    for sentence in ["Madame, Monsieur,",
                     "Malgré nos relances des 2 et 12 novembre 2026, notre créance détaillée "
                     "ci-dessous reste impayée à ce jour.",
                     f"Par la présente, nous vous mettons en demeure de régler la somme de {total} au plus tard "
                     "le 14 décembre 2026.",
                     "Solde de la facture", "Intérêts de retard", "Indemnité forfaitaire de recouvrement",
                     "Conformément à l'article L441-10 du Code de commerce",
                     "Nous vous prions d'agréer, Madame, Monsieur, l'expression de nos salutations distinguées."]:
        assert sentence in flat, sentence
    for english in ("Dear", "Invoice", "Total due", "Subject"):
        assert english not in flat


def test_english_letter_for_an_english_debtor(tmp_path, creditor_row):
    debtor = make_debtor(creditor_row, "business", "en")
    demand = make_demand(debtor, charges=True, earlier=EARLIER[:1])
    flat = " ".join(pdf_text(render(tmp_path, creditor_row, debtor, demand, delivery="letter")).split())
    for sentence in ["Dear Sir or Madam,", "Despite our reminder of 2 November 2026, the amount detailed below "
                     "remains unpaid to date.", "Yours faithfully,", "Under article L441-10 of the French "
                     "Commercial Code"]:
        assert sentence in flat, sentence
    for french in ("Madame", "Facture", "Objet", "relance"):
        assert french not in flat


# --- delivery, address, steps ----------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("delivery", ["registered", "letter", "email"])
def test_the_delivery_is_stated_as_chosen(app, creditor_row, lang, delivery):
    debtor = make_debtor(creditor_row, "business", lang)
    demand = make_demand(debtor, charges=True)
    html = letters.letter_html(creditor_row, debtor, "formal_notice", demand, None, url=URL, day=DAY, delivery=delivery)
    for other, lines in DELIVERY_LINES.items():
        assert (lines[lang] in html) == (other == delivery), other
    assert ("recommandée" in html or "Registered" in html) == (delivery == "registered")
    with pytest.raises(ValueError):
        letters.letter_html(creditor_row, debtor, "formal_notice", demand, None, url=URL, day=DAY, delivery="fax")


def word_boxes(path):
    """(word, xMin, yMin, yMax, width) in millimetres from the sheet's top left, page 1."""
    html = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout
    return [(w, float(x0) / MM, float(y0) / MM, float(y1) / MM, (float(x1) - float(x0)) / MM)
            for x0, y0, x1, y1, w in re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', html)]


def test_address_sits_in_the_window_of_a_french_envelope(tmp_path, creditor_row):
    debtor = make_debtor(creditor_row, "business", "fr")
    path = render(tmp_path, creditor_row, debtor, make_demand(debtor, charges=True))
    # The window of a DL envelope shows about x 95-200 mm, y 45-95 mm of the folded sheet, play included.
    near = [b for b in word_boxes(path) if b[1] + b[4] >= 95 and b[3] > 45 and b[2] < 95]
    # What shows through the window is the name and address, nothing else.
    assert " ".join(b[0] for b in near) == f"{debtor.name} {' '.join(ADDRESS.split())}"
    for word, x, top, bottom, _width in near:
        # The frame: 110 mm from the left edge, 55 mm from the top, 85 x 33 mm (DL window, NF Z10-011).
        assert 109 <= x <= 195 and 54.5 <= top and bottom <= 88.5, (word, x, top, bottom)
    assert min(b[1] for b in near) == pytest.approx(110, abs=1)
    assert min(b[2] for b in near) == pytest.approx(55, abs=1.5)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_without_an_address_the_name_only(tmp_path, creditor_row, lang):
    debtor = make_debtor(creditor_row, "consumer", lang, address=None)
    demand = make_demand(debtor, charges=False)
    html = letters.letter_html(creditor_row, debtor, "formal_notice", demand, None, url=URL, day=DAY,
                               delivery="letter")
    window = re.search(r'<div class="window">(.*?)</div>', html, re.S).group(1)
    assert window.strip() == debtor.name
    assert letters.recipient_lines(debtor) == [debtor.name]


def test_an_address_starting_with_the_name_does_not_repeat_it(creditor_row):
    debtor = make_debtor(creditor_row, "business", "fr", address="CLIENT BUSINESS FR\n3 avenue des Fleurs\n75008 PARIS")
    assert letters.recipient_lines(debtor) == [debtor.name, "3 avenue des Fleurs", "75008 PARIS"]


def test_reminder_letter_is_a_relance_without_formal_notice_wording(tmp_path, creditor_row):
    debtor = make_debtor(creditor_row, "consumer", "fr")
    demand = make_demand(debtor, charges=False, earlier=[], deadline=None)
    flat = " ".join(pdf_text(render(tmp_path, creditor_row, debtor, demand, kind="reminder", delivery="letter")).split())
    total = money(demand.total, "fr")
    assert "Objet : Relance" in flat
    assert f"Nous vous remercions de bien vouloir régler la somme de {total} dans les meilleurs délais." in flat
    assert "Sauf erreur de notre part, notre créance détaillée ci-dessous reste impayée à ce jour." in flat
    assert "mise en demeure" not in flat.lower() and "1231-6" not in flat  # a consumer owes nothing yet
    assert "Malgré" not in flat  # no reminder claimed that was never sent


def test_charges_items_are_lines_of_their_own(tmp_path, creditor_row):
    debtor = make_debtor(creditor_row, "business", "fr")
    f1 = make_invoice(debtor, "F1", date(2026, 10, 1), 120_000)
    old = make_invoice(debtor, "F0", date(2026, 8, 1), 50_000)
    charges_item = make_invoice(debtor, "C1", date(2026, 11, 15), 5_210, kind="charges", charged=old)
    lines = [Line(f1, 120_000, 66, 2_345, 4_000), Line(charges_item, 5_210, 21)]
    demand = Demand("EUR", lines, 120_000 + 2_345 + 4_000 + 5_210, debtor_reference(debtor.id), DEADLINE, EARLIER)
    path = render(tmp_path, creditor_row, debtor, demand)
    text = pdf_text(path, "-layout")
    assert re.search(re.escape(old.number) + r"\s+Frais de retard déjà réclamés\s+52,10 €", text)
    check_one_amount(text, demand, "fr")
    assert qr_payload(tmp_path, path).split("\n")[7] == "EUR1315.55"


def test_a_demand_that_does_not_add_up_makes_no_letter(creditor_row):
    debtor = make_debtor(creditor_row, "business", "fr")
    good = make_demand(debtor, charges=True)
    bad = Demand(good.currency, good.lines, good.total - 1, good.reference, good.deadline, good.earlier)
    with pytest.raises(ValueError, match="add up"):
        letters.letter_html(creditor_row, debtor, "formal_notice", bad, None, url=URL, day=DAY, delivery="letter")


def test_a_long_link_is_never_broken(tmp_path, creditor_row):
    long_url = "http://portal.test/l/" + "x" * 98  # 120 characters
    debtor = make_debtor(creditor_row, "business", "en")
    path = render(tmp_path, creditor_row, debtor, make_demand(debtor, charges=True), url=long_url)
    assert long_url in pdf_text(path).splitlines()


def test_no_transfer_details_nor_qr_code_without_an_iban(app, creditor_row):
    debtor = make_debtor(creditor_row, "business", "fr")
    demand = make_demand(debtor, charges=True)
    html = letters.letter_html(creditor_row, debtor, "formal_notice", demand, None, url=URL, day=DAY, delivery="letter")
    assert html.count("data:image/svg+xml") == 1
    creditor_row.iban = None
    html = letters.letter_html(creditor_row, debtor, "formal_notice", demand, None, url=URL, day=DAY, delivery="letter")
    assert "data:image/svg+xml" not in html and "IBAN" not in html
    assert URL in html  # the online way to pay stays
