"""The portal's SMS opt-out: the same choice as a STOP reply, recorded as an event, and the cached
account page never shows the old choice (CONTRACT §9)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Debtor, Event
from support import Api, buttons, flashes, portal_login, portal_text

TWILIO = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t" * 32, "TWILIO_FROM": "+33757000001",
          "TWILIO_API_BASE": "http://127.0.0.1:9"}  # never called: nothing is sent here


@pytest.fixture
def app_config():
    return TWILIO


def _debtor(api, ref, phone, language="fr"):
    r = api.put(f"/debtors/{ref}", json={"name": f"Client {ref}", "email": f"{ref.lower()}@example.com",
                                        "language": language, "phone": phone})
    assert r.status_code in (200, 201), r.json


def _state(ref):
    db.session.expire_all()
    return db.session.scalar(select(Debtor.sms_opt_out).where(Debtor.ref == ref))


def test_stop_and_start_in_the_portal(app, client, creditor):
    _debtor(Api(client, creditor), "D1", "06 12 34 56 78", language="en")
    portal_login(client, app, "D1", creditor.id)
    page = portal_text(client)  # rendered and cached now
    assert "Stop text messages" in buttons(page) and "Receive text messages again" not in buttons(page)
    assert portal_text(client) == page  # the cache serves it

    r = client.post("/portal/sms", data={"sms": "stop"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/portal/#contact-h")
    assert _state("D1") is True
    page = portal_text(client)
    assert flashes(page) == ["You will no longer receive text messages from us."]
    assert "Receive text messages again" in buttons(page) and "Stop text messages" not in buttons(page)
    page = portal_text(client)  # from the cache again (no flash): still the new state
    assert "Receive text messages again" in buttons(page)

    client.post("/portal/sms", data={"sms": "start"})
    assert _state("D1") is False
    assert "Stop text messages" in buttons(portal_text(client))
    got = [(e.type, e.actor, e.data["via"]) for e in db.session.scalars(select(Event).where(
        Event.type.like("sms.%")).order_by(Event.id))]
    assert got == [("sms.opted_out", "debtor", "portal"), ("sms.opted_in", "debtor", "portal")]


def test_the_choice_in_french(app, client, creditor):
    _debtor(Api(client, creditor), "D1", "+33612345678")
    portal_login(client, app, "D1", creditor.id)
    assert "Ne plus recevoir de SMS" in buttons(portal_text(client))
    client.post("/portal/sms", data={"sms": "stop"})
    page = portal_text(client)
    assert "Recevoir de nouveau les SMS" in buttons(page)
    assert "Vous ne recevez plus de SMS de notre part au 06\u00a012\u00a034\u00a056\u00a078." in page


def test_stopping_twice_records_once(app, client, creditor):
    _debtor(Api(client, creditor), "D1", "+33612345678")
    portal_login(client, app, "D1", creditor.id)
    client.post("/portal/sms", data={"sms": "stop"})
    client.post("/portal/sms", data={"sms": "stop"})
    assert len(db.session.scalars(select(Event).where(Event.type == "sms.opted_out")).all()) == 1


def test_no_phone_no_choice(app, client, creditor):
    r = Api(client, creditor).put("/debtors/D1", json={"name": "Sans Tel", "email": "d1@example.com", "language": "en"})
    assert r.status_code == 201
    portal_login(client, app, "D1", creditor.id)
    assert "Stop text messages" not in buttons(portal_text(client))
    assert client.post("/portal/sms", data={"sms": "stop"}).status_code == 404


def test_without_sms_configured_the_choice_is_not_offered(make_app, creditor):
    app = make_app()  # no TWILIO_*: nothing would be texted anyway
    client = app.test_client()
    _debtor(Api(client, creditor), "D1", "+33612345678", language="en")
    with app.app_context():
        portal_login(client, app, "D1", creditor.id)
    assert "Stop text messages" not in buttons(portal_text(client))


def test_the_form_needs_its_csrf_token(make_app, creditor):
    app = make_app(WTF_CSRF_ENABLED=True, **TWILIO)
    client = app.test_client()
    with app.app_context():
        _debtor(Api(client, creditor), "D1", "+33612345678", language="en")
        portal_login(client, app, "D1", creditor.id)
    page = client.get("/portal/").get_data(as_text=True)
    assert client.post("/portal/sms", data={"sms": "stop"}).status_code == 400
    with app.app_context():
        assert _state("D1") is False
    token = re.search(r'action="/portal/sms".*?name="csrf_token" value="([^"]+)"', page, re.S).group(1)
    assert client.post("/portal/sms", data={"sms": "stop", "csrf_token": token}).status_code == 303
    with app.app_context():
        assert _state("D1") is True
