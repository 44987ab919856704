"""Statement of account: the portal page and PDF, the back-office PDF, on SQLite and PostgreSQL.

The PDF's text is not extracted (no PDF reader among the dependencies): the PDF is checked to be
one, and the HTML it is made from (`statements.pdf_html`, the same function the download uses)
is checked for the figures.
"""
from __future__ import annotations

import html
import re
from datetime import date

import pytest
from sqlalchemy import select

from portal.domain.calendar import today_for
from portal.extensions import db
from portal.models import Creditor, Event, Payment
from portal.services import ledger, statements
from support import Api, back_office_login, portal_login

PERIOD = {"from": "2026-10-01", "to": "2026-11-30"}
B_MARKERS = ["Beta Ltd", "F-3", "F-4", "D2", "99.99", "5,000.00", "BETA-PAY"]


def text(data: bytes | str) -> str:
    if isinstance(data, bytes):
        data = data.decode()
    data = re.sub(r"<input[^>]*csrf_token[^>]*>|integrity=\"[^\"]*\"", "", data)
    # ASCII white space only: the no-break spaces inside French amounts are part of what is checked.
    return re.sub(r"[ \t\r\n\f]+", " ", html.unescape(re.sub(r"<[^>]+>", " ", data)))


@pytest.fixture
def ledger_d1(seeded, creditor):
    """D1 in English, with payments before and inside PERIOD, one after it, and one for D2.

    By hand, for 1 Oct - 30 Nov 2026:
      before: F-1 +1,200.00 (1 Sep), P-SEPT -200.00 (15 Sep)             -> opening  1,000.00
      inside: F-2 +300.50 (1 Oct), P-OCT -100.00 (20 Oct)                -> closing  1,200.50
      after:  P-DEC, if any, is left out.
      ageing on 30 Nov: F-1 900.00 due 1 Oct (60 days late: 31-60), F-2 300.50 due 31 Oct (30 days: 1-30).
    """
    seeded.put("/debtors/D1", json={"name": "Alpha SARL", "email": "alpha@example.com", "language": "en"})
    for number, amount, day, ref in [("F-1", "200.00", "2026-09-15", "P-SEPT"),
                                     ("F-1", "100.00", "2026-10-20", "P-OCT"),
                                     ("F-4", "1234.56", "2026-10-10", "BETA-PAY")]:
        r = seeded.post(f"/invoices/{number}/payments", json={"amount": amount, "date": day, "reference": ref})
        assert r.status_code == 201, r.json
    return seeded


def d1_id(creditor):
    return ledger.get_debtor(creditor.id, "D1").id


def assert_hand_computed(page: str, pdf: bool = False):
    assert "Opening balance" in page and "€1,000.00" in page
    if pdf:  # reference and description in columns of their own
        assert "F-2 Invoice €300.50" in page and "P-OCT Payment €100.00" in page
    else:
        assert "Invoice F-2" in page and "€300.50" in page and "Payment P-OCT" in page and "€100.00" in page
    assert "€1,200.50" in page  # closing balance and ageing total
    assert "€900.00" in page  # 31-60 days
    assert "P-SEPT" not in page and "Invoice F-1" not in page  # before the period: in the opening balance
    for marker in B_MARKERS:
        assert marker not in page, marker


# --- the service -------------------------------------------------------------------------------

def test_service_figures(app, ledger_d1, creditor):
    soa = statements.for_debtor(d1_id(creditor), PERIOD["from"], PERIOD["to"])
    assert soa.error is None and (soa.start, soa.end) == (date(2026, 10, 1), date(2026, 11, 30))
    [(currency, st)] = soa.statements
    assert currency == "EUR"
    assert st.opening == 100000 and st.closing == 120050
    assert [(r.kind, r.label, r.debit, r.credit, r.balance) for r in st.rows] == [
        ("invoice", "F-2", 30050, 0, 130050), ("payment", "P-OCT", 0, 10000, 120050)]
    assert st.ageing == {"not_due": 0, "1_30": 30050, "31_60": 90000, "61_90": 0, "over_90": 0}
    assert st.unallocated == 0
    assert soa.filename == "statement-D1-2026-11-30.pdf"


def test_refund_is_a_debit_dated_when_it_happened(app, ledger_d1, creditor):
    payment = db.session.scalar(select(Payment).where(Payment.reference == "P-OCT").with_for_update())
    ledger.reverse_payment(payment, 4000, kind="refund", reference="re_test_1")
    db.session.commit()
    today = today_for(db.session.get(Creditor, creditor.id))
    soa = statements.for_debtor(d1_id(creditor), PERIOD["from"], today.isoformat())
    [(_, st)] = soa.statements
    refund = [r for r in st.rows if r.kind == "refund"]
    assert [(r.day, r.label, r.debit) for r in refund] == [(today, "P-OCT", 4000)]
    assert st.closing == 120050 + 4000
    assert st.aged_total == st.closing  # F-1 reopened by 40.00
    # Before the refund's day the statement does not show it.
    before = statements.for_debtor(d1_id(creditor), PERIOD["from"], PERIOD["to"]).statements[0][1]
    assert before.closing == 120050 and not [r for r in before.rows if r.kind == "refund"]


def test_overpayment_shows_as_unallocated(app, ledger_d1, creditor):
    r = ledger_d1.post("/invoices/F-2/payments", json={"amount": "350.50", "date": "2026-11-02", "reference": "OVER"})
    assert r.status_code == 201, r.json
    [(_, st)] = statements.for_debtor(d1_id(creditor), PERIOD["from"], PERIOD["to"]).statements
    assert st.closing == 120050 - 35050
    assert st.ageing["1_30"] == 0 and st.unallocated == 5000 and st.aged_total - st.unallocated == st.closing


def test_default_period(app, ledger_d1, creditor):
    soa = statements.for_debtor(d1_id(creditor))
    today = today_for(db.session.get(Creditor, creditor.id))
    assert soa.end == today
    three_months = date(today.year - (today.month <= 3), (today.month - 4) % 12 + 1, 1)
    # Earlier than three months back only to show an open invoice (or a payment on one) in full.
    assert soa.start <= three_months
    assert soa.start == min(three_months, date(2026, 9, 1))
    # D2 paid part of F-3 in March: F-3 is still open, so its payment is on the default statement.
    r = ledger_d1.post("/invoices/F-3/payments", json={"amount": "50.00", "date": "2026-03-03", "reference": "OLD"})
    assert r.status_code == 201, r.json
    d2 = statements.for_debtor(ledger.get_debtor(creditor.id, "D2").id)
    assert d2.start == min(three_months, date(2026, 3, 3))
    assert "OLD" in [r.label for r in d2.statements[0][1].rows]


# --- the portal --------------------------------------------------------------------------------

def test_portal_page_and_pdf(client, app, ledger_d1, creditor):
    portal_login(client, app, "D1", creditor.id)
    home = client.get("/portal/").get_data(as_text=True)
    assert 'href="/portal/statement"' in home

    r = client.get("/portal/statement", query_string=PERIOD)
    assert r.status_code == 200
    page = text(r.data)
    assert_hand_computed(page)
    assert "Download the statement (PDF)" in page
    body = r.get_data(as_text=True)
    assert 'href="/portal/statement.pdf?from=2026-10-01&amp;to=2026-11-30"' in body
    assert 'name="from" value="2026-10-01"' in body

    r = client.get("/portal/statement.pdf", query_string=PERIOD)
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert r.data.startswith(b"%PDF-")
    assert r.headers["Content-Disposition"] == 'attachment; filename="statement-D1-2026-11-30.pdf"'
    assert r.headers["Cache-Control"] == "no-store"
    event = db.session.scalars(select(Event).where(Event.type == "statement.downloaded")).one()
    assert (event.actor, event.debtor_id, event.data) == ("debtor", d1_id(creditor),
                                                          {"from": "2026-10-01", "to": "2026-11-30"})


def test_pdf_content(app, ledger_d1, creditor):
    c = db.session.get(Creditor, creditor.id)
    c.legal_name, c.address, c.vat_number, c.registration_number, c.bic = (
        "Atelier Test SAS", "1 rue de la Paix\n75002 Paris", "FR12345678901", "123456789", "BNPAFRPP")
    db.session.commit()
    soa = statements.for_debtor(d1_id(creditor), PERIOD["from"], PERIOD["to"])
    page = text(statements.pdf_html(soa))
    assert_hand_computed(page, pdf=True)
    for expected in ("Atelier Test SAS", "1 rue de la Paix", "FR12345678901", "123456789", "Alpha SARL", "D1",
                     "Oct 1, 2026", "Nov 30, 2026", "Reference", "Description", "Debit", "Credit", "Balance",
                     "Closing balance", "IBAN FR76 3000 6000 0112 3456 7890 189", "BIC BNPAFRPP"):
        assert expected in page, expected
    assert statements.render_pdf(soa).startswith(b"%PDF-")


def test_other_debtor_never_appears(client, app, ledger_d1, creditor):
    portal_login(client, app, "D2", creditor.id)
    page = text(client.get("/portal/statement", query_string={"from": "2026-01-01", "to": "2026-11-30"}).data)
    assert "F-3" in page and "F-4" in page and "BETA-PAY" in page
    for marker in ("Alpha", "F-1", "F-2", "P-SEPT", "P-OCT", "1,200.00", "300.50"):
        assert marker not in page, marker
    soa = statements.for_debtor(ledger.get_debtor(creditor.id, "D2").id, "2026-01-01", "2026-11-30")
    pdf_page = text(statements.pdf_html(soa))
    for marker in ("Alpha", "F-1", "F-2", "P-SEPT", "P-OCT"):
        assert marker not in pdf_page, marker


BAD = [({"from": "2026-13-01"}, "YYYY-MM-DD"), ({"from": "yesterday"}, "YYYY-MM-DD"),
       ({"to": "2026-02-30"}, "YYYY-MM-DD"), ({"from": "20261001"}, "YYYY-MM-DD"),
       ({"from": "2026-11-30", "to": "2026-10-01"}, "on or before"),
       ({"from": "2020-01-01", "to": "2026-11-30"}, "5 years at most"),
       ({"from": "2026-10-01", "to": "2999-01-01"}, "later than today"),
       ({"from": "x" * 5000}, "YYYY-MM-DD"), ({"from": "2026-10-01\x00"}, "“from”")]  # the input check: a 422 naming the field


@pytest.mark.parametrize("args,message", BAD)
def test_bad_period_is_refused(client, app, ledger_d1, creditor, args, message):
    portal_login(client, app, "D1", creditor.id)
    r = client.get("/portal/statement", query_string=args)
    assert r.status_code == 422
    page = text(r.data)
    assert message in page and "Opening balance" not in page
    assert "x" * 100 not in page  # what was typed is echoed back cut short
    r = client.get("/portal/statement.pdf", query_string=args)
    assert r.status_code == 422 and not r.data.startswith(b"%PDF") and message in text(r.data)
    assert db.session.scalar(select(Event).where(Event.type == "statement.downloaded")) is None


def test_empty_fields_mean_the_default_period(client, app, ledger_d1, creditor):
    portal_login(client, app, "D1", creditor.id)
    r = client.get("/portal/statement?from=&to=")
    assert r.status_code == 200 and "Opening balance" in text(r.data)


def test_portal_needs_a_session(client, ledger_d1):
    assert client.get("/portal/statement.pdf").status_code == 401


# --- the back office ---------------------------------------------------------------------------

def test_back_office_pdf(client, app, ledger_d1, creditor):
    assert client.get("/app/debtors/D1/statement.pdf").status_code == 302  # to the login page
    back_office_login(client, creditor)
    page = client.get("/app/debtors/D1").get_data(as_text=True)
    assert 'href="/app/debtors/D1/statement.pdf"' in page
    r = client.get("/app/debtors/D1/statement.pdf", query_string=PERIOD)
    assert r.status_code == 200 and r.data.startswith(b"%PDF-")
    assert r.headers["Content-Disposition"] == 'attachment; filename="statement-D1-2026-11-30.pdf"'
    event = db.session.scalars(select(Event).where(Event.type == "statement.downloaded")).one()
    assert event.actor == "creditor" and event.data["user"] == creditor.email
    r = client.get("/app/debtors/D1/statement.pdf", query_string={"from": "2026-11-30", "to": "2026-10-01"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/app/debtors/D1")
    assert "antérieur ou égal à sa fin" in text(client.get("/app/debtors/D1").data)  # the creditor reads French


def test_back_office_pdf_is_in_the_debtors_language(app, ledger_d1, creditor):
    # The creditor works in French; an English debtor's statement is in English, a French one's in French.
    soa = statements.for_debtor(d1_id(creditor), PERIOD["from"], PERIOD["to"])
    assert "Closing balance" in text(statements.pdf_html(soa))
    soa.debtor.language = "fr"
    page = text(statements.pdf_html(soa))
    assert "Solde final" in page and "1\u202f200,50\u00a0€" in page and "Closing balance" not in page


def test_back_office_scoped_to_the_creditor(client, app, ledger_d1, creditor, new_creditor):
    other = new_creditor("Other Co")
    api = Api(app.test_client(), other)
    assert api.put("/debtors/X9", json={"name": "Xeno", "email": "x@x.test", "language": "en"}).status_code == 201
    back_office_login(client, creditor)
    assert client.get("/app/debtors/X9/statement.pdf").status_code == 404
    other_client = back_office_login(app.test_client(), other)
    r = other_client.get("/app/debtors/D1/statement.pdf")
    assert r.status_code == 404 and not r.data.startswith(b"%PDF")
    assert db.session.scalar(select(Event).where(Event.type == "statement.downloaded")) is None
