"""The banner of the message a visit came from (issue 17): its date, the amount it asked, the
late-payment charges it claimed within that amount, its deadline; in the debtor's language. A real
dunning day against the aiosmtpd server, the link taken from the e-mail, on both engines."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from dunning_jobs import day as dunning_day
from portal.domain.long_dates import long_date
from portal.domain.money import format_money
from portal.extensions import db
from portal.models import Creditor, OutboxMessage, Reminder
from portal.services import ledger, reminders

DUE = date(2026, 10, 31)


def d(n: int) -> date:
    return DUE + timedelta(days=n)


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


def _ledger(creditor_id, ref, lang, invoices):
    creditor = db.session.get(Creditor, creditor_id)
    ledger.upsert_debtor(creditor, ref, {"name": f"Client {ref}", "email": f"{ref.lower()}@example.com",
                                         "language": lang})
    for number, due, amount in invoices:
        ledger.upsert_invoice(creditor, number, {"debtor_ref": ref, "issue_date": (due - timedelta(days=30)).isoformat(),
                                                 "due_date": due.isoformat(), "amount": amount, "currency": "EUR"})
    return creditor


def _run(smtp_server, *offsets):
    got = {}
    for n in offsets:
        dunning_day.run(d(n))
        got = {r.rcpt_tos[0]: r for r in smtp_server.handler.take()}
    return got


def _banner(client, received) -> tuple[OutboxMessage, str, str]:
    message = db.session.scalar(db.select(OutboxMessage).where(
        OutboxMessage.message_id_header == received.message["Message-ID"]))
    link = re.search(r"http://portal\.test(/l/\S+)", received.text()).group(1)
    assert client.get(link).status_code == 303
    page = client.get("/portal/").get_data(as_text=True)
    banner = re.search(r'<section class="card message-banner".*?</section>', page, re.S).group(0)
    text = re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", banner))  # the no-break spaces are kept
    return message, banner, text


def _charges(message) -> tuple[int, int]:
    return db.session.execute(db.select(db.func.sum(Reminder.interest), db.func.sum(Reminder.indemnity))
                              .where(Reminder.message_id == message.id)).one()


def test_the_banner_states_the_charges_its_message_claimed(app, creditor, smtp_server, client):
    _ledger(creditor.id, "D1", "fr", [("A-1", DUE, "1000.00"), ("A-2", d(-3), "234.56")])
    message, banner, text = _banner(client, _run(smtp_server, 1, 8, 15)["d1@example.com"])
    interest, indemnity = _charges(message)
    assert interest > 0 and indemnity == 8000  # 40 EUR for each of the two invoices
    fr = lambda minor: format_money(minor, "EUR", "fr")  # noqa: E731
    assert "Notre relance du 15 novembre 2026" in text
    assert f"Montant demandé {fr(message.amount)}" in text
    assert f"dont factures {fr(message.amount - interest - indemnity)}" in text
    assert f"dont intérêts de retard {fr(interest)}" in text
    assert f"dont indemnité forfaitaire {fr(indemnity)}" in text
    assert "À régler au plus tard" not in text  # a reminder sets no deadline


def test_a_reminder_without_charges_lists_none(app, creditor, smtp_server, client):
    _ledger(creditor.id, "D2", "en", [("B-1", DUE, "500.00")])
    message, banner, text = _banner(client, _run(smtp_server, 1)["d2@example.com"])
    assert _charges(message) == (0, 0)
    assert "Our reminder of 1 November 2026" in text and "Amount asked €500.00" in text
    assert "of which" not in text and "banner-interest" not in banner


def test_a_formal_notice_gives_its_deadline_and_charges_in_english(app, creditor, smtp_server, client):
    creditor_row = _ledger(creditor.id, "D3", "en", [("C-1", DUE, "1000.00")])
    _run(smtp_server, 1, 8, 15, 30)
    debtor = ledger.get_debtor(creditor.id, "D3")
    notice = reminders.approve(creditor_row, debtor.id, d(31), user="owner")
    db.session.commit()
    dunning_day.run(d(31))
    received = {r.rcpt_tos[0]: r for r in smtp_server.handler.take()}["d3@example.com"]
    message, banner, text = _banner(client, received)
    assert message.id == notice.id and message.deadline is not None
    interest, indemnity = _charges(message)
    assert interest > 0 and indemnity == 0  # the indemnity was claimed once, by the firm reminder
    en = lambda minor: format_money(minor, "EUR", "en")  # noqa: E731
    assert f"Our formal notice of {long_date(d(31), 'en')}" in text
    assert f"of which late-payment interest {en(interest)}" in text and "of which fixed indemnity" not in text
    assert f"To be paid by {long_date(message.deadline, 'en')}" in text
