"""The creditor keeps the ECB reference table current and sets its own late-payment terms;
the charges stated in reminders follow."""
from datetime import date

from portal.domain.charges import late_charges
from portal.extensions import db
from portal.models import Creditor, Event, ReferenceRate
from portal.services.reminders import reference_rates
from support import back_office_login


def test_rates_page_needs_login(client):
    assert client.get("/app/rates").status_code == 302


def test_add_a_half_year_then_charges_use_it(client, app, creditor):
    back_office_login(client, creditor)
    assert "2,15" in client.get("/app/rates").get_data(as_text=True)  # seeded by the migration
    r = client.post("/app/rates/reference", data={"effective_from": "2027-01-01", "rate": "1.90"})
    assert r.status_code == 302
    assert db.session.scalar(db.select(ReferenceRate.rate_bp).where(
        ReferenceRate.effective_from == date(2027, 1, 1))) == 190
    # 1000.00 EUR, 10 days late in January 2027: 100000 x 1190 x 10 / 3650000 = 326.03 -> 326
    charges = late_charges(100000, "EUR", date(2027, 1, 5), date(2027, 1, 15), debtor_kind="business",
                           reference_rates=reference_rates())
    assert charges.interest == 326
    assert db.session.scalar(db.select(db.func.count()).select_from(Event).where(
        Event.type == "reference_rate.added")) == 1
    # The table survives between tests on PostgreSQL (seed data): leave it as the migration made it.
    db.session.execute(db.delete(ReferenceRate).where(ReferenceRate.effective_from == date(2027, 1, 1)))
    db.session.commit()


def test_bad_or_existing_half_years_are_refused(client, app, creditor):
    back_office_login(client, creditor)
    before = db.session.scalar(db.select(db.func.count()).select_from(ReferenceRate))
    for data, field_text in [({"effective_from": "2027-03-01", "rate": "1.90"}, "1er juillet"),
                             ({"effective_from": "2026-01-01", "rate": "9.00"}, "déjà"),
                             ({"effective_from": "2027-07-01", "rate": "abc"}, "par exemple 2,15"),
                             ({"effective_from": "2027-07-01", "rate": "1.234"}, "deux décimales"),
                             ({"effective_from": "2027-07-01", "rate": "-1"}, "entre 0 et 100"),
                             ({"effective_from": "nope", "rate": "1"}, "une date")]:
        r = client.post("/app/rates/reference", data=data)
        assert r.status_code == 422, data
        assert field_text in r.get_data(as_text=True), data
    assert db.session.scalar(db.select(db.func.count()).select_from(ReferenceRate)) == before
    assert db.session.scalar(db.select(ReferenceRate.rate_bp).where(
        ReferenceRate.effective_from == date(2026, 1, 1))) == 215


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
