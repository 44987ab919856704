"""Bank reconciliation in a real browser (CONTRACT §8): the creditor uploads a camt.053 statement
on *Bank reconciliation*; the transfer quoting an invoice's reference is matched at once, the
transfer without a reference is suggested with its reason, confirmed in one click, and both
invoices are paid as the API reports them; uploading the same file again records nothing."""
from __future__ import annotations

import os
import uuid

import pytest
from playwright.sync_api import expect

from recon_files import Entry, camt053

from .conftest import CHROMIUM, DESKTOP, SKIP_REASON, WAIT_MS, sign_in

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=SKIP_REASON)


def test_upload_a_statement_confirm_a_suggestion_and_invoices_are_paid(env, browser, tmp_path, shot):
    tag = uuid.uuid4().hex[:8]  # the bank's references, and an amount no other test's debtor owes
    odd = f"{7000 + int(tag[:4], 16) % 2000}.{int(tag[4:6], 16) % 100:02d}"
    ref, _email, numbers = env.debtor(invoices=(("first", -10, "120.00"), ("second", -5, odd)))
    first, second = numbers["first1"], numbers["second2"]
    reference = env.api("GET", f"/invoices/{first}").json()["payment_reference"]
    today = env.today()
    statement = tmp_path / "releve.xml"
    statement.write_bytes(camt053([Entry("120.00", today, f"E2E-{tag}-1", "DEBTOR LTD", rf=reference),
                                   Entry(odd, today, f"E2E-{tag}-2", "M. SOMEONE", "virement")]))

    ctx = browser.new_context(viewport=DESKTOP, locale="en-GB")
    ctx.set_default_timeout(WAIT_MS)
    try:
        page = ctx.new_page()
        sign_in(page, env, env.creditor, then="/app/bank")
        page.get_by_label("Statement file").set_input_files(str(statement))
        page.get_by_role("button", name="Import", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("2 new transfers of 2 (1 matched, 1 suggested")

        suggestion = page.locator("section", has=page.get_by_role("heading", name="Suggested matches")) \
            .get_by_role("row").filter(has_text="M. SOMEONE")
        expect(suggestion).to_contain_text(second)
        expect(suggestion).to_contain_text("an open invoice of exactly this amount")
        shot(page, "suggested")
        suggestion.get_by_role("button", name="Confirm").click()
        matched = page.locator("section", has=page.get_by_role("heading", name="Recently matched"))
        expect(matched.get_by_role("row").filter(has_text="M. SOMEONE")).to_contain_text(second)
        expect(matched.get_by_role("row").filter(has_text="DEBTOR LTD")).to_contain_text(first)

        for number in (first, second):
            invoice = env.api("GET", f"/invoices/{number}").json()
            assert (invoice["status"], invoice["balance"]) == ("paid", "0.00"), invoice

        page.get_by_label("Statement file").set_input_files(str(statement))
        page.get_by_role("button", name="Import", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("0 new transfers of 2")
        assert len(env.api("GET", "/bank-transactions?status=matched").json()["transactions"]) >= 2
    finally:
        ctx.close()
