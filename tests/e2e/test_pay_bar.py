"""The portal home's pay bar in a real browser (issue 17): the total follows the ticks (static
paybar.js, CSP intact), "Pay by bank transfer" opens the details for exactly the ticked invoices
and the EPC QR code read back from screenshots (zbarimg) asks for that total with the reference
of CONTRACT §7; an early-payment discount lowers what is asked; without JavaScript "Recalculate"
does the same; no sideways scroll at 320, 390 and 1280 px, in English and in French."""
from __future__ import annotations

import os
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from qr_codes import needs_tools, read_png

from .conftest import ARTIFACTS, CHROMIUM, DESKTOP, PHONE, SKIP_REASON, WAIT_MS, make_creditor
from .test_accessibility import violations

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=SKIP_REASON)

SMALL_PHONE = {"width": 320, "height": 640}
IBAN, BIC = "FR7630006000011234567890189", "AGRIFRPP"


@pytest.fixture(scope="module")
def bar_creditor(env):
    """A creditor of its own with card payments (the fake Stripe) and a BIC."""
    return make_creditor(env.app, "Atelier Barre E2E", bic=BIC, legal_name="Atelier Barre E2E SAS")


def set_discount(env, number: str, percent: str, days: int):
    """An early-payment discount until `days` from the creditor's today (set in the database:
    the import of discounts is another part of issue 17)."""
    from sqlalchemy import update

    from portal.debtor.views import pages
    from portal.extensions import db
    from portal.models import Invoice
    with env.app.app_context():
        db.session.execute(update(Invoice).where(Invoice.number == number).values(
            discount_percent=Decimal(percent), discount_until=env.today() + timedelta(days=days)))
        db.session.commit()
        db.session.remove()
    pages.clear()  # no event written behind the services' back: the page cache must forget


def open_portal(env, browser, creditor, ref, viewport=DESKTOP, **options):
    link = env.api("POST", f"/debtors/{ref}/links", creditor).json()["url"]
    ctx = browser.new_context(viewport=viewport, locale="en-GB", **options)
    ctx.set_default_timeout(WAIT_MS)
    page = ctx.new_page()
    errors = []
    # A script refused by the CSP or failing; a missing favicon is no error of ours.
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text or "Refused" in m.text
            else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(link)
    expect(page).to_have_url(f"{env.url}/portal/")
    return ctx, page, errors


def no_sideways_scroll(page, label: str):
    for viewport in (SMALL_PHONE, PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= inner, f"{label}: {width} px wide in a {inner} px window"


def tick(page, number: str, on: bool):
    box = page.get_by_role("checkbox", name=f"Select invoice {number}")
    box.check() if on else box.uncheck()


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_total_follows_the_ticks_and_no_width_scrolls_sideways(env, browser, bar_creditor, shot, language):
    ref, _email, inv = env.debtor(language=language, creditor=bar_creditor)  # 120.00, 80.50, 45.25
    set_discount(env, inv["later3"], "2", 5)  # 2 % of 45.25 = 0.91 -> 44.34 due now
    ctx, page, errors = open_portal(env, browser, bar_creditor, ref, viewport=PHONE)
    try:
        total = page.locator("#pay-total")
        nb = "\u00a0"
        money = (lambda s: "€" + s) if language == "en" else (lambda s: s.replace(".", ",") + nb + "€")
        expect(total).to_have_text(money("244.84"))
        if language == "fr":
            expect(page.locator(".discount")).to_contain_text(f"Escompte de 2{nb}% si payé au plus tard le ")
            expect(page.locator(".discount")).to_contain_text(f"{nb}: 44,34{nb}€")
            expect(page.get_by_role("button", name="Payer par virement")).to_be_visible()
            expect(page.get_by_role("button", name="Payer par carte")).to_be_visible()
            select = "Sélectionner la facture"
        else:
            expect(page.locator(".discount")).to_contain_text("Early-payment discount of 2% if paid by ")
            expect(page.locator(".discount")).to_contain_text(": €44.34")
            select = "Select invoice"
        # The script hides the no-script button; the bar sits at the bottom of a phone's screen.
        expect(page.locator("button.recalc")).to_be_hidden()
        bar = page.locator("#pay-bar").bounding_box()
        assert bar["y"] + bar["height"] <= PHONE["height"] + 1 and bar["y"] > PHONE["height"] / 2, bar
        page.get_by_role("checkbox", name=f"{select} {inv['overdue1']}").uncheck()
        expect(total).to_have_text(money("124.84"))
        page.get_by_role("checkbox", name=f"{select} {inv['later3']}").uncheck()
        expect(total).to_have_text(money("80.50"))
        page.get_by_role("checkbox", name=f"{select} {inv['overdue1']}").check()
        expect(total).to_have_text(money("200.50"))
        no_sideways_scroll(page, f"home ({language})")
        shot(page, "home")
        assert violations(page) == []
        assert not errors, errors
    finally:
        ctx.close()


@needs_tools
def test_pay_by_transfer_reads_back_the_ticked_total_and_reference(env, browser, bar_creditor, shot, request):
    ref, _email, inv = env.debtor(creditor=bar_creditor)
    set_discount(env, inv["overdue2"], "10", 1)  # 10 % of 80.50 = 8.05 -> 72.45 due now
    debtor_reference = env.api("GET", f"/debtors/{ref}", bar_creditor).json()["payment_reference"]
    ctx, page, errors = open_portal(env, browser, bar_creditor, ref)
    test = re.sub(r"\W+", "_", request.node.name).strip("_")
    try:
        tick(page, inv["later3"], False)
        expect(page.locator("#pay-total")).to_have_text("€192.45")  # 120.00 + 72.45
        page.get_by_role("button", name="Pay by bank transfer").click()
        expect(page).to_have_url(re.compile(r"/portal/transfer\?invoice="))
        expect(page.get_by_role("heading", level=1)).to_have_text("Pay €192.45 by bank transfer")
        block = page.locator("#transfer")
        assert block.locator(".reference").inner_text().replace(" ", "") == debtor_reference
        no_sideways_scroll(page, "transfer page")
        shot(page, "transfer")
        for viewport in (PHONE, DESKTOP):
            code = read_png(ARTIFACTS / f"{test}-transfer-{viewport['width']}.png")
            assert (code.amount, code.currency, code.reference) == (Decimal("192.45"), "EUR", debtor_reference)
            assert code.iban == IBAN and code.bic == BIC
        block.get_by_role("button", name="Copy the reference").wait_for()  # copy.js ran (CSP allowed it)
        assert violations(page) == []

        # One invoice ticked: the invoice's own reference, its amount due now.
        page.get_by_role("link", name="Back to your account").click()
        tick(page, inv["overdue1"], False)
        expect(page.locator("#pay-total")).to_have_text("€72.45")
        page.get_by_role("button", name="Pay by bank transfer").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Pay €72.45 by bank transfer")
        own = env.api("GET", f"/invoices/{inv['overdue2']}", bar_creditor).json()["payment_reference"]
        assert page.locator("#transfer .reference").inner_text().replace(" ", "") == own != debtor_reference
        shot(page, "one-invoice")
        code = read_png(ARTIFACTS / f"{test}-one-invoice-{PHONE['width']}.png")
        assert (code.amount, code.reference) == (Decimal("72.45"), own)
        assert not errors, errors
    finally:
        ctx.close()


def test_without_javascript_recalculate_gives_the_total(env, browser, bar_creditor, shot):
    ref, _email, inv = env.debtor(creditor=bar_creditor)
    ctx, page, _errors = open_portal(env, browser, bar_creditor, ref, viewport=PHONE, java_script_enabled=False)
    try:
        expect(page.locator("#pay-total")).to_have_text("€245.75")
        tick(page, inv["overdue2"], False)
        expect(page.locator("#pay-total")).to_have_text("€245.75")  # no script: not yet
        page.get_by_role("button", name="Recalculate").click()
        expect(page).to_have_url(f"{env.url}/portal/#pay-bar")
        expect(page.locator("#pay-total")).to_have_text("€165.25")
        expect(page.get_by_role("checkbox", name=f"Select invoice {inv['overdue2']}")).not_to_be_checked()
        shot(page, "recalculated")
        page.get_by_role("button", name="Pay by bank transfer").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Pay €165.25 by bank transfer")
        # No script: no copy buttons, the written details are there.
        expect(page.locator("#transfer .reference")).to_be_visible()
        expect(page.get_by_role("button", name="Copy the reference")).to_be_hidden()
    finally:
        ctx.close()


def test_the_discount_paid_by_card_settles_the_invoice(env, browser, bar_creditor, shot):
    """Within its last day, the card pays the discounted amount on Stripe Checkout and the
    discount settles the rest through the ledger: the invoice is paid in full."""
    from .test_journeys import CARD_OK, expect_paid

    ref, _email, inv = env.debtor(creditor=bar_creditor, invoices=(("later", 20, "45.25"),))
    number = inv["later1"]
    set_discount(env, number, "2", 5)  # 2 % of 45.25 = 0.91 -> 44.34
    ctx, page, errors = open_portal(env, browser, bar_creditor, ref)
    try:
        expect(page.locator("#pay-total")).to_have_text("€44.34")
        page.get_by_role("button", name="Pay by card").click()
        expect(page).to_have_url(re.compile(re.escape(env.stripe.url) + r"/c/pay/cs_test_"))
        expect(page.get_by_role("listitem")).to_have_text([re.compile(re.escape(number) + r".*€44\.34")])
        page.get_by_label("Card number").fill(CARD_OK)
        shot(page, "checkout-discount")
        page.get_by_role("button", name="Pay €44.34").click()
        expect_paid(env, page)
        shot(page, "paid-discount")
        got = env.api("GET", f"/invoices/{number}", bar_creditor).json()
        assert (got["status"], got["balance"], got["amount_paid"]) == ("paid", "0.00", "45.25"), got
        assert not errors, errors
    finally:
        ctx.close()


def test_the_transfer_page_keeps_long_names_on_a_phone(env, browser, bar_creditor):
    """A 60-character invoice number (the API takes up to 64) wraps on the home and transfer pages
    instead of pushing them sideways, as a long charges label would."""
    ref, _email, _inv = env.debtor(creditor=bar_creditor, invoices=(("overdue", -3, "10.00"),))
    today = env.today()
    number = "LONG-" + "X" * 55
    r = env.api("PUT", f"/invoices/{number}", bar_creditor, json={
        "debtor_ref": ref, "issue_date": (today - timedelta(days=40)).isoformat(),
        "due_date": (today - timedelta(days=10)).isoformat(), "amount": "12.00", "currency": "EUR"})
    assert r.status_code == 201, r.text
    ctx, page, errors = open_portal(env, browser, bar_creditor, ref, viewport=PHONE)
    try:
        no_sideways_scroll(page, "home, long number")
        page.get_by_role("button", name="Pay by bank transfer").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Pay €22.00 by bank transfer")
        no_sideways_scroll(page, "transfer page, long number")
        assert not errors, errors
    finally:
        ctx.close()
