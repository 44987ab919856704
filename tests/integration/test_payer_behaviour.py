"""Payer behaviour (CONTRACT §4 `payer`) on a small hand-computed book: days late, share paid on
time, invoices counted; credit notes, open invoices and the trend; the debtors list sorted by it."""
from __future__ import annotations

import re
from datetime import date, timedelta

from portal.domain.calendar import today_for
from portal.extensions import db
from portal.models import Creditor
from portal.services import disputes, ledger, payer
from support import assert_clean, back_office_login, response_text


def _invoice(api, number, ref, due, amount, issue=None):
    r = api.put(f"/invoices/{number}", json={"debtor_ref": ref, "issue_date": (issue or due - timedelta(days=30)).isoformat(),
                                             "due_date": due.isoformat(), "amount": amount, "currency": "EUR"})
    assert r.status_code == 201, r.json


def _pay(api, number, amount, day, ref=None):
    r = api.post(f"/invoices/{number}/payments", json={"amount": amount, "date": day.isoformat(),
                                                      "reference": ref or f"{number}-{day}-{amount}"})
    assert r.status_code == 201, r.json


def _book(api, creditor_id):
    """P1: A on time (paid 2 days early), B 15 days late (paid in two parts, the balance reaching
    zero on the second), C 10 days late, F 5 days late (the last 40.00 by a credit note today),
    D open, E cleared wholly by a credit note (not paid by the debtor). P2: nothing paid.
    P3: one invoice paid early. P4: 20 days late last March, 2 days late last September."""
    for ref, name in [("P1", "Alpha"), ("P2", "Beta"), ("P3", "Gamma"), ("P4", "Delta")]:
        api.put(f"/debtors/{ref}", json={"name": name, "email": f"{ref.lower()}@example.com", "language": "fr"})
    creditor = db.session.get(Creditor, creditor_id)
    today = today_for(creditor)
    _invoice(api, "A", "P1", date(2026, 9, 10), "100.00")
    _pay(api, "A", "100.00", date(2026, 9, 8))
    _invoice(api, "B", "P1", date(2026, 9, 10), "200.00")
    _pay(api, "B", "50.00", date(2026, 9, 15))
    _pay(api, "B", "150.00", date(2026, 9, 25))
    _invoice(api, "C", "P1", date(2026, 10, 1), "300.00")
    _pay(api, "C", "300.00", date(2026, 10, 11))
    _invoice(api, "D", "P1", date(2026, 10, 1), "400.00")
    _invoice(api, "E", "P1", date(2026, 10, 5), "500.00")
    _invoice(api, "F", "P1", today - timedelta(days=5), "100.00")
    _pay(api, "F", "60.00", today - timedelta(days=7))
    p1 = ledger.get_debtor(creditor_id, "P1")
    for number, amount in (("E", "500.00"), ("F", "40.00")):
        dispute = disputes.open_dispute(p1.id, number, reason="wrong_amount", comment="Montant erroné")
        disputes.resolve(creditor_id, dispute.id, user="owner", resolution="credit_note", amount=amount)
    _invoice(api, "G", "P3", date(2026, 11, 1), "80.00")
    _pay(api, "G", "80.00", date(2026, 10, 30))
    _invoice(api, "H", "P4", date(2026, 3, 1), "70.00")
    _pay(api, "H", "70.00", date(2026, 3, 21))
    _invoice(api, "I", "P4", date(2026, 9, 1), "90.00")
    _pay(api, "I", "90.00", date(2026, 9, 3))
    return creditor


def test_payer_figures_by_hand(app, api, creditor):
    _book(api, creditor.id)
    # P1: days late 0 + 15 + 10 + 5 over 4 invoices = 7.5; 1 of 4 on time.
    assert api.get("/debtors/P1").json["payer"] == {"average_days_late": 7.5, "paid_on_time_share": "0.25",
                                                     "invoices_paid": 4}
    assert api.get("/debtors/P2").json["payer"] == {"average_days_late": None, "paid_on_time_share": None,
                                                     "invoices_paid": 0}
    assert api.get("/debtors/P3").json["payer"] == {"average_days_late": 0.0, "paid_on_time_share": "1.00",
                                                     "invoices_paid": 1}
    # (20 + 2) / 2 = 11.0, none on time
    assert api.get("/debtors/P4").json["payer"] == {"average_days_late": 11.0, "paid_on_time_share": "0.00",
                                                     "invoices_paid": 2}
    assert api.get("/debtors/NOPE").status_code == 404


def test_trend_compares_the_last_six_months_with_the_six_before(app, api, creditor):
    _book(api, creditor.id)
    p4 = ledger.get_debtor(creditor.id, "P4")
    b = payer.behaviour(p4, date(2026, 12, 6))
    # H paid 2026-03-21 (after 2025-12-06, up to 2026-06-06): 20 days; I paid 2026-09-03: 2 days.
    assert (b.before.average_days_late, b.recent.average_days_late, b.trend) == (20, 2, "better")
    assert b.overall.invoices_paid == 2
    # A year later both fall in the earlier window only: nothing recent to compare.
    assert payer.behaviour(p4, date(2027, 6, 1)).trend is None
    # Seen from 2026-09-02, H is recent and I not paid yet: nothing earlier to compare with.
    assert payer.behaviour(p4, date(2026, 9, 2)).trend is None
    # From 2026-06-10, H (20 days) is recent and nothing was paid before: none either.
    assert payer.behaviour(p4, date(2026, 6, 10)).trend is None


def test_debtors_list_sorts_by_payer_behaviour(app, api, creditor, client):
    _book(api, creditor.id)
    back_office_login(client, creditor)
    order = lambda page: re.findall(r'<a href="/app/debtors/(P\d)">', page)  # noqa: E731
    page = response_text(client.get("/app/debtors?sort=late"))
    assert order(page) == ["P4", "P1", "P3", "P2"]  # most days late first, no history last
    assert order(response_text(client.get("/app/debtors?sort=late&dir=asc"))) == ["P3", "P1", "P4", "P2"]
    assert order(response_text(client.get("/app/debtors?sort=on_time"))) == ["P4", "P1", "P3", "P2"]
    assert "7,5" in page and "25" in page  # P1's figures, in French
    assert "Retard moyen" in page and "Payées à l'heure" in page
    row = re.search(r'<a href="/app/debtors/P1">.*?</tr>', page, re.S).group(0)
    assert "7,5" in row and "25\u00a0%" in row


def test_debtor_page_shows_the_behaviour_and_its_trend(app, api, creditor, client):
    _book(api, creditor.id)
    back_office_login(client, creditor)
    r = client.get("/app/debtors/P1")
    assert r.status_code == 200
    assert_clean(r, "debtor page")
    page = response_text(r)
    section = re.search(r'<dl class="card" id="payer">.*?</dl>', page, re.S).group(0)
    text = " ".join(re.sub(r"<[^>]+>", " ", section).split())
    assert "Retard moyen 7,5 jours Payées à l'heure 25 % Factures payées 4" in text
    p2 = " ".join(re.sub(r"<[^>]+>", " ", response_text(client.get("/app/debtors/P2"))).split())
    assert "Retard moyen — Payées à l'heure — Factures payées 0" in p2
    # P5 paid 20 days late some eight months ago, 2 days late two months ago: better lately.
    today = today_for(db.session.get(Creditor, creditor.id))
    api.put("/debtors/P5", json={"name": "Epsilon", "email": "p5@example.com", "language": "fr"})
    _invoice(api, "J", "P5", today - timedelta(days=260), "10.00")
    _pay(api, "J", "10.00", today - timedelta(days=240))
    _invoice(api, "K", "P5", today - timedelta(days=62), "10.00")
    _pay(api, "K", "10.00", today - timedelta(days=60))
    trend = re.search(r'<dd id="payer-trend">(.*?)</dd>', response_text(client.get("/app/debtors/P5")), re.S).group(1)
    assert "En amélioration" in trend and "2,0 jours de retard en moyenne sur les 6 derniers mois, contre 20,0" in trend
