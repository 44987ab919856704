"""One amount everywhere (issue 14): a real dunning day against the aiosmtpd server, and the amount
the message stores equals the one in the e-mail's text and HTML parts, in its EPC QR code read
back with zbarimg, and in the banner of the portal page its link opens; with charges (firm step)
and without. Then texts that say only what happened: a first reminder recalls none, a later one
names the dates of those really sent; a thank-you and a reminder due the same day are one
e-mail; the legal basis follows the debtor's kind. The formal notice's letter, its QR code, its e-mail and
banner agree too."""
from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date, timedelta

import pytest

from dunning_jobs import day as dunning_day
from portal.domain.charges import late_charges
from portal.domain.money import format_money
from portal.domain.references import debtor_reference, format_reference, invoice_reference
from portal.extensions import db
from portal.models import Creditor, Event, Invoice, OutboxMessage, Reminder
from portal.services import demand as demands
from portal.services import ledger, letters, message_banner, reminders
from support import IBAN

DUE = date(2026, 10, 31)  # D+1 is 1 November: "1er novembre 2026"
BIC = "BNPAFRPPXXX"


def d(n: int) -> date:
    return DUE + timedelta(days=n)


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


def _ledger(creditor_id, debtors):
    """debtors: (ref, kind, language, [(number, due, amount)])."""
    creditor = db.session.get(Creditor, creditor_id)
    creditor.bic, creditor.legal_name = BIC, "Atelier Test SAS"
    db.session.commit()
    for ref, kind, lang, invoices in debtors:
        ledger.upsert_debtor(creditor, ref, {"name": f"Client {ref}", "email": f"{ref.lower()}@example.com",
                                             "language": lang})
        debtor = ledger.get_debtor(creditor.id, ref)
        debtor.kind = kind  # "public" is not yet an API input (another helper's part)
        db.session.commit()
        for number, due, amount in invoices:
            ledger.upsert_invoice(creditor, number, {"debtor_ref": ref, "issue_date": (due - timedelta(days=30)).isoformat(),
                                                     "due_date": due.isoformat(), "amount": amount, "currency": "EUR"})
    return creditor


def _run(smtp_server, *offsets) -> dict[str, object]:
    """Run these dunning days; the e-mails received on the last one, by recipient."""
    got = {}
    for n in offsets:
        dunning_day.run(d(n))
        got = {r.rcpt_tos[0]: r for r in smtp_server.handler.take()}
    return got


def _message(received) -> OutboxMessage:
    return db.session.scalar(db.select(OutboxMessage).where(
        OutboxMessage.message_id_header == received.message["Message-ID"]))


def _qr_payload(received, tmp_path) -> str:
    """The inline PNG the HTML part shows (cid:), read back by zbarimg."""
    html = received.html()
    cid = re.search(r'src="cid:([^"]+)"', html).group(1)
    [png] = [p for p in received.message.walk() if p.get_content_type() == "image/png"]
    assert png["Content-ID"] == f"<{cid}>" and received.message.get_body(("related",)) is not None
    path = tmp_path / "qr.png"
    path.write_bytes(png.get_content())
    out = subprocess.run(["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _banner_amount(client, received) -> str:
    link = re.search(r"http://portal\.test(/l/\S+)", received.text()).group(1)
    assert client.get(link).status_code == 303
    page = client.get("/portal/").get_data(as_text=True)
    return re.search(r'class="banner-amount">([^<]+)<', page).group(1), page


needs_zbar = pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (zbar-tools) is not installed")


@needs_zbar
@pytest.mark.parametrize("upto, with_charges", [((1,), False), ((1, 8, 15), True)], ids=["reminder_1", "firm"])
def test_one_amount_in_text_html_qr_and_banner(app, creditor, smtp_server, client, tmp_path, upto, with_charges):
    _ledger(creditor.id, [("D1", "business", "fr", [("A-1", DUE, "1000.00"), ("A-2", d(-3), "234.56")])])
    received = _run(smtp_server, *upto)["d1@example.com"]
    message = _message(received)
    balances = 100000 + 23456
    if with_charges:
        items = db.session.scalars(db.select(Invoice).where(Invoice.kind == "charges").order_by(Invoice.number)).all()
        assert [i.number for i in items] == ["A-1+F1", "A-2+F1"]
        assert all(i.charged_invoice_id and i.due_date == i.issue_date == d(15) and i.status == "open" for i in items)
        rates = demands.reference_rates()
        for item, (due, amount) in zip(items, ((DUE, 100000), (d(-3), 23456))):
            expected = late_charges(amount, "EUR", due, d(15), debtor_kind="business", reference_rates=rates)
            assert item.amount == expected.interest + 4000
        assert message.amount == balances + sum(i.amount for i in items)
    else:
        assert message.amount == balances
        assert not db.session.scalar(db.select(db.func.count()).select_from(Invoice).where(Invoice.kind == "charges"))
    shown = format_money(message.amount, "EUR", "fr")

    # The text part and the HTML part state that amount, the debtor's reference (several items),
    # the IBAN and the BIC.
    assert message.currency == "EUR" and message.payment_reference == debtor_reference(message.debtor_id)
    text, html = received.text(), received.html()
    assert f"Total dû\u00a0: {shown}" in text and f"Montant\u00a0: {shown}" in text
    assert re.search(r"Total dû</strong></td><td[^>]*><strong>" + re.escape(shown), html)
    for part in (text, html):
        assert format_reference(message.payment_reference) in part
        assert "FR76 3000 6000 0112 3456 7890 189" in part and BIC in part
    assert re.findall(r"\d[\d\u202f\u00a0 ]*,\d\d\u00a0€", text.split("Total dû")[1])[0] == shown

    # The QR code asks exactly that amount, to that IBAN, with that reference.
    payload = _qr_payload(received, tmp_path).split("\n")
    assert payload[:4] == ["BCD", "002", "1", "SCT"] and payload[4] == BIC and payload[6] == IBAN
    assert payload[7] == f"EUR{message.amount // 100}.{message.amount % 100:02d}"
    assert payload[9] == message.payment_reference

    # The portal page its link opens shows the same amount in the banner, naming the message.
    amount, page = _banner_amount(client, received)
    assert amount == shown
    label = "15 novembre 2026" if with_charges else "1er novembre 2026"
    assert f"Notre relance du {label}" in page
    # Each outlined row's name as read: the number (its link's hidden "Facture " and "(PDF)" aside).
    rows = re.findall(r'<tr class="[^"]*\bselected\b[^"]*">.*?<th scope="row"[^>]*>(.*?)</th>', page, re.S)
    ticked = {re.sub(r'<span class="sr-only">.*?</span>|<small>.*?</small>|<[^>]+>', "", th).strip() for th in rows}
    charges = {"Frais de retard et indemnité — facture A-1", "Frais de retard et indemnité — facture A-2"}
    assert ticked == ({"A-1", "A-2"} | charges if with_charges else {"A-1", "A-2"})


def test_one_invoice_quotes_its_own_reference_and_charges_are_claimed_once(app, creditor, smtp_server):
    creditor_row = _ledger(creditor.id, [("D1", "business", "fr", [("A-1", DUE, "1000.00")])])
    first = _message(_run(smtp_server, 1)["d1@example.com"])
    invoice = db.session.scalar(db.select(Invoice).where(Invoice.number == "A-1"))
    assert first.payment_reference == invoice_reference(invoice.id) and first.deadline is None
    firm = _message(_run(smtp_server, 8, 15)["d1@example.com"])
    assert firm.payment_reference == debtor_reference(invoice.debtor_id)  # the invoice and its charges item
    f1 = db.session.scalar(db.select(Invoice).where(Invoice.number == "A-1+F1"))
    assert db.session.scalar(db.select(db.func.count()).select_from(Event).where(
        Event.type == "charges.claimed", Event.invoice_id == f1.id)) == 1

    # The formal notice, approved a week later: only the interest accrued since, no second indemnity.
    dunning_day.run(d(30))
    debtor = ledger.get_debtor(creditor.id, "D1")
    notice = reminders.approve(creditor_row, debtor.id, d(31), user="owner")
    f2 = db.session.scalar(db.select(Invoice).where(Invoice.number == "A-1+F2"))
    rates = demands.reference_rates()
    accrued = [late_charges(100000, "EUR", DUE, day, debtor_kind="business", reference_rates=rates).interest
               for day in (d(15), d(31))]
    assert f1.amount == accrued[0] + 4000 and f2.amount == accrued[1] - accrued[0]
    assert notice.amount == 100000 + f1.amount + f2.amount
    assert notice.deadline == d(31) + timedelta(days=creditor_row.formal_notice_days)
    assert letters.pdf_of(notice).startswith(b"%PDF")
    banner = message_banner.for_session(debtor.id, notice.id, [], "fr")  # named after the day it was written
    assert (banner.kind, banner.day, banner.amount, banner.deadline) == ("formal_notice", d(31), notice.amount,
                                                                         notice.deadline)


def test_first_reminder_recalls_none_later_ones_name_the_dates_sent(app, creditor, smtp_server):
    _ledger(creditor.id, [("D1", "business", "fr", [("A-1", DUE, "1000.00")]),
                          ("D2", "business", "en", [("B-1", DUE, "500.00")])])
    courtesy = _run(smtp_server, -7)
    first = _run(smtp_server, 1)
    for r in (courtesy["d1@example.com"], first["d1@example.com"]):
        assert not re.search(r"précédent|Malgré|relances? d[eu]s? ", r.subject + r.text()), r.text()
    for r in (courtesy["d2@example.com"], first["d2@example.com"]):
        assert not re.search(r"previous|Despite|reminders? of", r.subject + r.text()), r.text()
    second = _run(smtp_server, 8)
    assert "Ce message fait suite à notre relance du 1er novembre 2026." in second["d1@example.com"].text()
    assert "This message follows our reminder of 1 November 2026." in second["d2@example.com"].text()
    firm = _run(smtp_server, 15)
    assert "Ce message fait suite à nos relances des 1er et 8 novembre 2026." in firm["d1@example.com"].text()
    assert "This message follows our reminders of 1 and 8 November 2026." in firm["d2@example.com"].text()
    assert "relances des 1er et 8 novembre 2026" in firm["d1@example.com"].html()

    # The formal notice's own text places the dates ({{ earlier }}): "Malgré nos relances des …".
    dunning_day.run(d(30))
    creditor_row = db.session.get(Creditor, creditor.id)
    notice = reminders.approve(creditor_row, ledger.get_debtor(creditor.id, "D1").id, d(31), user="owner")
    assert "Malgré nos relances des 1er, 8 et 15 novembre 2026, les sommes" in notice.text_body
    assert notice.text_body.count("1er, 8 et 15 novembre") == 1  # not recalled twice
    assert f"au plus tard le {notice.deadline.day} décembre 2026" in notice.text_body


def test_stored_former_default_texts_are_written_truthfully(app, creditor, smtp_server):
    """A plan created before issue 14 still holds "Malgré notre précédent rappel": today's text replaces it."""
    from portal.models import DunningStep
    from portal.services import plans
    _ledger(creditor.id, [("D1", "business", "fr", [("A-1", DUE, "1000.00")])])
    _run(smtp_server, 1)  # the default plans exist from the first run
    for step in db.session.scalars(db.select(DunningStep).where(DunningStep.code == "reminder_2")):
        step.body_fr = plans.FORMER_TEXTS[("reminder_2", "fr")]
    db.session.commit()
    second = _run(smtp_server, 8)["d1@example.com"]
    assert "Malgré notre précédent rappel" not in second.text()
    assert "Ce message fait suite à notre relance du 1er novembre 2026." in second.text()


def test_thank_you_and_reminder_due_the_same_day_are_one_email(app, creditor, smtp_server):
    creditor_row = _ledger(creditor.id, [("D1", "business", "fr", [("X-1", DUE, "300.00"), ("Y-1", d(8), "120.00")])])
    _run(smtp_server, 1)
    ledger.record_offline_payment(creditor_row, "X-1", {"amount": "300.00", "date": d(5).isoformat(),
                                                        "reference": "VIR-X1"})
    received = smtp_server.handler.take()
    got = [r for r in _run(smtp_server, 9).values()] + received
    [mail] = [r for r in got if r.rcpt_tos == ["d1@example.com"]]
    text = mail.text()
    assert "Merci pour votre règlement de la facture X-1, bien reçu." in text
    assert "Y-1" in text and mail.message["X-Relance-Kind"] == "reminder"
    message = _message(mail)
    assert message.amount == 12000 and f"Total dû\u00a0: {format_money(12000, 'EUR', 'fr')}" in text
    kinds = db.session.execute(db.select(Reminder.step_code).where(Reminder.message_id == message.id)).scalars().all()
    assert sorted(kinds) == ["reminder_1", "thank_you"]
    assert db.session.scalar(db.select(db.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.debtor_id == message.debtor_id, OutboxMessage.created_at >= message.created_at)) == 1


def test_legal_basis_follows_the_debtor(app, creditor, smtp_server):
    _ledger(creditor.id, [("BIZ", "business", "fr", [("B-1", DUE, "1000.00")]),
                          ("PUB", "public", "fr", [("P-1", DUE, "1000.00")]),
                          ("CON", "consumer", "fr", [("C-1", DUE, "1000.00")]),
                          ("PUBEN", "public", "en", [("E-1", DUE, "1000.00")])])
    firm = _run(smtp_server, 1, 8, 15)
    biz, pub, con, pub_en = (firm[f"{r}@example.com"].text() for r in ("biz", "pub", "con", "puben"))
    assert "articles L441-10 et D441-5 du Code de commerce" in biz and "majoré de 10 points" in biz
    assert "L2192-13 du Code de la commande publique" in pub and "majoré de 8 points" in pub
    assert "intérêts moratoires" in pub and "L441-10" not in pub
    assert "L2192-13 of the French Public Procurement Code" in pub_en and "plus 8 points" in pub_en
    assert not re.search(r"L441-10|D441-5|L2192-13|indemnité|pénalités", con)
    rates = demands.reference_rates()
    amounts = {}
    for number, kind in (("B-1", "business"), ("P-1", "public")):
        item = db.session.scalar(db.select(Invoice).where(Invoice.number == f"{number}+F1"))
        expected = late_charges(100000, "EUR", DUE, d(15), debtor_kind=kind, reference_rates=rates)
        assert item.amount == expected.interest + 4000
        amounts[kind] = expected.interest
    assert amounts["public"] < amounts["business"]
    assert db.session.scalar(db.select(Invoice).where(Invoice.number == "C-1+F1")) is None
    assert _message(firm["con@example.com"]).amount == 100000


def test_banner_never_shows_another_debtors_message(app, creditor, smtp_server, client):
    from support import portal_login
    _ledger(creditor.id, [("D1", "business", "fr", [("A-1", DUE, "1000.00")]),
                          ("D2", "business", "fr", [("B-1", DUE, "500.00")])])
    received = _run(smtp_server, 1)
    message = _message(received["d1@example.com"])
    other = ledger.get_debtor(creditor.id, "D2")
    assert message_banner.for_session(other.id, message.id, [], "fr") is None
    assert message_banner.for_session(message.debtor_id, message.id, [], "fr").amount == message.amount
    portal_login(client, app, "D2", creditor.id, message_id=message.id)  # a link naming D1's message
    page = client.get("/portal/").get_data(as_text=True)
    assert "banner-amount" not in page and "Notre relance" not in page


@needs_zbar
def test_formal_notice_letter_states_the_amount_of_its_email_qr_and_banner(app, creditor, smtp_server, client,
                                                                             tmp_path):
    """The formal notice, approved to go by e-mail: the letter attached (its text and its QR code,
    read back from the rendered page), the e-mail, its QR code and the portal banner state one amount."""
    _ledger(creditor.id, [("D1", "business", "fr", [("A-1", DUE, "1000.00"), ("A-2", d(-3), "234.56")])])
    _run(smtp_server, 1, 8, 15, 30)
    owner = db.session.get(Creditor, creditor.id)
    [(debtor, _rows)] = reminders.awaiting(owner.id, d(30))
    reminders.approve(owner, debtor.id, d(30), user="owner", delivery="email")
    received = _run(smtp_server, 30)["d1@example.com"]
    message = _message(received)
    assert message.kind == "formal_notice" and message.delivery == "email"
    shown = format_money(message.amount, "EUR", "fr")
    assert shown in received.text()
    assert _qr_payload(received, tmp_path).split("\n")[7] == f"EUR{message.amount // 100}.{message.amount % 100:02d}"

    [pdf] = [p for p in received.message.walk() if p.get_content_type() == "application/pdf"]
    path = tmp_path / "notice.pdf"
    path.write_bytes(pdf.get_content())
    text = " ".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert f"de régler la somme de {' '.join(shown.split())}" in text
    assert "Envoyée par courrier électronique" in text
    subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
                   check=True)
    [page] = list(tmp_path.glob("page*.png"))
    payload = subprocess.run(["zbarimg", "--raw", "-q", str(page)], capture_output=True, text=True,
                             check=True).stdout.strip().split("\n")
    assert payload[7] == f"EUR{message.amount // 100}.{message.amount % 100:02d}"
    assert payload[9] == message.payment_reference

    amount, page_html = _banner_amount(client, received)
    assert " ".join(amount.split()) == " ".join(shown.split())
    assert "Notre mise en demeure du" in page_html
