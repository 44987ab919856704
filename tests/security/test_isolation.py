"""A debtor session reaches that debtor's rows only (DESIGN: invariants), whatever the URL says."""
import base64
import re

import pytest

from portal.extensions import db
from portal.models import Document, Event
from portal.services import account, ledger
from support import Api, portal_login

A_PDF = b"%PDF-1.4\n% ALPHA-OWN-DOCUMENT\n%%EOF\n"
B_PDF = b"%PDF-1.4\n% BETA-SECRET-DOCUMENT\n%%EOF\n"


def pdf(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def ledger_ab(seeded):
    """The seeded ledger with a recognisable PDF on each debtor's invoice, and a payment on B."""
    for number, ref, issue, due, amount, content in [("F-1", "D1", "2026-09-01", "2026-10-01", "1200.00", A_PDF),
                                                     ("F-3", "D2", "2026-10-15", "2026-11-14", "99.99", B_PDF)]:
        r = seeded.put(f"/invoices/{number}", json={"debtor_ref": ref, "issue_date": issue, "due_date": due,
                                                    "amount": amount, "currency": "EUR", "pdf_base64": pdf(content)})
        assert r.status_code == 200, r.json
    r = seeded.post("/invoices/F-4/payments", json={"amount": "1234.56", "date": "2026-01-02",
                                                    "reference": "BETA-PAYMENT-REF"})
    assert r.status_code == 201, r.json
    return seeded


B_MARKERS = [b"Beta Ltd", b"F-3", b"F-4", b"D2", b"beta@example.com", b"BETA-PAYMENT-REF", b"99,99", b"99.99",
             b"5\xe2\x80\xaf000", b"1\xe2\x80\xaf234,56", b"BETA-SECRET"]


def page(data: bytes) -> bytes:
    """The page without its CSRF token and subresource hashes, random text that could spell "D2"."""
    return re.sub(rb'<input[^>]*csrf_token[^>]*>|integrity="[^"]*"', b"", data)


def assert_no_b(data: bytes):
    data = page(data)
    for marker in B_MARKERS:
        assert marker not in data, marker


def test_own_pdf_is_served(client, app, ledger_ab, creditor):
    portal_login(client, app, "D1", creditor.id)
    r = client.get("/portal/invoices/F-1.pdf")
    assert r.status_code == 200
    assert r.mimetype == "application/pdf"
    assert r.data == A_PDF


PROBES = [
    "/portal/invoices/F-3.pdf",            # B's invoice by number
    "/portal/invoices/F-4.pdf",            # B's invoice, generated on demand if it were reachable
    "/portal/invoices/%46-3.pdf",          # the same number, URL-encoded
    "/portal/invoices/f-3.pdf",            # case games
    "/portal/invoices/F-3%20.pdf",
    "/portal/invoices/F-3%00.pdf",
    "/portal/invoices/F-1/../F-3.pdf",     # path tricks
    "/portal/invoices/F-1%2f..%2fF-3.pdf",
    "/portal/invoices/..%2fF-3.pdf",
    "/portal/invoices/%2e%2e/F-3.pdf",
    "/portal/invoices/../invoices/F-3.pdf",
    "/portal/invoices/F-3.pdf.pdf",
    "/portal/invoices/F-3.pdf%3f.pdf",
    "/portal/invoices/F-5.pdf", "/portal/invoices/F-0.pdf", "/portal/invoices/1.pdf",  # guesses
    "/portal/invoices/3.pdf", "/portal/invoices/%25.pdf", "/portal/invoices/*.pdf",
    "/portal/invoices/F-%25.pdf", "/portal/invoices/F-_.pdf",  # SQL wildcards are not wildcards
    "/portal/invoices/F-3'%20OR%20'1'='1.pdf",
]


def test_other_debtors_pdf_unreachable(client, app, ledger_ab, creditor):
    portal_login(client, app, "D1", creditor.id)
    for path in PROBES:
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert not r.data.startswith(b"%PDF"), path
        assert_no_b(r.data)
    assert client.get("/portal/").status_code == 200  # the session survives bad requests


def test_other_debtors_pdf_not_generated_nor_logged(client, app, ledger_ab, creditor):
    portal_login(client, app, "D1", creditor.id)
    assert client.get("/portal/invoices/F-4.pdf").status_code == 404
    db.session.expire_all()
    # No document was rendered for B's invoice, and no download was logged against it.
    docs = {d.filename for d in db.session.query(Document).all()}
    assert "F-4.pdf" not in docs
    assert db.session.query(Event).filter(Event.type == "document.downloaded").count() == 0


def test_home_and_statement_show_only_own_rows(client, app, ledger_ab, creditor):
    # B opens the portal too (so there are B events in the log) before A looks.
    portal_login(app.test_client(), app, "D2", creditor.id)
    portal_login(client, app, "D1", creditor.id)
    home = client.get("/portal/")
    assert home.status_code == 200
    assert b"F-1" in home.data and b"F-2" in home.data and b"Alpha SARL" in home.data
    assert_no_b(home.data)
    statement = client.get("/portal/statement")
    assert statement.status_code == 200
    assert b"F-1" in statement.data and b"F-2" in statement.data
    assert_no_b(statement.data)
    # A's history lists exactly A's own events, though B has more in the log.
    in_history = Event.type.in_(account.HISTORY_TYPES)
    a_id = ledger.get_debtor(creditor.id, "D1").id
    own = db.session.query(Event).filter(in_history, Event.debtor_id == a_id).count()
    others = db.session.query(Event).filter(in_history, Event.debtor_id != a_id).count()
    assert 0 < own < 30 and others > 0
    assert len(re.findall(rb"<li[^>]*>\s*<time", home.data)) == own


def test_b_sees_own_rows_not_a(client, app, ledger_ab, creditor):
    portal_login(client, app, "D2", creditor.id)
    home = page(client.get("/portal/").data)
    assert b"F-3" in home and b"F-4" in home
    assert b"F-1" not in home and b"F-2" not in home and b"Alpha SARL" not in home
    statement = page(client.get("/portal/statement").data)
    assert b"BETA-PAYMENT-REF" in statement  # B's own payment is on B's statement
    assert b"F-1" not in statement
    assert client.get("/portal/invoices/F-3.pdf").data == B_PDF
    r = client.get("/portal/invoices/F-1.pdf")
    assert r.status_code == 404 and b"ALPHA" not in r.data


def test_session_signed_elsewhere_is_not_accepted(client, app, make_app, ledger_ab, creditor):
    # A portal session minted by an app with another SECRET_KEY (same database) opens nothing here.
    other = make_app(SECRET_KEY="other")
    foreign = other.test_client()
    portal_login(foreign, other, "D2", creditor.id)
    assert foreign.get("/portal/invoices/F-3.pdf").data == B_PDF
    cookie = foreign.get_cookie("session")
    client.set_cookie("session", cookie.value)
    r = client.get("/portal/invoices/F-3.pdf")
    assert r.status_code == 401
    assert r.data != B_PDF and not r.data.startswith(b"%PDF")


def test_two_creditors_same_refs_and_numbers(client, app, new_creditor, ledger_ab, creditor):
    """Creditor 2 has a debtor D1 and an invoice F-1 too; creditor 1's D1 sees only its own."""
    c2 = new_creditor("Second Creditor Co")
    api2 = Api(app.test_client(), c2)
    assert api2.put("/debtors/D1", json={"name": "Other Alpha GmbH", "email": "x@other.test",
                                         "language": "fr"}).status_code == 201
    r = api2.put("/invoices/F-1", json={"debtor_ref": "D1", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                                        "amount": "777.77", "currency": "EUR",
                                        "pdf_base64": pdf(b"%PDF-1.4\n% SECOND-CREDITOR\n%%EOF\n")})
    assert r.status_code == 201, r.json
    assert api2.put("/invoices/F-9", json={"debtor_ref": "D1", "issue_date": "2026-09-01",
                                           "due_date": "2026-10-01", "amount": "888.88",
                                           "currency": "EUR"}).status_code == 201

    portal_login(client, app, "D1", creditor.id)
    home = page(client.get("/portal/").data)
    assert b"Alpha SARL" in home and b"Atelier Test" in home
    # The amounts as a page shows them: a bare b"777" also matched random CSRF tokens (a flaky test).
    for marker in (b"Other Alpha", b"Second Creditor", b"777,77", b"777.77", b"888,88", b"888.88", b"F-9"):
        assert marker not in home, marker
    statement = page(client.get("/portal/statement").data)
    assert b"777,77" not in statement and b"777.77" not in statement and b"F-9" not in statement
    assert client.get("/portal/invoices/F-1.pdf").data == A_PDF
    assert client.get("/portal/invoices/F-9.pdf").status_code == 404

    # And the other way round.
    other = app.test_client()
    portal_login(other, app, "D1", c2.id)
    home2 = page(other.get("/portal/").data)
    assert b"Other Alpha GmbH" in home2 and b"F-9" in home2
    assert b"Alpha SARL" not in home2 and b"Atelier Test" not in home2 and b"F-2" not in home2
    assert b"SECOND-CREDITOR" in other.get("/portal/invoices/F-1.pdf").data
    assert other.get("/portal/invoices/F-2.pdf").status_code == 404
