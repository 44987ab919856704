"""The creditor reads the ECB reference table (the operator keeps it: `flask rates set`, tested in
tests/integration/test_cli.py) and sets its own late-payment terms; the charges stated in
reminders follow."""
from datetime import date

from portal.domain.charges import late_charges
from portal.extensions import db
from portal.models import Creditor, Event, ReferenceRate
from portal.services.reminders import reference_rates
from support import back_office_login


def test_rates_page_needs_login(client):
    assert client.get("/app/rates").status_code == 302


def test_the_reference_table_is_shown_read_only(client, app, creditor):
    back_office_login(client, creditor)
    page = client.get("/app/rates").get_data(as_text=True)
    assert "2,15" in page  # seeded by the migration
    assert 'name="effective_from"' not in page and "/app/rates/reference" not in page
    assert "Ce tableau est le même pour tous les créanciers" in page


def test_no_creditor_can_write_the_shared_table(client, app, new_creditor):
    """Issue 15 item 2: creditor A posting a 100 % ECB rate changed creditor B's interest."""
    a, b = new_creditor("A"), new_creditor("B")
    before = [(r.effective_from, r.rate_bp) for r in db.session.scalars(db.select(ReferenceRate))]
    # Interest on 1000.00 EUR, 10 days late in January 2026: 100000 x (215 + 1000) x 10 / 3650000 = 332.88 -> 333
    interest = late_charges(100000, "EUR", date(2026, 1, 5), date(2026, 1, 15), debtor_kind="business",
                            reference_rates=reference_rates()).interest
    assert interest == 333
    back_office_login(client, a)
    for half_year in ("2026-01-01", "2027-01-01"):  # an existing half-year and a missing one
        r = client.post("/app/rates/reference", data={"effective_from": half_year, "rate": "100"})
        assert r.status_code in (404, 405), r.status_code
    db.session.rollback()
    assert [(r.effective_from, r.rate_bp) for r in db.session.scalars(db.select(ReferenceRate))] == before
    assert late_charges(100000, "EUR", date(2026, 1, 5), date(2026, 1, 15), debtor_kind="business",
                        reference_rates=reference_rates()).interest == interest
    assert db.session.scalar(db.select(db.func.count()).select_from(Event).where(
        Event.type.like("reference_rate%"))) == 0
    # A's own contractual rate stays A's.
    assert client.post("/app/rates/terms", data={"contractual_rate": "100", "formal_notice_days": "8"}).status_code == 302
    db.session.rollback()
    assert (db.session.get(Creditor, a.id).late_interest_bp, db.session.get(Creditor, b.id).late_interest_bp) == (10000, None)


def test_contractual_terms(client, app, creditor):
    back_office_login(client, creditor)
    r = client.post("/app/rates/terms", data={"contractual_rate": "12", "formal_notice_days": "15"})
    assert r.status_code == 302
    row = db.session.get(Creditor, creditor.id)
    db.session.refresh(row)
    assert (row.late_interest_bp, row.formal_notice_days) == (1200, 15)
    assert client.post("/app/rates/terms", data={"contractual_rate": "12",
                                                 "formal_notice_days": "0"}).status_code == 422
    client.post("/app/rates/terms", data={"contractual_rate": "", "formal_notice_days": "8"})
    db.session.refresh(row)
    assert (row.late_interest_bp, row.formal_notice_days) == (None, 8)
