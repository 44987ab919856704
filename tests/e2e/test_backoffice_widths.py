"""The back office at 390 and 1280 px in Debian's chromium (issue 18 "usable at 390 px"): signed in
on the demo data (`flask demo`: five weeks of dunning, disputes, letters, payments), no page
scrolls sideways, in English and in French. One case per page and language, so that a failing page
names itself; the sign-in page is checked signed out."""
from __future__ import annotations

import os

import pytest

from .conftest import CHROMIUM, SKIP_REASON, WAIT_MS, Creditor, sign_in

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=SKIP_REASON)

WIDTHS = (390, 1280)
#: the pages and how to reach the one row each needs (a debtor, an invoice, a dispute, a message)
PAGES = {
    "dashboard": "/app/dashboard", "debtors": "/app/", "debtor": "/app/debtors/{debtor}",
    "invoice": "/app/invoices/{invoice}", "approvals": "/app/approvals", "disputes": "/app/disputes",
    "dispute": "/app/disputes/{dispute}", "outbox": "/app/outbox", "outbox message": "/app/outbox/{message}",
    "letters to post": "/app/outbox/letters", "payments": "/app/payments", "bank": "/app/bank",
    "calls": "/app/calls", "plans": "/app/plans", "rates": "/app/rates", "reports": "/app/reports",
    "dunning report": "/app/reports/dunning", "activity": "/app/activity", "api keys": "/app/api-keys",
    "day's plan": "/app/day", "notifications": "/app/notifications",
}


@pytest.fixture(scope="module")
def demo(env):
    """The demo creditor seeded in the e2e database, and the rows its detail pages show: the debtor
    with the most events, its invoice with the most events, a dispute, a letter in the outbox."""
    from sqlalchemy import func, select

    from dunning_jobs import day as dunning_day
    from portal.extensions import db
    from portal.models import Debtor, Dispute, Event, Invoice, OutboxMessage
    from portal.services import demo as demo_data

    with env.app.app_context():
        creditor, _ = demo_data.seed(run_day=lambda c, day: dunning_day.run(day, creditor_ids=[c.id]))
        cid = creditor.id

        def busiest(column, model, key):
            return db.session.scalar(select(key).join(Event, column == model.id)
                                     .where(Event.creditor_id == cid).group_by(key)
                                     .order_by(func.count().desc(), key).limit(1))
        rows = {"debtor": busiest(Event.debtor_id, Debtor, Debtor.ref),
                "invoice": busiest(Event.invoice_id, Invoice, Invoice.number),
                "dispute": db.session.scalar(select(Dispute.id).where(Dispute.creditor_id == cid).limit(1)),
                "message": db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.creditor_id == cid)
                                             .order_by(OutboxMessage.channel.desc(), OutboxMessage.id).limit(1))}
        db.session.remove()
    assert all(v is not None for v in rows.values()), rows
    return Creditor(cid, demo_data.EMAIL, demo_data.PASSWORD, None), rows


def _set_language(env, creditor_id: int, language: str):
    from portal.extensions import db
    from portal.models import Creditor as CreditorRow
    with env.app.app_context():
        db.session.get(CreditorRow, creditor_id).language = language
        db.session.commit()
        db.session.remove()


@pytest.fixture(scope="module", params=["en", "fr"])
def signed_in(request, env, browser, demo):
    creditor, rows = demo
    _set_language(env, creditor.id, request.param)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    ctx.set_default_timeout(WAIT_MS)
    page = ctx.new_page()
    sign_in(page, env, creditor, then=None)
    yield page, rows, request.param
    ctx.close()


def _widths(page, url: str) -> list[str]:
    """The widths at which `url` scrolls sideways, with what sticks out."""
    wide = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(url)
        scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        if scroll > client:
            culprits = page.evaluate("""(w) => [...document.querySelectorAll('main *, nav *, header *')]
                .filter(e => e.getBoundingClientRect().right > w + 1).slice(0, 4)
                .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && e.className.baseVal === undefined
                     ? '.' + String(e.className).split(' ').join('.') : '')
                     + (e.tagName === 'TABLE' ? ' (headed "' + (e.querySelector('th') || e).textContent.trim() + '")' : ''))""", client)
            wide.append(f"{scroll} px in {client} px at {width}: {', '.join(culprits)}")
    return wide


@pytest.mark.parametrize("name", list(PAGES))
def test_no_back_office_page_scrolls_sideways(env, signed_in, name):
    page, rows, language = signed_in
    url = env.url + PAGES[name].format(**rows)
    response = page.goto(url)
    assert response is not None and response.status == 200, f"{name}: {response and response.status}"
    wide = _widths(page, url)
    assert not wide, f"{name} ({language}) scrolls sideways: {wide}"


@pytest.mark.parametrize("language", ["en-GB", "fr-FR"])
def test_the_sign_in_page_does_not_scroll_sideways(env, browser, language):
    ctx = browser.new_context(viewport={"width": 390, "height": 800}, locale=language)
    try:
        assert not _widths(ctx.new_page(), f"{env.url}/app/login")
    finally:
        ctx.close()
