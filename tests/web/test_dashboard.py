"""The creditor's dashboard: KPIs worked out by hand, the aged balance (chart, table, CSV), top
debtors, portal adoption, the live feed over htmx polling, and the notifications page."""
import csv
import io
import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import CreditorUser, Debtor, Event, PaymentAttempt
from support import Api, assert_clean, back_office_login, portal_login, response_text

AS_OF = "2026-03-31"


def by_id(page: str, element_id: str) -> str:
    """The text of the element with this id (tags stripped, whitespace collapsed)."""
    m = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</(?:strong|dd|tr)>', page, re.S)
    assert m, element_id
    return " ".join(re.sub(r"<[^>]+>", " ", m.group(1)).split())


@pytest.fixture
def en_creditor(new_creditor):
    return new_creditor("Kilo & Lima Supplies", language="en")


@pytest.fixture
def ledger(make_app, en_creditor):
    """Seven invoices of two debtors, as at 2026-03-31 (March has 31 days):

    | inv | debtor | issued     | due        | amount | paid                | at as_of                |
    |-----|--------|------------|------------|--------|---------------------|-------------------------|
    | A1  | K1     | 2026-03-20 | 2026-04-19 | 200    |                     | not due                 |
    | A2  | K1     | 2026-03-02 | 2026-03-31 | 100    |                     | due today: not due      |
    | A3  | K2     | 2026-02-15 | 2026-03-17 | 300    |                     | 14 days late: 1-30      |
    | A4  | K2     | 2026-01-10 | 2026-02-09 | 400    | 150 on 2026-03-05   | 250, 50 days: 31-60     |
    | A5  | K1     | 2025-12-01 | 2025-12-31 | 500    |                     | 90 days late: 61-90     |
    | A6  | K2     | 2025-11-01 | 2025-12-01 | 600    | 600 on 2026-03-20   | paid                    |
    | A7  | K1     | 2025-10-01 | 2025-10-31 | 700    |                     | 151 days late: over 90  |
    plus a cancelled invoice and one in another currency, both left out.
    """
    api = Api(make_app().test_client(), en_creditor)
    assert api.put("/debtors/K1", json={"name": "Kilo SA", "email": "kilo@example.com", "language": "en"}).status_code == 201
    assert api.put("/debtors/K2", json={"name": "Lima SARL", "email": "lima@example.com", "language": "fr"}).status_code == 201
    for number, ref, issue, due, amount, extra in [
            ("A1", "K1", "2026-03-20", "2026-04-19", "200.00", {}), ("A2", "K1", "2026-03-02", "2026-03-31", "100.00", {}),
            ("A3", "K2", "2026-02-15", "2026-03-17", "300.00", {}), ("A4", "K2", "2026-01-10", "2026-02-09", "400.00", {}),
            ("A5", "K1", "2025-12-01", "2025-12-31", "500.00", {}), ("A6", "K2", "2025-11-01", "2025-12-01", "600.00", {}),
            ("A7", "K1", "2025-10-01", "2025-10-31", "700.00", {}),
            ("X1", "K1", "2026-01-01", "2026-01-31", "999.00", {"cancelled": True}),
            ("X2", "K2", "2026-01-01", "2026-01-31", "888.00", {"currency": "USD"})]:
        r = api.put(f"/invoices/{number}", json={"debtor_ref": ref, "issue_date": issue, "due_date": due,
                                                 "amount": amount, "currency": "EUR", **extra})
        assert r.status_code == 201, r.json
    for number, amount, day, ref in [("A4", "150.00", "2026-03-05", "R4"), ("A6", "600.00", "2026-03-20", "R6")]:
        r = api.post(f"/invoices/{number}/payments", json={"amount": amount, "date": day, "reference": ref})
        assert r.status_code == 201, r.json
    return api


def test_kpis_on_the_dashboard_match_the_hand_computation(client, app, ledger, en_creditor):
    back_office_login(client, en_creditor)
    r = client.get(f"/app/dashboard?as_of={AS_OF}")
    assert r.status_code == 200
    assert_clean(r, "dashboard")
    page = response_text(r)

    # Ageing: not due 200 + 100; 1-30: 300; 31-60: 400 - 150; 61-90: 500; over 90: 700.
    assert by_id(page, "kpi-outstanding") == "€2,050.00"
    assert by_id(page, "kpi-overdue") == "€1,750.00"  # 2050 - 300 not due
    # Shares of 2050: 300 -> 14.6 %, 250 -> 12.2 %, 500 -> 24.4 %, 700 -> 34.1 %.
    assert by_id(page, "ageing-not_due") == "Not due €300.00 14.6 %"
    assert by_id(page, "ageing-1_30") == "1–30 days €300.00 14.6 %"
    assert by_id(page, "ageing-31_60") == "31–60 days €250.00 12.2 %"
    assert by_id(page, "ageing-61_90") == "61–90 days €500.00 24.4 %"
    assert by_id(page, "ageing-over_90") == "Over 90 days €700.00 34.1 %"

    # Countback from 2050: March (31 d) sales 300 -> 1750 left; February (28 d) 300 -> 1450; January
    # (31 d) 400 -> 1050; December (31 d) 500 -> 550; November (30 d) had 600 of sales for the 550 left:
    # 30 * 550 / 600 = 27.5 -> 31 + 28 + 31 + 31 + 27.5 = 148.5 days.
    assert by_id(page, "kpi-dso") == "148.5 days"
    assert "countback" in page.lower()
    # CEI over 2026-03-01..03-31: opening 2500 (A3 300, A4 400, A5 500, A6 600, A7 700), sales 300 (A1, A2),
    # closing 2050 of which 300 not due: (2500 + 300 - 2050) / (2500 + 300 - 300) = 750 / 2500 = 30.0 %.
    assert by_id(page, "kpi-cei") == "30.0 %"

    # The chart: bars scaled to 4 ticks of €200.00 (80000 minor units) over 192 units of height.
    heights = dict(re.findall(r'height="(\d+)" class="bar bar-(\w+)"', page)[i][::-1] for i in range(5))
    assert heights == {"not_due": "72", "1_30": "72", "31_60": "60", "61_90": "120", "over_90": "168"}
    assert "<svg" in page and "€800.00" in page  # top tick

    # Top debtors (balances today): Kilo 1500 before Lima 550.
    top = page[page.index('id="top-title"'):page.index('id="adoption-title"')]
    assert top.index("Kilo SA") < top.index("Lima SARL")
    assert "€1,500.00" in top and "€550.00" in top


def test_dashboard_as_of_defaults_to_today_and_bad_dates_are_refused_kindly(client, ledger, en_creditor):
    back_office_login(client, en_creditor)
    assert client.get("/app/dashboard").status_code == 200
    r = client.get("/app/dashboard?as_of=2026-02-30")
    assert r.status_code == 200
    assert 'aria-invalid="true"' in response_text(r)


def test_aged_balance_csv_per_debtor(client, ledger, en_creditor):
    back_office_login(client, en_creditor)
    r = client.get(f"/app/dashboard/ageing.csv?as_of={AS_OF}")
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == ["as_of", "currency", "debtor_ref", "debtor_name", "not_due", "1_30", "31_60", "61_90",
                       "over_90", "total"]
    assert rows[1:] == [
        [AS_OF, "EUR", "K1", "Kilo SA", "300.00", "0.00", "0.00", "500.00", "700.00", "1500.00"],
        [AS_OF, "EUR", "K2", "Lima SARL", "0.00", "300.00", "250.00", "0.00", "0.00", "550.00"],
        [AS_OF, "EUR", "", "TOTAL", "300.00", "300.00", "250.00", "500.00", "700.00", "2050.00"],
    ]


def test_csv_cells_cannot_run_as_formulas(client, ledger, en_creditor):
    """Issue 15 item 9: every field quoted; a text cell a spreadsheet would run as a formula gets
    a leading quote, also where a semicolon-splitting (French) spreadsheet would start a cell."""
    names = {"K3": "=HYPERLINK(\"http://evil\")", "K4": "ACME;=2+5;", "K5": "-Minus", "K6": "@SUM(A1)",
             "K7": "+33 Plus", "K8": "Semi, -colon"}
    for ref, name in names.items():
        assert ledger.put(f"/debtors/{ref}", json={"name": name, "language": "en"}).status_code == 201
        ledger.put(f"/invoices/Z{ref}", json={"debtor_ref": ref, "issue_date": "2026-03-01", "due_date": "2026-03-30",
                                              "amount": "1.00", "currency": "EUR"})
    back_office_login(client, en_creditor)
    text = client.get(f"/app/dashboard/ageing.csv?as_of={AS_OF}").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    got = {row[2]: row[3] for row in rows if row[2] in names}
    assert got == {"K3": "'=HYPERLINK(\"http://evil\")", "K4": "ACME;'=2+5;", "K5": "'-Minus", "K6": "'@SUM(A1)",
                   "K7": "'+33 Plus", "K8": "Semi, '-colon"}
    for line in text.splitlines():  # every field quoted
        assert re.fullmatch(r'"(?:[^"]|"")*"(?:,"(?:[^"]|"")*")*', line), line
    # Split on semicolons, as a French spreadsheet would, no cell starts a formula.
    for row in csv.reader(io.StringIO(text), delimiter=";"):
        for c in row:
            assert not c.startswith(("=", "+", "@", "-")), c
    assert [r[4:] for r in rows if r[3] == "TOTAL"] == [["300.00", "306.00", "250.00", "500.00", "700.00", "2056.00"]]


def test_portal_adoption(client, app, ledger, en_creditor):
    portal_login(make_client := app.test_client(), app, "K1", en_creditor.id)  # K1: a link, opened
    ledger.post("/debtors/K1/links")  # a second one, not opened
    ledger.post("/debtors/K2/links")  # K2: sent, never opened
    k1, k2 = (db.session.scalar(select(Debtor).where(Debtor.creditor_id == en_creditor.id, Debtor.ref == ref))
              for ref in ("K1", "K2"))
    # What the payment flows leave behind: K1 paid by card from the portal; K2 was collected
    # automatically by direct debit, which is not the portal.
    db.session.add_all([
        PaymentAttempt(creditor_id=en_creditor.id, debtor_id=k1.id, provider="stripe", amount=10000, currency="EUR",
                       status="succeeded", initiated_by="debtor"),
        PaymentAttempt(creditor_id=en_creditor.id, debtor_id=k1.id, provider="stripe", amount=5000, currency="EUR",
                       status="failed", initiated_by="debtor"),
        PaymentAttempt(creditor_id=en_creditor.id, debtor_id=k2.id, provider="gocardless", amount=30000,
                       currency="EUR", status="succeeded", initiated_by="system")])
    db.session.commit()
    assert make_client.get("/portal/").status_code == 200

    back_office_login(client, en_creditor)
    page = response_text(client.get("/app/dashboard"))
    assert by_id(page, "adoption-reached") == "2"
    assert by_id(page, "adoption-opened") == "1 (50.0 %)"
    assert by_id(page, "adoption-paid") == "1 (50.0 %)"
    assert by_id(page, "adoption-links") == "3 / 1"
    assert by_id(page, "adoption-payments") == "1 — €100.00"


def _poll_url(page: str) -> str:
    m = re.search(r'hx-get="(/app/dashboard/feed\?after=(\d+))"\s+hx-trigger="every 3s"', page)
    assert m, "no poller"
    return m.group(1)


def test_feed_shows_a_payment_made_in_another_session_without_reload(client, make_app, app, ledger, en_creditor,
                                                                     new_creditor):
    back_office_login(client, en_creditor)
    r = client.get("/app/dashboard")
    page = response_text(r)
    poll = _poll_url(page)
    after = int(poll.rsplit("=", 1)[1])
    assert after == db.session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
    assert "Payment received: €600.00" in page  # what happened before is on the page already

    # Somewhere else: the accountant records a bank transfer through the API, a debtor opens the portal,
    # and another creditor gets paid too.
    elsewhere = Api(make_app().test_client(), en_creditor)
    r = elsewhere.post("/invoices/A3/payments", json={"amount": "300.00", "date": "2026-03-31", "reference": "VIR-77"})
    assert r.status_code == 201, r.json
    portal_login(make_app().test_client(), app, "K2", en_creditor.id)
    other = new_creditor("Other Co", language="en")
    other_api = Api(make_app().test_client(), other)
    other_api.put("/debtors/O1", json={"name": "Oscar", "language": "en"})
    other_api.put("/invoices/O-1", json={"debtor_ref": "O1", "issue_date": "2026-03-01", "due_date": "2026-03-31",
                                         "amount": "42.00", "currency": "EUR"})
    assert other_api.post("/invoices/O-1/payments", json={"amount": "42.00", "date": "2026-03-31",
                                                          "reference": "O-PAY"}).status_code == 201

    # The page's poll, as htmx sends it.
    r = client.get(poll, headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert "HX-Request" in r.headers.get("Vary", "")
    fragment = response_text(r)
    ids = [int(i) for i in re.findall(r'data-event-id="(\d+)"', fragment)]
    assert ids and all(i > after for i in ids)
    assert ids == sorted(ids, reverse=True)  # newest first: prepended as they come
    assert "Payment received: €300.00 (reference VIR-77)" in fragment
    assert "Invoice paid in full" in fragment and ">A3<" in fragment
    assert "Lima SARL opened their portal" in re.sub(r"<[^>]+>", "", fragment) and "portal.opened" not in fragment
    assert "€42.00" not in fragment and "O-1" not in fragment and "Oscar" not in fragment  # not this creditor's
    theirs = db.session.scalars(select(Event.id).where(Event.creditor_id == other.id)).all()
    assert not set(theirs) & set(ids)
    assert "<html" not in fragment and "<script" not in fragment  # a fragment, not a page
    # The fragment carries the next poller, after the newest event of this creditor.
    newest = db.session.scalar(select(Event.id).where(Event.creditor_id == en_creditor.id)
                               .order_by(Event.id.desc()).limit(1))
    next_poll = _poll_url(fragment)
    assert next_poll.endswith(f"after={newest}")
    assert fragment.index("feed-poll") < fragment.index("data-event-id")  # replaces the old poller, on top

    # Nothing new: 204, htmx keeps the poller as it is.
    assert client.get(next_poll, headers={"HX-Request": "true"}).status_code == 204

    # Without JavaScript the same address is a page of what is new.
    r = client.get(poll)
    assert r.status_code == 200
    assert_clean(r, "feed page")
    assert "Payment received: €300.00" in response_text(r) and "<html" in response_text(r)


def test_feed_needs_a_signed_in_creditor(client, ledger):
    r = client.get("/app/dashboard/feed?after=0", headers={"HX-Request": "true"})
    assert r.status_code == 302 and "/app/login" in r.headers["Location"]
    assert client.get("/app/dashboard").status_code == 302
    assert client.get("/app/dashboard/ageing.csv").status_code == 302


def test_feed_ignores_a_bad_after(client, ledger, en_creditor):
    back_office_login(client, en_creditor)
    for bad in ("-1", "abc", "9" * 40, ""):
        r = client.get(f"/app/dashboard/feed?after={bad}", headers={"HX-Request": "true"})
        assert r.status_code == 200, bad


def test_debtor_timeline_reads_well(client, app, ledger, en_creditor):
    portal_login(c := app.test_client(), app, "K2", en_creditor.id)
    assert c.get("/portal/invoices/A3.pdf").status_code == 200
    back_office_login(client, en_creditor)
    page = response_text(client.get("/app/debtors/K2"))
    activity = re.sub(r"<[^>]+>", "", page[page.index("Activity"):])
    for words in ("Lima SARL opened their portal for the first time", "Lima SARL downloaded the PDF of invoice A3",
                  "Payment received: €150.00 (reference R4)", "Invoice paid in full", "Portal link issued"):
        assert words in activity, words


# --- notifications ---------------------------------------------------------------------------------

def test_notifications_page_records_each_users_choice(client, app, en_creditor):
    back_office_login(client, en_creditor)
    r = client.get("/app/notifications")
    assert r.status_code == 200
    assert_clean(r, "notifications")
    assert re.search(r'value="immediate"\s+checked', response_text(r))
    r = client.post("/app/notifications", data={"notify": "digest"})
    assert r.status_code == 302
    user = db.session.scalar(select(CreditorUser).where(CreditorUser.email == en_creditor.email))
    db.session.refresh(user)
    assert user.notify == "digest"
    assert re.search(r'value="digest"\s+checked', response_text(client.get("/app/notifications")))
    changes = db.session.scalars(select(Event).where(Event.type == "creditor_user.notify_changed")).all()
    assert [(e.data["user"], e.data["previous"], e.data["notify"]) for e in changes] == \
        [(en_creditor.email, "immediate", "digest")]
    # Saving the same choice again records nothing; a bad value changes nothing.
    client.post("/app/notifications", data={"notify": "digest"})
    assert client.post("/app/notifications", data={"notify": "hourly"}).status_code == 422
    assert len(db.session.scalars(select(Event).where(Event.type == "creditor_user.notify_changed")).all()) == 1
    db.session.refresh(user)
    assert user.notify == "digest"


def test_today_then_the_dashboard_lead_the_navigation(client, en_creditor):
    back_office_login(client, en_creditor)
    page = response_text(client.get("/app/"))
    nav = page[page.index("<nav"):page.index("</nav>")]
    assert re.findall(r'href="([^"]+)"', nav)[:2] == ["/app/", "/app/dashboard"]
