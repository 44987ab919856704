"""The portal's pages at 320, 390 and 1280 px in Debian's chromium (issue 17 "Layout"): no sideways
scroll on the statement, the dispute pages, the promise page and the error pages, in English and
French; the banner of a firm reminder lists the late-payment charges it claimed, and reads as one
list (each amount on the line of its name) at every width."""
from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from .conftest import CHROMIUM, SKIP_REASON, WAIT_MS, make_creditor

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=SKIP_REASON)

WIDTHS = (320, 390, 1280)


@pytest.fixture(scope="module")
def widths_creditor(env):
    return make_creditor(env.app, "Atelier Largeurs E2E SARL")


def _firm_reminder_link(env, creditor, language: str) -> str:
    """A debtor with two invoices 40 days late, taken through the creditor's ladder to its firm reminder
    (day 15 after the first due date, the step that claims charges); that e-mail's portal link."""
    ref, email, numbers = env.debtor(language=language, creditor=creditor,
                                     invoices=(("late", -40, "1200.00"), ("later", -40, "334.56")))
    due = env.today() - timedelta(days=40)
    for n in (1, 8, 15):
        env.run_dunning_day(creditor, on=due + timedelta(days=n))
    mails = env.mail_to(email)
    return env.portal_link(mails[-1]), numbers


def _no_sideways_scroll(page, what: str):
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{what}: {width} px wide in a {inner} px window"


@pytest.mark.parametrize("language", ["en", "fr"])
def test_no_page_scrolls_sideways_and_the_banner_shows_the_charges(env, browser, widths_creditor, language):
    link, numbers = _firm_reminder_link(env, widths_creditor, language)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    ctx.set_default_timeout(WAIT_MS)
    try:
        page = ctx.new_page()
        page.goto(link)
        expect(page).to_have_url(f"{env.url}/portal/")
        banner = page.locator(".message-banner")
        interest = banner.locator(".banner-interest")
        indemnity = banner.locator(".banner-indemnity")
        expect(interest).to_be_visible()
        label = {"en": ("of which late-payment interest", "of which fixed indemnity", "€80.00"),
                 "fr": ("dont intérêts de retard", "dont indemnité forfaitaire", "80,00\u00a0€")}[language]
        expect(banner.get_by_text(label[0])).to_be_visible()
        expect(indemnity).to_have_text(label[2])  # 40 EUR for each of the two invoices
        assert re.fullmatch(r"(€\d+\.\d\d|\d+,\d\d\u00a0€)", interest.inner_text()), interest.inner_text()

        # A dispute, raised from its form, to look at its page too.
        number = numbers["later2"]
        page.goto(f"{env.url}/portal/invoices/{number}/dispute")
        page.locator("input[name=reason]").first.check()
        page.locator("#comment").fill("The quantities do not match the delivery note.")
        page.locator("form.card button[type=submit]").click()
        page.wait_for_url(re.compile(r"/portal/disputes/\d+$"))
        dispute_url = page.url

        pages = {"statement": f"{env.url}/portal/statement",
                 "dispute form": f"{env.url}/portal/invoices/{numbers['late1']}/dispute",
                 "dispute": dispute_url,
                 "promise": f"{env.url}/portal/invoices/{numbers['late1']}/promise",
                 "not found": f"{env.url}/portal/no-such-page"}
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            page.goto(f"{env.url}/portal/")
            # The banner: each amount on the line of its name, inside the card.
            card = banner.bounding_box()
            for dd in (interest, indemnity):
                box = dd.bounding_box()
                assert box["x"] + box["width"] <= card["x"] + card["width"] + 0.5
                name = dd.locator("xpath=preceding-sibling::dt[1]").bounding_box()
                assert abs(name["y"] - box["y"]) < box["height"], f"{width} px: an amount left its name's line"
            for what, url in pages.items():
                page.goto(url)
                _no_sideways_scroll(page, f"{what} at {width} px ({language})")
            # Amounts never wrap on the statement: each fits on one line.
            page.goto(pages["statement"])
            for cell in page.locator("table.ledger .num:not(:empty)").all()[:12]:
                box = cell.bounding_box()
                line = float(cell.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 24"))
                assert box["height"] < 2 * line, f"{width} px: {cell.inner_text()!r} wraps"
    finally:
        ctx.close()

    # The error pages outside a session: the dead link.
    ctx = browser.new_context(viewport={"width": 320, "height": 800}, locale=language)
    try:
        page = ctx.new_page()
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            page.goto(f"{env.url}/l/not-a-valid-token")
            _no_sideways_scroll(page, f"dead link at {width} px ({language})")
    finally:
        ctx.close()
