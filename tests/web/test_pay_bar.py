"""The portal home's pay bar without a browser (issue 17): the total of the ticked invoices, the
"Recalculate" path that needs no script, the bank transfer for exactly the ticked items (the
reference of CONTRACT §7, a QR code read back from pixels asking for the total shown), the
early-payment discount shown and totalled as what is due now, the page gzipped when the client
accepts it, and a query count that does not grow with the number of invoices."""
from __future__ import annotations

import gzip
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select, update

from portal.domain.calendar import today_for
from portal.domain.references import debtor_reference, format_reference, invoice_reference
from portal.extensions import db
from portal.models import Creditor, Debtor, Invoice
from qr_codes import needs_tools, read_data_uri
from support import Api, portal_login, response_text

NBSP = "\u00a0"


def add_invoices(api, ref, items, language="en"):
    r = api.put(f"/debtors/{ref}", json={"name": f"Debtor {ref}", "email": f"{ref.lower()}@example.com",
                                         "language": language})
    assert r.status_code in (200, 201), r.json
    for number, amount in items:
        r = api.put(f"/invoices/{number}", json={"debtor_ref": ref, "issue_date": "2026-09-01",
                                                 "due_date": "2026-10-01", "amount": amount, "currency": "EUR"})
        assert r.status_code == 201, r.json


@pytest.fixture
def who(client, new_creditor):
    """D1 (English): A-1 120.00, A-2 80.50, A-3 45.25; D2 (French): B-1 1000.50 with 2 % off."""
    creditor = new_creditor("Atelier Barre", language="en", bic="AGRIFRPP", legal_name="Atelier Barre SAS")
    api = Api(client, creditor)
    add_invoices(api, "D1", [("A-1", "120.00"), ("A-2", "80.50"), ("A-3", "45.25")])
    add_invoices(api, "D2", [("B-1", "1000.50"), ("B-2", "50.00")], language="fr")
    return creditor


def today(app, creditor_id):
    with app.app_context():
        return today_for(db.session.get(Creditor, creditor_id))


def set_discount(app, number, percent, until):
    with app.app_context():
        db.session.execute(update(Invoice).where(Invoice.number == number)
                           .values(discount_percent=Decimal(percent), discount_until=until))
        db.session.commit()
    # Set behind the services' back (no event written, as the API would): the page cache must forget.
    from portal.debtor.views import pages
    pages.clear()


def total_shown(page: str) -> str:
    return re.search(r'<output id="pay-total"[^>]*>([^<]+)</output>', page).group(1)


def ticked(page: str) -> set[str]:
    return set(re.findall(r'<input type="checkbox" name="invoice" value="([^"]+)"[^>]*checked>', page))


def form_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_every_open_invoice_is_ticked_and_totalled_and_transfer_needs_no_provider(who, client, app):
    portal_login(client, app, "D1", who.id)
    page = response_text(client.get("/portal/"))
    assert ticked(page) == {"A-1", "A-2", "A-3"}
    assert total_shown(page) == "€245.75"
    buttons = re.findall(r'<button type="submit" name="method" value="(\w+)"[^>]*>([^<]+)</button>', page)
    # No provider keys in this app: no card, no Direct Debit, but the transfer and the no-script recalculation.
    assert dict(buttons) == {"recalculate": "Recalculate", "transfer": "Pay by bank transfer"}
    assert 'src="/static/paybar.js"' in page and "<script>" not in page


def test_recalculate_without_script_draws_the_total_of_the_ticks(who, client, app):
    portal_login(client, app, "D1", who.id)
    page = response_text(client.get("/portal/"))
    r = client.post("/portal/pay", data={"csrf_token": form_token(page), "method": "recalculate",
                                         "invoice": ["A-1", "A-3"]})
    assert r.status_code == 303 and r.headers["Location"].endswith("/portal/#pay-bar")
    page = response_text(client.get("/portal/"))
    assert ticked(page) == {"A-1", "A-3"} and total_shown(page) == "€165.25"
    # Most ticked (kept in the cookie as the few left out): the same page.
    client.post("/portal/pay", data={"csrf_token": form_token(page), "method": "recalculate",
                                     "invoice": ["A-1", "A-2"]})
    page = response_text(client.get("/portal/"))
    assert ticked(page) == {"A-1", "A-2"} and total_shown(page) == "€200.50"
    # Nothing ticked: nothing to pay, and it stays so on the next visit of the session.
    client.post("/portal/pay", data={"csrf_token": form_token(page), "method": "recalculate"})
    page = response_text(client.get("/portal/"))
    assert ticked(page) == set() and total_shown(page) == "€0.00"
    # Another debtor's invoice number posted is not ticked nor totalled.
    client.post("/portal/pay", data={"csrf_token": form_token(page), "method": "recalculate",
                                     "invoice": ["A-2", "B-1"]})
    page = response_text(client.get("/portal/"))
    assert ticked(page) == {"A-2"} and total_shown(page) == "€80.50" and "B-1" not in page


@needs_tools
def test_bank_transfer_for_the_ticked_invoices_asks_exactly_their_total(who, client, app):
    portal_login(client, app, "D1", who.id)
    page = response_text(client.get("/portal/"))
    r = client.post("/portal/pay", data={"csrf_token": form_token(page), "method": "transfer",
                                         "invoice": ["A-1", "A-2"]})
    assert r.status_code == 303
    assert r.headers["Location"].endswith("/portal/transfer?invoice=A-1&invoice=A-2")
    page = response_text(client.get(r.headers["Location"]))
    with app.app_context():
        d1 = db.session.scalar(select(Debtor.id).where(Debtor.ref == "D1", Debtor.creditor_id == who.id))
        a1 = db.session.scalar(select(Invoice.id).where(Invoice.number == "A-1"))
    assert "Pay €200.50 by bank transfer" in page and "A-3" not in page
    assert f'<span class="mono reference">{format_reference(debtor_reference(d1))}</span>' in page
    code = read_data_uri(re.search(r'<img src="(data:image/svg\+xml;base64,[^"]+)"', page).group(1))
    assert (code.amount, code.reference) == (Decimal("200.50"), debtor_reference(d1))
    # One invoice: its own reference (CONTRACT §7).
    page = response_text(client.get("/portal/transfer?invoice=A-1"))
    assert f'<span class="mono reference">{format_reference(invoice_reference(a1))}</span>' in page
    code = read_data_uri(re.search(r'<img src="(data:image/svg\+xml;base64,[^"]+)"', page).group(1))
    assert (code.amount, code.reference) == (Decimal("120.00"), invoice_reference(a1))
    # Another debtor's invoice asks for nothing.
    page = response_text(client.get("/portal/transfer?invoice=B-1"))
    assert "Tick at least one open invoice" in page and "<img" not in page


@needs_tools
@pytest.mark.parametrize("language", ["fr", "en"])
def test_an_early_payment_discount_shows_and_lowers_what_is_due_now(who, client, app, language):
    last_day = today(app, who.id) + timedelta(days=8)
    set_discount(app, "B-1", "2", last_day)
    set_discount(app, "B-2", "5", today(app, who.id) - timedelta(days=1))  # over: no discount
    with app.app_context():
        db.session.execute(update(Debtor).where(Debtor.ref == "D2").values(language=language))
        db.session.commit()
    portal_login(client, app, "D2", who.id)
    page = response_text(client.get("/portal/"))
    # 2 % of 1000.50 is 20.01: 980.49 due now; B-2's discount is over, its 50.00 stays whole.
    if language == "fr":
        day = re.search(r'<td data-label="Échéance" class="nowrap">([^<]+)</td>', page).group(1)
        assert f"Escompte de 2{NBSP}% si payé au plus tard le " in page
        assert f"{NBSP}: 980,49{NBSP}€</span>" in page
        assert total_shown(page) == f"1\u202f030,49{NBSP}€"
        assert day and "Escompte de 5" not in page
    else:
        assert "Early-payment discount of 2% if paid by " in page and ": €980.49</span>" in page
        assert total_shown(page) == "€1,030.49" and "discount of 5" not in page
    assert ["B-1", "B-2"] == sorted(ticked(page))
    assert re.search(r'value="B-1" data-due="98049"', page) and re.search(r'value="B-2" data-due="5000"', page)
    page = response_text(client.get("/portal/transfer?invoice=B-1"))
    code = read_data_uri(re.search(r'<img src="(data:image/svg\+xml;base64,[^"]+)"', page).group(1))
    assert code.amount == Decimal("980.49")
    # The last day passed: the whole balance again.
    set_discount(app, "B-1", "2", today(app, who.id) - timedelta(days=1))
    page = response_text(client.get("/portal/"))
    assert re.search(r'value="B-1" data-due="100050"', page) and "980" not in page


def test_the_page_and_static_files_are_gzipped_when_the_client_accepts_it(who, client, app):
    portal_login(client, app, "D1", who.id)
    plain = client.get("/portal/")
    assert "Content-Encoding" not in plain.headers
    for _ in range(2):  # rendered, then from the page cache
        packed = client.get("/portal/", headers={"Accept-Encoding": "gzip, deflate, br"})
        assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
        assert gzip.decompress(packed.data) == plain.data
    for path in ("/static/relance.css", "/static/paybar.js"):
        raw = client.get(path)
        packed = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert packed.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(packed.data) == raw.data and len(packed.data) < len(raw.data)
        raw.close()
        packed.close()


def count_page_queries(client, app) -> int:
    from portal.debtor.views import pages
    pages.clear()
    statements = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        r = client.get("/portal/")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert r.status_code == 200
    return len(statements)


def test_queries_do_not_grow_with_the_number_of_invoices(client, app, new_creditor):
    creditor = new_creditor("Atelier Compte", language="en")
    api = Api(client, creditor)
    add_invoices(api, "ONE", [("O-1", "10.00")])
    add_invoices(api, "MANY", [(f"M-{i}", f"{10 + i}.25") for i in range(200)])
    set_discount(app, "M-7", "3", today(app, creditor.id) + timedelta(days=3))
    counts = {}
    for ref in ("ONE", "MANY"):
        portal_login(client, app, ref, creditor.id)
        client.get("/portal/")  # warm: templates compiled
        counts[ref] = count_page_queries(client, app)
    page = response_text(client.get("/portal/"))
    assert len(ticked(page)) == 200 and "M-199" in page
    assert counts["ONE"] == counts["MANY"] <= 10, counts
