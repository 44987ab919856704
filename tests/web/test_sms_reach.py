"""creditor/_debtor_sms.html: whether SMS steps reach a debtor, and why they go by e-mail."""
from __future__ import annotations

import html
import re

import pytest
from flask import render_template
from sqlalchemy import select

from portal.extensions import db
from portal.models import Debtor
from portal.services import sms_inbox
from support import Api

TWILIO = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t" * 32, "TWILIO_FROM": "+33757000001"}


def _debtor(client, creditor, phone):
    body = {"name": "Client", "email": "c@example.com", "language": "fr"}
    assert Api(client, creditor).put("/debtors/D1", json=body).status_code in (200, 201)
    debtor = db.session.scalar(select(Debtor).where(Debtor.ref == "D1"))
    # As typed: PUT /debtors keeps E.164 only, a number stored before it checked may be anything.
    debtor.phone = phone
    db.session.commit()
    return debtor


def _said(app, debtor, lang="en") -> str:
    with app.test_request_context(f"/app/debtors/{debtor.ref}"):
        from flask import g
        from flask_babel import refresh
        g.locale = lang
        refresh()  # the test's app context (and its cached locale) is shared by these renders
        page = render_template("creditor/_debtor_sms.html", debtor=debtor)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.fixture
def app_config():
    return TWILIO


def test_a_mobile_number_is_reached(app, client, creditor):
    said = _said(app, _debtor(client, creditor, "06 12 34 56 78"))
    assert "SMS steps reach this debtor 06 12 34 56 78" in said and "e-mail" not in said


@pytest.mark.parametrize("phone,why", [(None, "No phone number on file."),
                                       ("01 45 67 89 01", "01 45 67 89 01 is not a mobile number."),
                                       ("12345", "12345 is not a valid phone number.")])
def test_no_mobile_goes_by_email(app, client, creditor, phone, why):
    said = _said(app, _debtor(client, creditor, phone))
    assert why in said and "SMS steps go by e-mail" in said and "reach this debtor" not in said


def test_opted_out_says_since_when(app, client, creditor):
    debtor = _debtor(client, creditor, "+33612345678")
    sms_inbox.portal_choice(debtor.id, True)
    db.session.refresh(debtor)
    said = _said(app, debtor)
    assert re.search(r"Opted out of text messages on \w+ \d+, \d{4}\. SMS steps go by e-mail", said), said
    assert "Ne souhaite plus recevoir de SMS depuis le" in _said(app, debtor, "fr")


def test_not_configured_goes_by_email(make_app, creditor):
    app = make_app()
    with app.app_context():
        debtor = _debtor(app.test_client(), creditor, "+33612345678")
        said = _said(app, debtor)
    assert "SMS is not set up on this Relance (Twilio)." in said and "SMS steps go by e-mail" in said
