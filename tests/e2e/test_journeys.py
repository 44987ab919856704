"""Debtor journeys in a real browser, each starting from the reminder e-mail as the SMTP server
received it: pay by card through the fake Stripe Checkout page (with the mouse, then with the
keyboard alone), set up a Direct Debit mandate through the fake GoCardless page, raise a dispute.
The creditor's dashboard, open in another browser context and never reloaded, shows each of them
in its live feed. A French debtor sees the French names of CONTRACT §5."""
from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from .conftest import CHROMIUM, SKIP_REASON, WAIT_MS

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=SKIP_REASON)

CARD_OK = "4242424242424242"


def open_reminder(env, page, email: str):
    """Follow the reminder's link: the portal, without the token in the address."""
    link = env.reminder_link(email)
    page.goto(link)
    expect(page).to_have_url(f"{env.url}/portal/")
    return link


def expect_contract_names(page, numbers):
    """CONTRACT §5, English: Pay / Dispute / Promise buttons per open invoice, a PDF link per
    document, Direct Debit and Statement."""
    for n in numbers:
        expect(page.get_by_role("button", name=f"Pay invoice {n}", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name=f"Dispute invoice {n}", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name=f"Promise a date for invoice {n}", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name=f"Invoice {n} (PDF)", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Set up Direct Debit")).to_be_visible()
    expect(page.get_by_role("link", name="Statement of account")).to_be_visible()


def expect_paid(env, page):
    """Back from Checkout on the payment page; 'Paid' once the webhook is in (htmx polls)."""
    expect(page).to_have_url(re.compile(re.escape(env.url) + r"/portal/payments/\d+\?session_id=cs_test_"))
    status = page.get_by_role("status").filter(has_text="Paid")
    expect(status).to_contain_text("Thank you: we have received", timeout=WAIT_MS)
    expect(page.get_by_text("Payment processing")).to_have_count(0)


def expect_thank_you(env, email: str, numbers):
    # The reminder that brought the debtor was today's one e-mail: the thank-you is tomorrow's.
    env.run_dunning_day(on=env.today() + timedelta(days=1))
    mails = env.mail_to(email)
    assert [m.subject for m in mails] == ["Thank you for your payment — Atelier E2E"], [m.subject for m in mails]
    for n in numbers:
        assert n in mails[0].text()
    env.portal_link(mails[0])  # a fresh portal link in it too (CONTRACT §5)


def test_card_payment_from_the_reminder(env, page, watcher, shot):
    ref, email, inv = env.debtor()
    due = [inv["overdue1"], inv["overdue2"]]
    open_reminder(env, page, email)
    watcher.sees(ref, "opened their portal")

    # The reminder's invoices are ticked, the one not yet reminded is not.
    for n in due:
        expect(page.get_by_role("checkbox", name=f"Select invoice {n}")).to_be_checked()
    expect(page.get_by_role("checkbox", name=f"Select invoice {inv['later3']}")).not_to_be_checked()
    expect_contract_names(page, inv.values())
    shot(page, "portal")

    page.get_by_role("button", name="Pay by card").click()
    expect(page).to_have_url(re.compile(re.escape(env.stripe.url) + r"/c/pay/cs_test_"))
    expect(page.get_by_role("listitem")).to_have_text([f"Invoice {due[0]} × 1: €120.00",
                                                       f"Invoice {due[1]} × 1: €80.50"])
    page.get_by_label("Card number").fill(CARD_OK)
    shot(page, "checkout")
    page.get_by_role("button", name="Pay €200.50").click()

    expect_paid(env, page)
    shot(page, "paid")
    watcher.sees(ref, "Paid €200.50 by card")
    shot(watcher.page, "creditor-live-feed")
    page.get_by_role("link", name="Back to your account").click()
    for n in due:  # paid: no longer offered
        expect(page.get_by_role("button", name=f"Pay invoice {n}")).to_have_count(0)
    expect(page.get_by_role("checkbox", name=f"Select invoice {inv['later3']}")).to_be_visible()
    expect_thank_you(env, email, due)


def tab_to(page, role: str, name: str, key="Tab", limit=150):
    """Press Tab (or Shift+Tab) until the focused element has this role and accessible name."""
    for _ in range(limit):
        page.keyboard.press(key)
        focused = page.evaluate("""() => { const e = document.activeElement;
            return e ? [e.tagName.toLowerCase(), e.type || '', e.getAttribute('aria-label') || e.labels?.[0]?.textContent
                        || e.textContent.trim()] : null; }""")
        tag, type_, label = focused or ("", "", "")
        actual = {"a": "link", "button": "button", "input": "checkbox" if type_ == "checkbox" else "textbox"}.get(tag)
        if actual == role and label.strip() == name:
            return
    raise AssertionError(f"{role} {name!r} not reached with {key} in {limit} presses")


def test_card_payment_with_the_keyboard_alone(env, page, watcher, shot):
    ref, email, inv = env.debtor()
    open_reminder(env, page, email)
    # The first Tab reaches the skip link.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    # Tick the invoice the reminder did not preselect, with Space.
    later = inv["later3"]
    tab_to(page, "checkbox", f"Select invoice {later}")
    page.keyboard.press("Space")
    expect(page.get_by_role("checkbox", name=f"Select invoice {later}")).to_be_checked()
    # Go back one control with Shift+Tab and forward again: focus order is the reading order.
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("checkbox", name=f"Select invoice {later}")).not_to_be_focused()
    tab_to(page, "checkbox", f"Select invoice {later}")
    tab_to(page, "button", "Pay by card")
    shot(page, "focus-pay")
    page.keyboard.press("Enter")

    # Fake Stripe Checkout: card field (Tab selects its content; typing replaces it), then Pay.
    expect(page).to_have_url(re.compile(re.escape(env.stripe.url) + r"/c/pay/"))
    tab_to(page, "textbox", "Card number")
    page.keyboard.type("4242 4242 4242 4242")
    tab_to(page, "button", "Pay €245.75")
    shot(page, "checkout")
    page.keyboard.press("Enter")

    expect_paid(env, page)
    watcher.sees(ref, "Paid €245.75 by card")
    tab_to(page, "link", "Back to your account")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{env.url}/portal/")
    expect(page.get_by_text("Nothing is due. Thank you!")).to_be_visible()
    expect_thank_you(env, email, inv.values())


def test_direct_debit_mandate_from_the_reminder(env, page, watcher, shot):
    ref, email, inv = env.debtor()
    open_reminder(env, page, email)
    page.get_by_role("button", name="Set up Direct Debit").click()

    expect(page).to_have_url(re.compile(re.escape(env.gocardless.url) + r"/flow/"))
    expect(page.get_by_role("heading", name="Set up a Direct Debit")).to_be_visible()
    page.get_by_label("Account holder name").fill(f"Debtor {ref}")
    page.get_by_label("IBAN").fill("FR76 3000 6000 0112 3456 7890 189")
    shot(page, "gocardless")
    page.get_by_role("button", name="Set up Direct Debit").click()

    expect(page).to_have_url(f"{env.url}/portal/")
    expect(page.get_by_role("status").filter(has_text="mandate")).to_contain_text("your Direct Debit mandate is set up")
    card = page.locator(".card").filter(has=page.get_by_role("heading", name="SEPA Direct Debit"))
    expect(card).to_contain_text("Mandate pending")
    expect(card).to_contain_text("Fake Bank")
    expect(card).to_contain_text("•••• 89")
    expect(page.get_by_role("button", name="Set up Direct Debit")).to_have_count(0)
    shot(page, "mandate-pending")
    watcher.sees(ref, "Started setting up a Direct Debit mandate")


def test_dispute_from_the_reminder(env, page, watcher, shot):
    ref, email, inv = env.debtor()
    number = inv["overdue1"]
    open_reminder(env, page, email)
    page.get_by_role("button", name=f"Dispute invoice {number}").click()

    # A GET form of its own (forms cannot nest): the address may end with an empty query.
    expect(page).to_have_url(re.compile(re.escape(f"{env.url}/portal/invoices/{number}/dispute") + r"\??$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Dispute invoice {number}")
    # Sent empty: the form comes back with its errors, tied to the fields.
    page.get_by_role("button", name="Send the dispute").click()
    expect(page.get_by_role("group", name="Reason")).to_have_attribute("aria-invalid", "true")
    page.get_by_role("radio", name="Wrong amount").check()
    page.get_by_label("Comment").fill("We agreed on 100.00, not 120.00.")
    shot(page, "form")
    page.get_by_role("button", name="Send the dispute").click()

    expect(page).to_have_url(re.compile(re.escape(env.url) + r"/portal/disputes/\d+$"))
    expect(page.get_by_role("status").filter(has_text="dispute")).to_contain_text("Your dispute is recorded")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Dispute about invoice {number}")
    expect(page.get_by_text("We agreed on 100.00, not 120.00.")).to_be_visible()
    shot(page, "recorded")
    watcher.sees(ref, "disputed invoice")

    page.goto(f"{env.url}/portal/")
    expect(page.get_by_role("button", name=f"Dispute invoice {number}")).to_have_count(0)
    expect(page.get_by_role("link", name="See the dispute")).to_be_visible()


def test_french_debtor_sees_french_names(env, page):
    ref, email, inv = env.debtor(language="fr")
    open_reminder(env, page, email)
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    for n in inv.values():
        expect(page.get_by_role("button", name=f"Payer la facture {n}", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name=f"Facture {n} (PDF)", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name=f"Contester la facture {n}", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name=f"Promettre une date pour la facture {n}", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Payer par carte")).to_be_visible()
    expect(page.get_by_role("button", name="Mettre en place le prélèvement SEPA")).to_be_visible()
    expect(page.get_by_role("link", name="Relevé de compte")).to_be_visible()
    expect(page.get_by_role("button", name="Pay by card")).to_have_count(0)
