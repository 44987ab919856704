"""The portal home's pay-by-transfer block in a real browser (CONTRACT §7): the EPC QR code read
back by zbarimg from full-page screenshots at phone and desktop width asks for the total shown,
with the reference shown and the creditor's IBAN; the copy buttons (static/copy.js, CSP intact)
put the compact values on the clipboard; axe finds nothing serious on either page."""
from __future__ import annotations

import os
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from qr_codes import needs_tools, read_png

from .conftest import ARTIFACTS, CHROMIUM, DESKTOP, PHONE, SKIP_REASON, WAIT_MS, make_creditor
from .test_accessibility import violations

pytestmark = [pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=SKIP_REASON), needs_tools]

IBAN, BIC, LEGAL_NAME = "FR7630006000011234567890189", "AGRIFRPP", "Atelier Virement E2E SAS"


@pytest.fixture(scope="module")
def transfer_creditor(env):
    return make_creditor(env.app, "Atelier Virement E2E", bic=BIC, legal_name=LEGAL_NAME)


def test_home_qr_code_read_back_from_screenshots_and_copy_buttons(env, browser, transfer_creditor, shot):
    ref, _email, _numbers = env.debtor(creditor=transfer_creditor)  # 120.00 + 80.50 + 45.25 open
    expected_reference = env.api("GET", f"/debtors/{ref}", transfer_creditor).json()["payment_reference"]
    link = env.api("POST", f"/debtors/{ref}/links", transfer_creditor).json()["url"]
    ctx = browser.new_context(viewport=DESKTOP, locale="en-GB", permissions=["clipboard-read", "clipboard-write"])
    ctx.set_default_timeout(WAIT_MS)
    errors = []
    try:
        page = ctx.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(link)
        expect(page).to_have_url(f"{env.url}/portal/")
        block = page.locator("#transfer")
        total = page.locator(".total").filter(has_text="Total due").locator("strong").inner_text()
        assert total == "€245.75"
        shown = block.locator(".reference").inner_text()
        assert shown.replace(" ", "") == expected_reference and " " in shown  # groups of four
        shot(page, "home")
        for viewport in (PHONE, DESKTOP):
            code = read_png(ARTIFACTS / f"{_test_name()}-home-{viewport['width']}.png")
            assert (code.amount, code.currency) == (Decimal("245.75"), "EUR")
            assert code.reference == expected_reference and code.iban == IBAN and code.bic == BIC
            assert code.name == LEGAL_NAME

        # The script shows the copy buttons; each puts the compact value on the clipboard.
        for name, value, said in (("Copy the reference", expected_reference, "Reference copied."),
                                  ("Copy the IBAN", IBAN, "IBAN copied."), ("Copy the BIC", BIC, "BIC copied.")):
            button = block.get_by_role("button", name=name, exact=True)
            expect(button).to_be_visible()
            button.click()
            expect(button).to_have_text("Copied")
            expect(block.locator(".copy-status")).to_have_text(said)
            assert page.evaluate("navigator.clipboard.readText()") == value
            expect(button).to_have_text("Copy", timeout=5000)
        assert violations(page) == []  # axe, with the copy buttons shown
        # The statement asks for the whole account too: the debtor's reference, the same code.
        page.get_by_role("link", name="Statement of account").click()
        expect(page.locator("#transfer .reference")).to_have_text(shown)
        shot(page, "statement")
        code = read_png(ARTIFACTS / f"{_test_name()}-statement-{DESKTOP['width']}.png")
        assert code.amount == Decimal("245.75") and code.reference == expected_reference
        assert violations(page) == []
        assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    finally:
        ctx.close()


def _test_name() -> str:
    # The `shot` fixture names files after the test function (parametrised ids are not used here).
    return "test_home_qr_code_read_back_from_screenshots_and_copy_buttons"
