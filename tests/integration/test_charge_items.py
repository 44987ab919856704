"""Late-payment charges as open items of their own (portal/services/charge_items.py), on SQLite and
PostgreSQL: shown and payable in the portal, the statement and the API with their label, paid
after the principal, settled exactly by what a message asked, waived by the creditor from the back
office, never thanked early, never seen by another debtor. Payments go through the real ledger
(the API's offline payments, ledger.record_payment) and the real planner."""
from __future__ import annotations

import html
import re
from datetime import date

import pytest
from sqlalchemy import select

from dunning_jobs import planner
from portal.domain import ageing
from portal.extensions import db
from portal.models import Creditor, Event, Invoice, Reminder
from portal.services import charge_items, ledger, statements
from support import back_office_login, count, csrf_token_in, portal_login, portal_text

CLAIM_DAY = date(2026, 10, 10)  # a message of that day claimed charges on F-1 (due 1 Oct)
LABEL_FR = "Frais de retard et indemnité — facture F-1"


def claim(creditor_id: int, number: str, amount: int, day: date = CLAIM_DAY) -> Invoice:
    """What the composer does when a message claims charges on an invoice (tests' creation helper)."""
    invoice = ledger.get_invoice(creditor_id, number)
    item = charge_items.claim(creditor_id, invoice.debtor_id, invoice, amount, day)
    db.session.commit()
    return item


def text(page: str) -> str:
    """The page's text, French no-break spaces (in amounts, before colons) read as spaces."""
    return re.sub(r"[\s\u00a0\u202f]+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def state(number: str) -> tuple[str, int, int]:
    db.session.expire_all()
    inv = db.session.scalar(select(Invoice).where(Invoice.number == number))
    return inv.status, inv.amount_paid, inv.balance


@pytest.fixture
def charged(seeded, creditor):
    """D1 (French) owes F-1 1200.00 (due 1 Oct), F-2 300.50 (due 31 Oct) and 40.00 of charges
    claimed on F-1 on 10 Oct: due before F-2, so 'oldest first' alone would pay them before F-2."""
    item = claim(creditor.id, "F-1", 4000)
    assert (item.number, item.kind, item.due_date, item.currency) == ("F-1+F1", "charges", CLAIM_DAY, "EUR")
    return seeded


def test_portal_statement_and_api_show_the_charges_as_a_payable_item(charged, client, app, creditor):
    portal_login(client, app, "D1", creditor.id)
    page = portal_text(client)
    assert LABEL_FR in page
    assert "1 540,50" in text(page)  # total due: 1200.00 + 300.50 + 40.00
    assert "F-1+F1 (PDF)" not in page and "F-1%2BF1.pdf" not in page  # no document
    assert client.get("/portal/invoices/F-1+F1.pdf").status_code == 404
    assert "Frais de retard réclamés" in page  # in the history

    statement = text(client.get("/portal/statement?from=2026-09-01&to=2026-11-30").get_data(as_text=True))
    assert LABEL_FR in statement and "1 540,50" in statement
    with app.test_request_context():
        soa = statements.for_debtor(ledger.get_debtor(creditor.id, "D1").id, "2026-09-01", "2026-11-30")
        pdf_page = text(statements.pdf_html(soa))
    assert f"F-1 {LABEL_FR} 40,00" in pdf_page  # reference, description, debit
    assert client.get("/portal/statement.pdf?from=2026-09-01&to=2026-11-30").data.startswith(b"%PDF")

    debtor = charged.get("/debtors/D1").json
    assert debtor["balance"] == "1540.50"
    assert [i["number"] for i in debtor["open_invoices"]] == ["F-1", "F-1+F1", "F-2"]
    item = charged.get("/invoices/F-1+F1").json
    assert (item["amount"], item["balance"], item["status"], item["due_date"]) == ("40.00", "40.00", "open", "2026-10-10")
    # A creditor's own numbers never take a '+': the API cannot create nor overwrite a charges item.
    r = charged.put("/invoices/F-1+F2", json={"debtor_ref": "D1", "issue_date": "2026-10-01",
                                               "due_date": "2026-10-01", "amount": "1.00", "currency": "EUR"})
    assert r.status_code == 422


def test_another_debtor_never_sees_nor_pays_them(charged, client, app, creditor):
    portal_login(client, app, "D2", creditor.id)
    page = portal_text(client)
    assert "F-1+F1" not in page and "Frais de retard" not in page and "Late-payment" not in page
    assert client.get("/portal/invoices/F-1+F1.pdf").status_code == 404
    r = client.post("/portal/pay", data={"method": "card", "only": "F-1+F1"})
    assert r.status_code in (303, 404) and state("F-1+F1") == ("open", 0, 4000)
    assert "Frais de retard" not in text(client.get("/portal/statement").get_data(as_text=True))


def test_exactly_what_was_asked_settles_invoice_and_charges_with_no_credit(charged):
    r = charged.post("/invoices/F-1/payments", json={"amount": "1240.00", "date": "2026-10-20", "reference": "TR-1"})
    assert r.status_code == 201, r.json
    assert (r.json["allocated"], r.json["unallocated"]) == ("1240.00", "0.00")
    assert state("F-1") == ("paid", 120000, 0) and state("F-1+F1") == ("paid", 4000, 0)
    assert state("F-2") == ("open", 0, 30050)
    # The same transfer again is the same payment.
    again = charged.post("/invoices/F-1/payments", json={"amount": "1240.00", "date": "2026-10-20", "reference": "TR-1"})
    assert again.status_code == 200 and again.json["id"] == r.json["id"]


def test_an_unnamed_payment_goes_to_the_principal_first(charged, creditor):
    d1 = ledger.get_debtor(creditor.id, "D1").id
    ledger.record_payment(creditor.id, d1, provider="offline", reference="BANK-1", amount=130000, currency="EUR",
                          received_on=date(2026, 11, 2), invoice_ids=None, actor="test")
    # F-1 then F-2 (principal, oldest first), the charges last, though due before F-2.
    assert state("F-1") == ("paid", 120000, 0)
    assert state("F-2") == ("partially_paid", 10000, 20050)
    assert state("F-1+F1") == ("open", 0, 4000)
    # The rest of what was asked, unnamed too: everything settled, nothing left over.
    ledger.record_payment(creditor.id, d1, provider="offline", reference="BANK-2", amount=24050, currency="EUR",
                          received_on=date(2026, 11, 3), invoice_ids=None, actor="test")
    assert state("F-2") == ("paid", 30050, 0) and state("F-1+F1") == ("paid", 4000, 0)
    assert ledger.debtor_credit(d1) == {}
    # The payer's own choice stands: a payment naming the charges pays them first.
    item = claim(creditor.id, "F-2", 1000, date(2026, 11, 5))
    f4 = claim(creditor.id, "F-1", 500, date(2026, 11, 5))
    ledger.record_payment(creditor.id, d1, provider="offline", reference="BANK-3", amount=1000, currency="EUR",
                          received_on=date(2026, 11, 6), invoice_ids=[item.id, f4.id], actor="test")
    assert state("F-2+F1") == ("paid", 1000, 0) and state("F-1+F2") == ("open", 0, 500)


def test_the_creditor_waives_charges_from_the_back_office(charged, make_app, app_config, creditor):
    office = back_office_login(make_app(**app_config).test_client(), creditor)
    page = office.get("/app/invoices/F-1").get_data(as_text=True)
    assert "/app/charges/F-1+F1/waive" in page and "Frais de retard" in page
    own = text(office.get("/app/invoices/F-1+F1").get_data(as_text=True))
    assert f"{LABEL_FR} — Relance" in own and "Réclamés sur la facture F-1" in own and "Renoncer à ces frais" in own
    confirm = text(office.get("/app/charges/F-1+F1/waive").get_data(as_text=True))
    assert "Confirmer : renoncer à 40,00" in confirm
    assert state("F-1+F1") == ("open", 0, 4000)  # asking is not doing
    assert "Confirmer : renoncer à 40,00" in text(office.get("/app/charges/F-1/waive").get_data(as_text=True))
    assert "Aucuns frais de retard en attente" in text(office.get("/app/charges/F-2/waive").get_data(as_text=True))

    r = office.post("/app/charges/F-1+F1/waive")
    assert r.status_code == 302 and r.headers["Location"].endswith("/app/invoices/F-1")
    assert state("F-1+F1") == ("cancelled", 0, 0)
    assert charged.get("/debtors/D1").json["balance"] == "1500.50"
    [event] = db.session.scalars(select(Event).where(Event.type == "charges.waived")).all()
    assert (event.actor, event.data["user"], event.data["amount"]) == ("creditor", creditor.email, 4000)
    # Once closed, nothing more to waive; an invoice is not charges; not through the API either.
    again = office.post("/app/charges/F-1+F1/waive", follow_redirects=True)
    assert "Ces frais ne sont plus dus." in again.get_data(as_text=True)
    assert count(Event, Event.type == "charges.waived") == 1
    assert office.post("/app/charges/F-1/waive").status_code == 404
    assert charged.post("/invoices/F-1+F1/waive").status_code in (404, 405)


def test_waiving_partly_paid_charges_waives_the_rest_and_keeps_what_was_paid(charged, make_app, app_config,
                                                                              creditor, client, app):
    r = charged.post("/invoices/F-1+F1/payments", json={"amount": "15.00", "date": "2026-10-20", "reference": "TR-F"})
    assert r.status_code == 201 and r.json["unallocated"] == "0.00"
    office = back_office_login(make_app(**app_config).test_client(), creditor)
    assert office.post("/app/charges/F-1+F1/waive").status_code == 302
    db.session.expire_all()
    item = db.session.scalar(select(Invoice).where(Invoice.number == "F-1+F1"))
    assert (item.status, item.amount, item.amount_paid, item.balance) == ("paid", 1500, 1500, 0)
    event = db.session.scalar(select(Event).where(Event.type == "charges.waived"))
    assert (event.data["amount"], event.data["original_amount"]) == (2500, 4000)
    assert charged.get("/debtors/D1").json["balance"] == "1500.50"
    # The statement still balances: 15.00 charged, 15.00 paid, no credit.
    portal_login(client, app, "D1", creditor.id)
    statement = text(client.get("/portal/statement?from=2026-09-01&to=2026-11-30").get_data(as_text=True))
    assert "1 500,50" in statement and LABEL_FR in statement


def thank_yous() -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(select(Invoice.number).join(Reminder, Reminder.invoice_id == Invoice.id)
                                     .where(Reminder.step_code == "thank_you")))


def plan(creditor, day):
    planner.plan_day(db.session.get(Creditor, creditor.id), day)


@pytest.mark.parametrize("settle", ["pay", "waive"])
def test_no_thank_you_while_the_charges_are_open(charged, creditor, make_app, app_config, settle):
    r = charged.post("/invoices/F-1/payments", json={"amount": "1200.00", "date": "2026-10-20", "reference": "TR-2"})
    assert r.status_code == 201 and r.json["unallocated"] == "0.00"
    plan(creditor, date(2026, 10, 21))
    assert thank_yous() == []  # F-1 is paid, its charges are not
    if settle == "pay":
        r = charged.post("/invoices/F-1+F1/payments", json={"amount": "40.00", "date": "2026-10-22", "reference": "TR-3"})
        assert r.status_code == 201
    else:
        office = back_office_login(make_app(**app_config).test_client(), creditor)
        assert office.post("/app/charges/F-1+F1/waive").status_code == 302
    plan(creditor, date(2026, 10, 22))
    assert thank_yous() == ["F-1"]  # once, for the invoice; never for the charges
    plan(creditor, date(2026, 10, 23))
    assert thank_yous() == ["F-1"] and count(Reminder, Reminder.step_code == "thank_you") == 1


def test_reports_count_charges_as_owed_not_as_sales(charged):
    summary = charged.get("/reports/summary?as_of=2026-11-30").json
    # Owed: F-1 1200.00 + F-2 300.50 + F-3 99.99 + F-4 5000.00 + the charges 40.00.
    assert summary["outstanding"] == "6640.49"
    # The charges age from their own due date (10 Oct: 51 days late), beside F-1 (60 days).
    assert summary["ageing"] == {"not_due": "5000.00", "1_30": "400.49", "31_60": "1240.00", "61_90": "0.00",
                                 "over_90": "0.00"}
    # Not sales: DSO walks back through the invoices issued only (the 40.00 of 10 Oct left out).
    issued = {date(2026, 9, 1): 120000, date(2026, 10, 1): 30050, date(2026, 10, 15): 9999, date(2026, 11, 1): 500000}
    periods = [ageing.Period((end - start).days, sum(a for d, a in issued.items() if start < d <= end))
               for start, end in ageing.countback_periods(date(2026, 11, 30))]
    assert summary["dso_days"] == float(ageing.dso_countback(664049, periods))


def test_waiving_needs_the_form_s_csrf_token(charged, make_app, creditor):
    office = make_app(WTF_CSRF_ENABLED=True).test_client()
    signed_in = office.post("/app/login", data={"email": creditor.email, "password": creditor.password,
                                                 "csrf_token": csrf_token_in(office.get("/app/login").data)})
    assert signed_in.status_code == 302
    assert office.post("/app/charges/F-1+F1/waive").status_code == 400
    assert office.post("/app/charges/F-1+F1/waive", data={"csrf_token": "forged"}).status_code == 400
    assert state("F-1+F1") == ("open", 0, 4000)
    confirm = office.get("/app/charges/F-1+F1/waive")
    assert office.post("/app/charges/F-1+F1/waive", data={"csrf_token": csrf_token_in(confirm.data)}).status_code == 302
    assert state("F-1+F1") == ("cancelled", 0, 0)
