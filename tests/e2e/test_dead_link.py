"""A dead link renewed from the phone (CONTRACT §10): the expired link's page at 390 px offers one
button; the e-mail it sends arrives over real SMTP, and its link opens the debtor's portal."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from .conftest import CHROMIUM, PHONE, SKIP_REASON, WAIT_MS
from .test_accessibility import violations

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=SKIP_REASON)


def test_expired_link_renewed_from_its_email_on_a_phone(env, browser, shot):
    from dunning_jobs import outbox
    from portal.extensions import db
    from portal.models import PortalLink, utcnow
    from portal.services import ledger

    ref, email, _numbers = env.debtor(language="en")
    dead = env.api("POST", f"/debtors/{ref}/links").json()["url"]
    with env.app.app_context():
        debtor_id = ledger.get_debtor(env.creditor.id, ref).id  # this debtor's links only: the server is shared
        db.session.execute(update(PortalLink).where(PortalLink.debtor_id == debtor_id)
                           .values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
        db.session.remove()

    ctx = browser.new_context(viewport=PHONE, locale="en-GB")
    ctx.set_default_timeout(WAIT_MS)
    try:
        page = ctx.new_page()
        page.goto(dead)
        expect(page.get_by_role("heading", name="This link can no longer be used")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert violations(page) == []
        assert page.get_by_role("textbox").count() == 0  # one button, no field
        shot(page, "dead-link")
        page.get_by_role("button", name="Send me a new link").click()
        expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
        assert violations(page) == []

        with env.app.app_context():
            try:
                assert outbox.send_pending().sent >= 1
            finally:
                db.session.remove()
        [mail] = env.mail_to(email)
        fresh = env.portal_link(mail)
        assert fresh != dead
        page.goto(fresh)
        expect(page).to_have_url(f"{env.url}/portal/")
        expect(page.get_by_text(f"Debtor {ref[4:]} Ltd").first).to_be_visible()
    finally:
        ctx.close()
