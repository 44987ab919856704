"""The cash forecast (GET /reports/forecast) and the DSO trend on hand-computed books. Promises
can only be made from today on, so the book is laid out around today's date (T), and the weeks
are counted from T's Monday (W0)."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from portal.domain.calendar import today_for
from portal.domain.forecast import week_start
from portal.extensions import db
from portal.models import Creditor
from portal.services import disputes, forecast, ledger, promises, reports
from support import assert_clean, back_office_login, response_text


def _invoice(api, number, ref, due, amount, currency="EUR"):
    r = api.put(f"/invoices/{number}", json={"debtor_ref": ref, "issue_date": (due - timedelta(days=60)).isoformat(),
                                             "due_date": due.isoformat(), "amount": amount, "currency": currency})
    assert r.status_code == 201, r.json


def _pay(api, number, amount, day):
    r = api.post(f"/invoices/{number}/payments", json={"amount": amount, "date": day.isoformat(),
                                                      "reference": f"{number}-{day}-{amount}"})
    assert r.status_code == 201, r.json


def _weeks(api, n):
    r = api.get(f"/reports/forecast?weeks={n}")
    assert r.status_code == 200, r.json
    return r.json


def test_forecast_by_hand(app, api, creditor):
    t = today_for(db.session.get(Creditor, creditor.id))
    w0 = week_start(t)
    for ref in ("F1", "F2"):
        api.put(f"/debtors/{ref}", json={"name": ref, "email": f"{ref.lower()}@example.com", "language": "fr"})
    # F1 paid one invoice 10 days late: its due dates move by 10 days, and so do F2's (no history
    # of its own: the creditor-wide average, here F1's).
    _invoice(api, "H1", "F1", t - timedelta(days=40), "50.00")
    _pay(api, "H1", "50.00", t - timedelta(days=30))
    _invoice(api, "O1", "F1", t - timedelta(days=20), "100.00")   # expected T-10: the first week
    _invoice(api, "O2", "F1", t + timedelta(days=5), "200.00")    # T+15
    _invoice(api, "O3", "F1", t + timedelta(days=1), "300.00")    # promised: 120.00 on T+3, paid 20.00 since
    _invoice(api, "O4", "F1", t, "50.00")                         # disputed: left out
    _invoice(api, "O5", "F1", t, "70.00", currency="USD")         # another currency: left out
    _invoice(api, "O6", "F2", t + timedelta(days=2), "400.00")    # T+12
    f1 = ledger.get_debtor(creditor.id, "F1")
    promises.make(f1.id, "O3", (t + timedelta(days=3)).isoformat(), "120.00")
    _pay(api, "O3", "20.00", t)  # the promise has 100.00 to come on T+3; 180.00 at the moved due date T+11
    disputes.open_dispute(f1.id, "O4", reason="not_received", comment="Jamais reçue")

    expected = {}
    for day, cents in [(t - timedelta(days=10), 10000), (t + timedelta(days=15), 20000),
                       (t + timedelta(days=3), 10000), (t + timedelta(days=11), 18000),
                       (t + timedelta(days=12), 40000)]:
        week = max((day - w0).days // 7, 0)
        expected[week] = expected.get(week, 0) + cents
    got = _weeks(api, 4)
    assert [w["week_start"] for w in got["weeks"]] == [(w0 + timedelta(weeks=k)).isoformat() for k in range(4)]
    assert [w["expected"] for w in got["weeks"]] == [f"{expected.get(k, 0) / 100:.2f}" for k in range(4)]
    assert sum(expected.values()) == 10000 + 20000 + 10000 + 18000 + 40000
    # One week only: what falls later is left out.
    assert _weeks(api, 1)["weeks"] == [{"week_start": w0.isoformat(), "expected": f"{expected.get(0, 0) / 100:.2f}"}]
    assert len(_weeks(api, 52)["weeks"]) == 52


def test_no_history_anywhere_means_no_shift(app, api, creditor):
    t = today_for(db.session.get(Creditor, creditor.id))
    api.put("/debtors/N1", json={"name": "N1", "email": "n1@example.com", "language": "fr"})
    _invoice(api, "N-1", "N1", t + timedelta(days=8), "12.34")
    weeks = _weeks(api, 3)["weeks"]
    index = (t + timedelta(days=8) - week_start(t)).days // 7
    assert [w["expected"] for w in weeks] == ["12.34" if k == index else "0.00" for k in range(3)]


@pytest.mark.parametrize("weeks", ["0", "53", "abc", "-1", "1.5", ""])
def test_weeks_are_checked(api, weeks):
    r = api.get(f"/reports/forecast?weeks={weeks}")
    assert r.status_code == 422 and r.json["error"]["field"] == "weeks"


def test_default_weeks(api):
    assert len(api.get("/reports/forecast").json["weeks"]) == 12


def test_dso_trend_is_the_summary_at_each_month_end(app, seeded, creditor):
    seeded.post("/invoices/F-1/payments", json={"amount": "1200.00", "date": "2026-10-20", "reference": "p1"})
    seeded.post("/invoices/F-3/payments", json={"amount": "50.00", "date": "2026-11-20", "reference": "p2"})
    row = db.session.get(Creditor, creditor.id)
    today = date(2026, 12, 6)
    trend = forecast.dso_trend(row, today)
    assert [end for end, _ in trend][-3:] == [date(2026, 10, 31), date(2026, 11, 30), today]
    assert len(trend) == 12 and trend[0][0] == date(2026, 1, 31)
    assert [dso for _, dso in trend] == [reports.summary(row, end)["dso_days"] for end, _ in trend]
    # By hand at 2026-10-31: outstanding 300.50 (F-2) + 99.99 (F-3) = 400.49 against October's
    # sales 400.49 (F-2 300.50 issued 10-01, F-3 99.99 on 10-15): exactly one month, 31 days.
    assert dict(trend)[date(2026, 10, 31)] == 31.0


def test_the_reports_page_draws_the_forecast_beside_the_dso_trend(app, api, creditor, client):
    t = today_for(db.session.get(Creditor, creditor.id))
    api.put("/debtors/N1", json={"name": "N1", "email": "n1@example.com", "language": "fr"})
    _invoice(api, "N-1", "N1", t + timedelta(days=8), "12.34")
    _invoice(api, "N-2", "N1", t - timedelta(days=3), "100.00")
    back_office_login(client, creditor)
    r = client.get("/app/reports")
    assert r.status_code == 200
    assert_clean(r, "reports")
    page = response_text(r)
    forecast_svg = re.search(r'<svg[^>]*aria-labelledby="forecast-chart-title".*?</svg>', page, re.S).group(0)
    heights = [int(h) for h in re.findall(r'height="(\d+)" class="bar bar-forecast"', forecast_svg)]
    index = (t + timedelta(days=8) - week_start(t)).days // 7
    assert len(heights) == 12 and heights[0] == max(heights) > heights[index] > 0
    assert sum(1 for h in heights if h) == 2
    assert len(re.findall(r'class="bar bar-dso"', page)) == 12
    assert "Prévision de trésorerie" in page and "Évolution du DSO" in page
    assert "112,34\u00a0€" in by_id(page, "forecast-total")
    r = client.get("/app/reports?weeks=52")
    assert len(re.findall(r'class="bar bar-forecast"', r.get_data(as_text=True))) == 52
    # Not an offered horizon: the default.
    assert len(re.findall(r'class="bar bar-forecast"', client.get("/app/reports?weeks=5000").get_data(as_text=True))) == 12


def by_id(page: str, element_id: str) -> str:
    m = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</', page, re.S)
    assert m, element_id
    return m.group(1)
