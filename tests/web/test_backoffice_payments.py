"""Back office: the payments page (which methods are offered, the partial-payment minimum, recent
attempts) and the debtor page's credit, mandate and automatic-collection switch."""
from __future__ import annotations

from portal.extensions import db
from portal.models import Creditor, Debtor, Event
from support import back_office_login, response_text


def test_payments_page_without_providers_says_why(client, creditor, seeded):
    back_office_login(client, creditor)
    page = response_text(client.get("/app/payments"))
    assert "STRIPE_SECRET_KEY" in page and "GOCARDLESS_ACCESS_TOKEN" in page
    assert "No payments through the portal yet." in page or "Aucun règlement" in page


def test_partial_payment_minimum_is_validated_and_recorded(client, app, creditor, seeded):
    back_office_login(client, creditor)
    for bad in ("abc", "-5", "0", "1.234", "1e3"):
        r = client.post("/app/payments/settings", data={"partial_payment_min": bad})
        assert r.status_code == 422, bad
        assert 'aria-invalid="true"' in response_text(r), bad
        assert db.session.get(Creditor, creditor.id).partial_payment_min is None
        db.session.rollback()
    r = client.post("/app/payments/settings", data={"partial_payment_min": "50,00"})
    assert r.status_code == 302
    assert db.session.get(Creditor, creditor.id).partial_payment_min == 5000
    db.session.rollback()
    assert 'value="50.00"' in response_text(client.get("/app/payments"))
    r = client.post("/app/payments/settings", data={"partial_payment_min": ""})
    assert r.status_code == 302
    assert db.session.get(Creditor, creditor.id).partial_payment_min is None
    types = [e.type for e in db.session.query(Event).filter_by(creditor_id=creditor.id)]
    assert types.count("creditor.payment_settings_updated") == 2


def test_auto_collect_switch_is_recorded_and_scoped_to_the_creditor(client, app, creditor, new_creditor, seeded):
    back_office_login(client, creditor)
    r = client.post("/app/debtors/D1/auto-collect", data={"enabled": "1"})
    assert r.status_code == 302
    d1 = db.session.query(Debtor).filter_by(creditor_id=creditor.id, ref="D1").one()
    assert d1.auto_collect is True
    db.session.rollback()
    page = response_text(client.get("/app/debtors/D1"))
    assert "Stop automatic collection" in page or "automatique" in page
    client.post("/app/debtors/D1/auto-collect", data={"enabled": "0"})
    assert db.session.query(Debtor).filter_by(id=d1.id).one().auto_collect is False
    events = db.session.query(Event).filter_by(debtor_id=d1.id, type="debtor.auto_collect").all()
    assert [e.data["enabled"] for e in events] == [True, False]
    db.session.rollback()
    # Another creditor's debtor with the same reference is not reachable.
    other = new_creditor("Other")
    client.post("/app/logout")
    back_office_login(client, other)
    assert client.post("/app/debtors/D1/auto-collect", data={"enabled": "1"}).status_code == 404
    assert db.session.query(Debtor).filter_by(id=d1.id).one().auto_collect is False
