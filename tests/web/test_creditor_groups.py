"""Several companies (issue 18): a user of the entities of a group switches between them in the
back office, sees and acts on the one it switched to only, and reads the group's dashboard side by
side and consolidated per currency (never converted) on books worked out by hand."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiKey, Creditor, CreditorMembership, CreditorUser, Debtor, Event
from portal.services import alerts, memberships, reports
from portal.services.group_figures import entity_figures
from support import Api, back_office_login, count, csrf_token_in, look, response_text

AS_OF = "2026-03-31"


def by_id(page: str, element_id: str) -> str:
    m = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</(?:dd|h3|strong)>', page, re.S)
    assert m, element_id
    return " ".join(re.sub(r"<[^>]+>", " ", m.group(1)).split())


@pytest.fixture
def group(new_creditor):
    """Alpha (its user's own), Beta and Gamma (GBP) of one group: the user of Alpha made each of
    them with its own e-mail and password, so it belongs to all three."""
    alpha = new_creditor("Alpha Holding", language="en")
    beta = new_creditor("Beta Services", email=alpha.email, language="en")
    gamma = new_creditor("Gamma Ltd", email=alpha.email, currency="GBP", language="en")
    return alpha, beta, gamma


def book(client, who, debtor_ref, name, invoices, payments=()):
    api = Api(client, who)
    r = api.put(f"/debtors/{debtor_ref}", json={"name": name, "email": f"{debtor_ref.lower()}@example.com",
                                                "language": "en"})
    assert r.status_code in (200, 201), r.json
    for number, issued, due, amount, currency in invoices:
        r = api.put(f"/invoices/{number}", json={"debtor_ref": debtor_ref, "issue_date": issued, "due_date": due,
                                                 "amount": amount, "currency": currency})
        assert r.status_code == 201, r.json
    for number, amount, day in payments:
        r = api.post(f"/invoices/{number}/payments", json={"amount": amount, "date": day, "reference": f"T-{number}"})
        assert r.status_code in (200, 201), r.json


@pytest.fixture
def books(client, group):
    """As at 2026-03-31 (countback months: March 31 d, February 28 d, January 31 d, December 31 d):

    | entity | inv | issued     | due        | amount | paid             | at as_of            |
    |--------|-----|------------|------------|--------|------------------|---------------------|
    | Alpha  | A1  | 2026-03-01 | 2026-03-31 | 100    |                  | due today: not due  |
    | Alpha  | A2  | 2026-02-01 | 2026-03-03 | 250    |                  | 28 days: 1-30       |
    | Alpha  | A3  | 2026-03-05 | 2026-04-04 | 500    | 500 on 03-25     | paid                |
    | Beta   | B1  | 2026-01-01 | 2026-01-31 | 400    | 160 on 03-20     | 240, 59 days: 31-60 |
    | Beta   | B2  | 2026-03-15 | 2026-04-14 | 50     |                  | not due             |
    | Gamma  | C1  | 2026-03-10 | 2026-04-09 | 70 GBP |                  | not due             |
    | Gamma  | C2  | 2025-12-01 | 2025-12-31 | 30 GBP |                  | 90 days: 61-90      |
    """
    alpha, beta, gamma = group
    book(client, alpha, "AK1", "Alpha Customer", [("A1", "2026-03-01", "2026-03-31", "100.00", "EUR"),
                                                  ("A2", "2026-02-01", "2026-03-03", "250.00", "EUR"),
                                                  ("A3", "2026-03-05", "2026-04-04", "500.00", "EUR")],
         [("A3", "500.00", "2026-03-25")])
    book(client, beta, "BK1", "Beta Customer", [("B1", "2026-01-01", "2026-01-31", "400.00", "EUR"),
                                                ("B2", "2026-03-15", "2026-04-14", "50.00", "EUR")],
         [("B1", "160.00", "2026-03-20")])
    book(client, gamma, "GK1", "Gamma Customer", [("C1", "2026-03-10", "2026-04-09", "70.00", "GBP"),
                                                  ("C2", "2025-12-01", "2025-12-31", "30.00", "GBP")])
    return group


def switch_to(client, creditor_id):
    return client.post("/app/switch", data={"creditor_id": str(creditor_id)})


# --- the group dashboard -----------------------------------------------------------------------------

def test_group_dashboard_side_by_side_and_consolidated_per_currency(client, books):
    alpha, beta, gamma = books
    back_office_login(client, alpha)
    assert 'id="group-link"' in client.get("/app/dashboard").get_data(as_text=True)
    r = client.get(f"/app/dashboard/group?as_of={AS_OF}")
    assert r.status_code == 200
    page = response_text(r)

    # Alpha: 100 not due + 250 in 1-30 = 350. Countback: March sales 600 (A1 + A3) > 350: 31 * 350 / 600
    # = 18.08 -> 18.1 days. CEI over 03-01..03-31: opening 350 (A1, A2), sales 500 (A3), closing 350 of
    # which 100 not due: (350 + 500 - 350) / (350 + 500 - 100) = 500 / 750 = 66.7 %.
    a = f"entity-{alpha.id}"
    assert [by_id(page, f"{a}-{k}") for k in ("outstanding", "overdue", "dso", "cei")] == \
        ["€350.00", "€250.00", "18.1 days", "66.7 %"]
    # Beta: 50 not due + 240 in 31-60 = 290. Countback: March 50 -> 240 left, 31 d; February no sales, 28 d;
    # January 400 > 240: 31 * 240 / 400 = 18.6 -> 77.6 days. CEI: opening 400, sales 50, closing 290 of
    # which 50 not due: 160 / 400 = 40.0 %.
    b = f"entity-{beta.id}"
    assert [by_id(page, f"{b}-{k}") for k in ("outstanding", "overdue", "dso", "cei")] == \
        ["€290.00", "€240.00", "77.6 days", "40.0 %"]
    c = f"entity-{gamma.id}"
    assert [by_id(page, f"{c}-{k}") for k in ("outstanding", "overdue")] == ["£100.00", "£30.00"]

    # EUR consolidated: 640 (150 not due, 250 in 1-30, 240 in 31-60), 490 overdue. Countback on the summed
    # books, not an average: March sales 650 > 640: 31 * 640 / 650 = 30.5 days. CEI: opening 750, sales
    # 550, closing 640 of which 150 not due: 660 / 1150 = 57.4 %.
    assert by_id(page, "consolidated-EUR-title") == "EUR · 2 companies"
    assert [by_id(page, f"consolidated-EUR-{k}") for k in ("outstanding", "overdue", "dso", "cei")] == \
        ["€640.00", "€490.00", "30.5 days", "57.4 %"]
    # GBP stays apart, never converted nor added to the euros.
    assert by_id(page, "consolidated-GBP-title") == "GBP · 1 company"
    assert [by_id(page, f"consolidated-GBP-{k}") for k in ("outstanding", "overdue")] == ["£100.00", "£30.00"]
    assert "€740.00" not in page and "740.00" not in page


def test_each_entity_has_the_figures_of_its_own_summary_report(app, books):
    """The side-by-side figures are the dashboard's (reports.summary), not a second computation."""
    from datetime import date
    for who in books:
        creditor = db.session.get(Creditor, who.id)
        f, summary = entity_figures(creditor, date(2026, 3, 31)), reports.summary(creditor, date(2026, 3, 31))
        assert float(f.dso_days) == summary["dso_days"]
        assert (None if f.cei is None else float(f.cei)) == summary["cei"]
        assert f.outstanding == sum(reports.aged_balance(creditor, date(2026, 3, 31)).values())


def test_a_user_of_one_creditor_is_offered_no_switch_nor_group(client, new_creditor):
    alone = new_creditor("Solo SARL")
    other = new_creditor("Other SAS")
    back_office_login(client, alone)
    group_page = client.get("/app/dashboard/group")
    assert group_page.status_code == 200  # its one company, nobody else's
    text = response_text(group_page)
    assert f'id="entity-{alone.id}"' in text and f'id="entity-{other.id}"' not in text and "Other SAS" not in text
    page = client.get("/app/dashboard").get_data(as_text=True)
    assert 'id="group-link"' not in page and 'id="switch-creditor"' not in page


# --- switching and isolation -------------------------------------------------------------------------

def test_a_switched_user_sees_and_acts_on_the_other_creditor_only(client, books):
    alpha, beta, _gamma = books
    back_office_login(client, alpha)
    page = client.get("/app/debtors").get_data(as_text=True)
    assert "Alpha Customer" in page and "Beta Customer" not in page
    assert 'id="switch-creditor"' in page and "Relance — Alpha Holding" in page

    r = switch_to(client, beta.id)
    assert r.status_code == 303 and r.headers["Location"].endswith("/app/dashboard")
    page = client.get("/app/debtors").get_data(as_text=True)
    assert "Beta Customer" in page and "Alpha Customer" not in page
    assert "Relance — Beta Services" in page
    assert client.get("/app/debtors/BK1").status_code == 200
    assert client.get("/app/debtors/AK1").status_code == 404  # Alpha's debtor, while on Beta
    assert look(lambda: db.session.scalar(select(Event.creditor_id).where(Event.type == "user.switched_creditor"))) \
        == beta.id

    # Acting: an API key made now is Beta's, none is added to Alpha.
    before = count(ApiKey, ApiKey.creditor_id == alpha.id)
    assert client.post("/app/api-keys", data={"label": "made on Beta"}).status_code == 200
    assert count(ApiKey, ApiKey.creditor_id == beta.id, ApiKey.label == "made on Beta") == 1
    assert count(ApiKey, ApiKey.creditor_id == alpha.id) == before
    # Alpha's keys cannot be revoked from Beta.
    alpha_key = look(lambda: db.session.scalar(select(ApiKey.id).where(ApiKey.creditor_id == alpha.id)))
    assert client.post(f"/app/api-keys/{alpha_key}/revoke").status_code == 404

    # Back to Alpha.
    switch_to(client, alpha.id)
    page = client.get("/app/debtors").get_data(as_text=True)
    assert "Alpha Customer" in page and "Beta Customer" not in page


def test_a_user_cannot_switch_to_a_creditor_it_does_not_belong_to(client, make_app, books, new_creditor):
    alpha, beta, _gamma = books
    stranger = new_creditor("Stranger SAS")
    book(client, stranger, "SK1", "Stranger Customer", [("S1", "2026-03-01", "2026-03-31", "10.00", "EUR")])
    back_office_login(client, stranger)
    for target in (alpha.id, beta.id, 999999, "x", "", f"{beta.id}.0"):
        assert switch_to(client, target).status_code == 404
    page = client.get("/app/debtors").get_data(as_text=True)
    assert "Stranger Customer" in page and "Alpha Customer" not in page and "Beta Customer" not in page
    assert "Relance — Stranger SAS" in page and 'id="switch-creditor"' not in page
    assert client.get("/app/debtors/BK1").status_code == 404
    assert count(Event, Event.type == "user.switched_creditor") == 0


def test_a_membership_taken_away_ends_the_switch(client, books):
    alpha, beta, _gamma = books
    back_office_login(client, alpha)
    switch_to(client, beta.id)
    user_id = look(lambda: db.session.scalar(select(CreditorUser.id).where(CreditorUser.email == alpha.email)))
    db.session.execute(db.delete(CreditorMembership).where(CreditorMembership.user_id == user_id,
                                                           CreditorMembership.creditor_id == beta.id))
    db.session.commit()
    page = client.get("/app/debtors").get_data(as_text=True)
    assert "Alpha Customer" in page and "Beta Customer" not in page
    assert client.get("/app/debtors/BK1").status_code == 404


def test_every_sign_in_starts_on_the_users_own_creditor(client, books):
    alpha, beta, _gamma = books
    back_office_login(client, alpha)
    switch_to(client, beta.id)
    client.post("/app/logout")
    back_office_login(client, alpha)
    assert "Relance — Alpha Holding" in client.get("/app/debtors").get_data(as_text=True)


def test_the_switch_form_needs_its_csrf_token(make_app, books):
    alpha, beta, _gamma = books
    c = make_app(WTF_CSRF_ENABLED=True).test_client()
    c.post("/app/login", data={"email": alpha.email, "password": alpha.password,
                               "csrf_token": csrf_token_in(c.get("/app/login").data)})
    page = c.get("/app/debtors").data
    assert c.post("/app/switch", data={"creditor_id": str(beta.id)}).status_code == 400
    assert "Relance — Alpha Holding" in c.get("/app/debtors").get_data(as_text=True)
    r = c.post("/app/switch", data={"creditor_id": str(beta.id), "csrf_token": csrf_token_in(page)})
    assert r.status_code == 303
    assert "Relance — Beta Services" in c.get("/app/debtors").get_data(as_text=True)


def test_notices_of_a_creditor_reach_the_users_of_its_group(app, books):
    alpha, beta, _gamma = books
    debtor = db.session.scalar(select(Debtor).where(Debtor.creditor_id == beta.id))
    messages = alerts.notify("dispute", creditor_id=beta.id, debtor_id=debtor.id, numbers=["B1"])
    assert [m.to_addr for m in messages] == [alpha.email]
    db.session.rollback()
    assert [u.email for u in memberships.users_of(beta.id)] == [alpha.email]
