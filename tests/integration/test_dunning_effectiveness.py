"""What each reminder achieves (GET /reports/dunning) on a hand-computed book: messages sent by
the real dunning run on known days (the clock replayed as the demo does), portal visits opened on
known days, payments dated. Each payment goes to the last message before it that named its invoice."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dunning_jobs import day as dunning_day
from portal.models.base import replaying
from support import assert_clean, back_office_login, portal_login, response_text

PARIS = ZoneInfo("Europe/Paris")
DUE = date(2026, 10, 1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), PARIS)


def _run(day: date, hour: int = 8, minute: int = 30):
    with replaying(at(day, hour, minute)):
        dunning_day.run(day)


def _visit(client, app, ref, creditor_id, moment):
    with replaying(moment):
        portal_login(client, app, ref, creditor_id)


@pytest.fixture
def book(app, api, creditor, client):
    """E1 (X1 1000.00, X2 500.00), E2 (Y1 200.00) by e-mail, E3 (Z1 300.00) by letter, all due
    2026-10-01. Courtesy notices 2026-09-24; E2 pays Y1 on 09-28, E3 pays Z1 on 09-30; first
    reminder 10-02 (E1 only); E1 pays 400.00 of X1 on 10-05; second reminder 10-09 at 00:30 Paris
    (still 10-08 in UTC); firm reminder 10-16; E1 pays the last 600.00 of X1 on 10-20.
    E1 opens its portal on 09-25 and on 10-03."""
    for ref, email in (("E1", "e1@example.com"), ("E2", "e2@example.com"), ("E3", None)):
        api.put(f"/debtors/{ref}", json={"name": f"Debtor {ref}", "email": email, "language": "fr",
                                         "address": f"Debtor {ref}\n1 rue de la Paix\n75002 PARIS"})
    for number, ref, amount in (("X1", "E1", "1000.00"), ("X2", "E1", "500.00"), ("Y1", "E2", "200.00"),
                                ("Z1", "E3", "300.00")):
        r = api.put(f"/invoices/{number}", json={"debtor_ref": ref, "issue_date": "2026-09-01",
                                                 "due_date": DUE.isoformat(), "amount": amount, "currency": "EUR"})
        assert r.status_code == 201

    def pay(number, amount, day):
        r = api.post(f"/invoices/{number}/payments", json={"amount": amount, "date": day.isoformat(),
                                                          "reference": f"{number}-{day}"})
        assert r.status_code == 201, r.json

    _run(date(2026, 9, 24))
    _visit(client, app, "E1", creditor.id, at(date(2026, 9, 25), 10))
    pay("Y1", "200.00", date(2026, 9, 28))
    pay("Z1", "300.00", date(2026, 9, 30))
    _run(date(2026, 10, 2))
    _visit(client, app, "E1", creditor.id, at(date(2026, 10, 3), 11))
    pay("X1", "400.00", date(2026, 10, 5))
    _run(date(2026, 10, 9), 0, 30)
    _run(date(2026, 10, 16))
    pay("X1", "600.00", date(2026, 10, 20))
    return api


def _steps(api, **params):
    r = api.get("/reports/dunning", query_string=params)
    assert r.status_code == 200, r.json
    return {(s["step"], s["channel"]): {k: v for k, v in s.items() if k not in ("step", "channel")}
            for s in r.json["steps"]}


def figures(sent, visits, paid7, paid30, collected):
    return {"sent": sent, "portal_visits": visits, "paid_within_7_days": paid7, "paid_within_30_days": paid30,
            "amount_collected_within_30_days": collected}


def test_each_step_by_hand(book):
    steps = _steps(book, **{"from": "2026-09-01", "to": "2026-10-31"})
    assert steps == {
        # E1 and E2 by e-mail; E1 came to the portal the next day; Y1 paid 4 days later.
        ("courtesy", "email"): figures(2, 1, 1, 1, "200.00"),
        # E3 has no e-mail: a letter; Z1 paid 6 days later.
        ("courtesy", "letter"): figures(1, 0, 1, 1, "300.00"),
        # E1 only (Y1 paid): the visit of 10-03, the 400.00 of 10-05; X1 not paid in full yet.
        ("reminder_1", "email"): figures(1, 1, 0, 0, "400.00"),
        ("reminder_2", "email"): figures(1, 0, 0, 0, "0.00"),
        # The last 600.00 of X1 came 4 days after the firm reminder: X1 paid, credited here only.
        ("firm", "email"): figures(1, 0, 1, 1, "600.00"),
    }
    order = [s["step"] for s in book.get("/reports/dunning?from=2026-09-01&to=2026-10-31").json["steps"]]
    assert order == ["courtesy", "courtesy", "reminder_1", "reminder_2", "firm"]


def test_the_period_is_in_local_days(book):
    # The second reminder went at 00:30 on 10-09 in Paris (22:30 UTC on 10-08): it is in a period
    # starting on 10-09, not in one ending on 10-08.
    assert set(_steps(book, **{"from": "2026-10-09", "to": "2026-10-31"})) == {("reminder_2", "email"),
                                                                               ("firm", "email")}
    assert set(_steps(book, **{"from": "2026-10-02", "to": "2026-10-08"})) == {("reminder_1", "email")}
    assert _steps(book, **{"from": "2026-11-01", "to": "2026-11-30"}) == {}


@pytest.mark.parametrize("params, field", [
    ({"from": "2026-13-01", "to": "2026-10-31"}, "from"),
    ({"from": "2026-10-01", "to": "31/10/2026"}, "to"),
    ({"from": "2026-10-31", "to": "2026-10-01"}, "from"),
    ({"from": "", "to": "2026-10-01"}, "from"),
])
def test_bad_periods_are_refused_with_their_field(api, params, field):
    r = api.get("/reports/dunning", query_string=params)
    assert r.status_code == 422 and r.json["error"]["field"] == field


def test_default_period_and_other_creditors(api, new_creditor, book, client):
    assert api.get("/reports/dunning").status_code == 200
    other = new_creditor("Other")
    r = client.get("/api/v1/reports/dunning?from=2026-09-01&to=2026-10-31", headers=other.headers)
    assert r.status_code == 200 and r.json["steps"] == []


def test_the_page_shows_the_table_and_its_chart(book, client, creditor):
    back_office_login(client, creditor)
    r = client.get("/app/reports/dunning?from=2026-09-01&to=2026-10-31")
    assert r.status_code == 200
    assert_clean(r, "dunning report")
    page = response_text(r)
    assert "Efficacité des relances" in page and 'href="/app/reports"' in page  # from the menu
    chart = re.search(r'<svg[^>]*aria-labelledby="dunning-chart-title".*?</svg>', page, re.S).group(0)
    # One bar per (step, channel), its length in proportion to the money collected (600.00 the longest).
    bars = [int(w) for w in re.findall(r'width="(\d+)" height="\d+" class="bar bar-collected"', chart)]
    assert len(bars) == 5 and bars[4] == max(bars) and bars[3] == 0 and bars[0] == bars[4] // 3 == 70
    firm = re.search(r"<tr><th scope=\"row\"[^>]*>Relance ferme</th>.*?</tr>", page, re.S).group(0)
    assert re.findall(r'class="num">([^<]*)<', firm) == ["1", "0", "1", "1", "600,00\u00a0€"]
    assert "1\u202f500,00\u00a0€" in page  # the total collected


def test_the_page_refuses_a_bad_period_and_shows_the_default(book, client, creditor):
    back_office_login(client, creditor)
    r = client.get("/app/reports/dunning?from=2026-10-31&to=2026-10-01")
    assert r.status_code == 422
    page = response_text(r)
    assert 'id="from-error"' in page and "antérieure ou égale" in page
    assert client.get("/app/reports/dunning?from=nope").status_code == 422


def test_the_reports_match_their_openapi_schemas(book, client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    report = book.get("/reports/dunning?from=2026-09-01&to=2026-10-31").json
    assert set(report) == set(schemas["DunningReport"]["properties"])
    step = schemas["DunningReport"]["properties"]["steps"]["items"]["properties"]
    assert all(set(s) == set(step) for s in report["steps"])
    forecast = book.get("/reports/forecast?weeks=2").json
    assert set(forecast) == set(schemas["Forecast"]["properties"])
    assert set(forecast["weeks"][0]) == set(schemas["Forecast"]["properties"]["weeks"]["items"]["properties"])
    payer = book.get("/debtors/E1").json["payer"]
    assert set(payer) == set(schemas["Payer"]["properties"])
    assert "/reports/dunning" in client.get("/api/v1/openapi.json").json["paths"]


CALL_PLAN = [
    {"code": "reminder_1", "offset_days": 1, "channel": "email", "tone": "reminder", "needs_approval": False},
    {"code": "call_1", "offset_days": 8, "channel": "call", "tone": "reminder", "needs_approval": False},
]


def test_a_closed_call_counts_as_a_message_on_channel_call(app, api, creditor, client):
    """C1 owes K1 1000.00 and K2 250.00, due 2026-10-01: first reminder by e-mail on 10-02; the call
    step makes a task on 10-09, closed (reached) on 10-10 at 15:00 Paris; C1 opens its portal on
    10-11 and pays K1 in full on 10-13 (3 days after the call), K2 on 11-20 (41 days: too late).
    An open task (D1's, never closed) counts for nothing."""
    assert api.put("/plans/standard", json={"steps": CALL_PLAN}).status_code == 200
    for ref in ("C1", "D1"):
        api.put(f"/debtors/{ref}", json={"name": f"Debtor {ref}", "email": f"{ref.lower()}@example.com",
                                         "language": "fr", "phone": "+33612345678"})
    for number, ref, amount in (("K1", "C1", "1000.00"), ("K2", "C1", "250.00"), ("L1", "D1", "80.00")):
        assert api.put(f"/invoices/{number}", json={"debtor_ref": ref, "issue_date": "2026-09-01",
                                                    "due_date": DUE.isoformat(), "amount": amount,
                                                    "currency": "EUR"}).status_code == 201
    _run(date(2026, 10, 2))
    _run(date(2026, 10, 9))
    with replaying(at(date(2026, 10, 10), 15)):
        tasks = {t["debtor_ref"]: t for t in api.get("/tasks").json["tasks"]}
        assert sorted(tasks) == ["C1", "D1"]
        assert api.post(f"/tasks/{tasks['C1']['id']}/outcome", json={"outcome": "reached"}).status_code == 200
    _visit(client, app, "C1", creditor.id, at(date(2026, 10, 11), 9))
    for number, amount, day in (("K1", "1000.00", date(2026, 10, 13)), ("K2", "250.00", date(2026, 11, 20))):
        assert api.post(f"/invoices/{number}/payments", json={"amount": amount, "date": day.isoformat(),
                                                             "reference": f"{number}-{day}"}).status_code == 201

    assert _steps(api, **{"from": "2026-09-01", "to": "2026-12-31"}) == {
        # C1 and D1 by e-mail on 10-02; nothing paid within 30 days of it that a later step did not take.
        ("reminder_1", "email"): figures(2, 0, 0, 0, "0.00"),
        # C1's call: the visit of 10-11, K1 paid in full 3 days later; K2's payment came too late.
        ("call_1", "call"): figures(1, 1, 1, 1, "1000.00"),
    }
    # The call is dated by its closing (10-10), not by its task's day (10-09).
    assert set(_steps(api, **{"from": "2026-10-10", "to": "2026-10-10"})) == {("call_1", "call")}
