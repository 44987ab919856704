"""Reminders of an invoice with an early-payment discount (CONTRACT §10): a courtesy notice sent
while the discount is available states the discounted amount and the last day, in French and in
English, and asks that amount in its text, its HTML and its EPC QR code (read back with
zbarimg); a reminder after the last day asks the whole balance and says nothing of it. A real
dunning day against the aiosmtpd server. SQLite and PostgreSQL."""
from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest

from dunning_jobs import day as dunning_day
from portal.extensions import db
from portal.models import Creditor, OutboxMessage
from portal.services import ledger
from test_message_figures import _qr_payload

DUE = date(2026, 10, 31)
UNTIL = date(2026, 10, 27)  # the courtesy notice goes out 7 days before the due date, on 24 October


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


def _ledger(creditor_id):
    creditor = db.session.get(Creditor, creditor_id)
    creditor.bic = "BNPAFRPPXXX"
    db.session.commit()
    for ref, lang in (("D1", "fr"), ("D2", "en")):
        ledger.upsert_debtor(creditor, ref, {"name": f"Client {ref}", "email": f"{ref.lower()}@example.com",
                                             "language": lang})
        ledger.upsert_invoice(creditor, f"A-{ref}", {
            "debtor_ref": ref, "issue_date": (DUE - timedelta(days=30)).isoformat(), "due_date": DUE.isoformat(),
            "amount": "1000.50", "currency": "EUR",
            "early_payment_discount": {"percent": "2", "until": UNTIL.isoformat()}})


def _run(smtp_server, day: date) -> dict:
    dunning_day.run(day)
    return {r.rcpt_tos[0]: r for r in smtp_server.handler.take()}


def _message(received) -> OutboxMessage:
    return db.session.scalar(db.select(OutboxMessage).where(
        OutboxMessage.message_id_header == received.message["Message-ID"]))


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (zbar-tools) is not installed")
def test_courtesy_notice_states_the_discounted_amount_and_its_qr_code_asks_it(app, creditor, smtp_server, tmp_path):
    _ledger(creditor.id)
    got = _run(smtp_server, DUE - timedelta(days=7))
    fr, en = got["d1@example.com"], got["d2@example.com"]
    assert _message(fr).amount == _message(en).amount == 98049  # 1000.50 less 2 % (20.01)

    terms = "Escompte pour paiement anticipé\u00a0: 2\u00a0%, soit 980,49\u00a0€ à régler au plus tard le 27 octobre 2026"
    for part in (fr.text(), fr.html()):
        assert terms in part
        assert "1\u202f000,50\u00a0€" in part  # the invoice's balance, before the discount
    assert "Total dû\u00a0: 980,49\u00a0€" in fr.text() and "Montant\u00a0: 980,49\u00a0€" in fr.text()
    assert "−20,01\u00a0€" in fr.html()
    assert "Early-payment discount: 2%, i.e. €980.49 to pay by 27 October 2026 at the latest" in en.text()
    assert "Total due: €980.49" in en.text()

    for received in (fr, en):
        payload = _qr_payload(received, tmp_path).split("\n")
        assert payload[7] == "EUR980.49" and payload[9] == _message(received).payment_reference


def test_a_reminder_after_the_last_day_asks_the_whole_balance(app, creditor, smtp_server):
    _ledger(creditor.id)
    got = _run(smtp_server, DUE + timedelta(days=1))
    fr = got["d1@example.com"]
    assert _message(fr).amount == 100050
    assert "Escompte" not in fr.text() and "Total dû\u00a0: 1\u202f000,50\u00a0€" in fr.text()


def test_a_letter_shows_the_discount_as_a_line_of_its_own(app, creditor):
    """The letter's table adds up to its total: the balance, then the discount and its last day."""
    from portal.models import Debtor, Invoice
    from portal.services import demand as demands, letters
    _ledger(creditor.id)
    creditor_row = db.session.get(Creditor, creditor.id)
    inv = db.session.scalar(db.select(Invoice).where(Invoice.number == "A-D1"))
    debtor = db.session.get(Debtor, inv.debtor_id)
    asked = demands.compute(creditor_row, debtor, [inv], DUE - timedelta(days=7), step=None)
    assert (asked.total, [ln.discount for ln in asked.lines]) == (98049, [2001])
    with app.test_request_context():
        html = letters.letter_html(creditor_row, debtor, "reminder", asked, None, url="http://portal.test/l/x",
                                   day=DUE - timedelta(days=7), delivery="letter")
    assert "Escompte pour paiement anticipé, si réglé au plus tard à cette date" in html
    assert "27 octobre 2026" in html and "−20,01\u00a0€" in html and "980,49\u00a0€" in html


def test_the_thank_you_states_the_discount_granted(app, creditor, smtp_server):
    """Paid 980.49 by its last day, the invoice is settled by the discount (20.01): the thank-you
    lists the invoice and says how much of it the discount settled, in French and in English."""
    _ledger(creditor.id)
    creditor_row = db.session.get(Creditor, creditor.id)
    for ref in ("D1", "D2"):
        ledger.record_offline_payment(creditor_row, f"A-{ref}", {"amount": "980.49", "date": "2026-10-26",
                                                                  "reference": f"VIR-{ref}"})
    got = _run(smtp_server, date(2026, 10, 27))
    fr, en = got["d1@example.com"], got["d2@example.com"]
    assert _message(fr).kind == "thank_you"
    assert "dont escompte pour paiement anticipé 20,01\u00a0€" in fr.text()
    assert "dont escompte pour paiement anticipé 20,01\u00a0€" in fr.html()
    assert "of which early-payment discount €20.01" in en.text()
