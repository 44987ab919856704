"""axe-core (vendored, tests/e2e/vendor/axe.min.js) in the browser on every GET page of the
portal (blueprint "debtor") and of the back office (blueprint "creditor"), listed from the URL
map so that pages added later are checked too: no serious or critical violation.

Our CSP (`script-src 'self'`) forbids an injected <script>; page.evaluate runs the source over
the DevTools protocol, which the page's CSP does not govern."""
from __future__ import annotations

import hashlib
import os
import re

import pytest
from playwright.sync_api import expect

from .conftest import AXE, CHROMIUM, DESKTOP, HERE, PHONE, SKIP_REASON, WAIT_MS, make_creditor, sign_in

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=SKIP_REASON)

BLOCKING = {"serious", "critical"}
#: GET endpoints that are not pages to look at, and why.
NOT_PAGES = {
    "debtor.open_link": "redirects to /portal/ (its error page is checked below)",
    "debtor.payment_resume": "redirects to the Checkout page (or the payment's page)",
    "debtor.mandate_return": "redirects to /portal/ with a flash message",
    "debtor.invoice_pdf": "PDF", "debtor.statement_pdf": "PDF", "creditor.statement_pdf": "PDF",
    "creditor.ageing_csv": "CSV", "creditor.invoice_pdf": "PDF",
    "debtor.dispute_attachment": "a download", "creditor.dispute_attachment": "a download",
    "creditor.outbox_attachment": "a download", "creditor.approval_preview": "PDF",
    "creditor.login": "checked signed out, below (signed in it redirects)",
    "creditor.outbox_html": "an e-mail body under a `sandbox` CSP (no script runs, axe cannot either): "
                            "checked as a mail client shows it, below",
}


def vendored_axe() -> tuple[str, str]:
    """(version, sha256) recorded in tests/e2e/vendor/README.md."""
    readme = (HERE / "vendor" / "README.md").read_text()
    version = re.search(r"axe-core@([\d.]+)", readme).group(1)
    sha = re.search(r"`axe\.min\.js`.*?`([0-9a-f]{64})`", readme).group(1)
    return version, sha


def test_vendored_axe_is_the_pinned_release():
    version, sha = vendored_axe()
    data = AXE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha
    assert data.startswith(f"/*! axe v{version}".encode())


_AXE_SOURCE: list[str] = []


def test_the_harness_sees_a_serious_violation(browser):
    """axe runs and reports: grey on white text fails contrast (serious), an unnamed button is critical."""
    page = browser.new_page()
    try:
        page.set_content('<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>t</h1>'
                         '<p style="color:#bbb">faint</p><button></button></main></body></html>')
        assert {v["id"] for v in violations(page)} == {"color-contrast", "button-name"}
    finally:
        page.close()


def violations(page) -> list[dict]:
    """Run axe on the page as it stands; the serious and critical violations."""
    if not _AXE_SOURCE:
        _AXE_SOURCE.append(AXE.read_text())
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_AXE_SOURCE[0])
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [(n["target"], n.get("failureSummary", "").replace("\n", " ")) for n in v["nodes"][:5]]}
            for v in result["violations"] if v["impact"] in BLOCKING]


def pages_of(app, blueprint: str, known: dict) -> list[str]:
    out, unknown = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith(blueprint + ".") or "GET" not in rule.methods or rule.endpoint in NOT_PAGES:
            continue
        if set(rule.arguments) <= set(known):
            out.append(rule.build({k: known[k] for k in rule.arguments}, append_unknown=False)[1])
        else:
            unknown.append(rule.endpoint)
    assert not unknown, f"give these pages their arguments, or say in NOT_PAGES why they are not pages: {unknown}"
    return out


def check(page, url: str, found: dict, widths=(DESKTOP,), status=200):
    """Open a page (HTML, with this status), run axe at each width, collect what it finds."""
    response = page.goto(url)
    assert response.status == status and "text/html" in response.headers["content-type"], (url, response.status)
    for viewport in widths:
        page.set_viewport_size(viewport)
        if (v := violations(page)):
            found[f"{url} @{viewport['width']}px"] = v
    page.set_viewport_size(DESKTOP)


@pytest.fixture(scope="module")
def ledger(env):
    """A creditor of its own (part payments allowed) with an English debtor reminded today."""
    from portal.extensions import db
    from portal.models import Creditor, OutboxMessage
    creditor = make_creditor(env.app, "Atelier Accessible")
    with env.app.app_context():
        db.session.get(Creditor, creditor.id).partial_payment_min = 1000
        db.session.commit()
        db.session.remove()
    ref, email, inv = env.debtor(creditor=creditor)
    env.run_dunning_day(creditor)
    [mail] = env.mail_to(email)
    with env.app.app_context():
        message_id = db.session.query(OutboxMessage.id).filter_by(creditor_id=creditor.id).order_by(
            OutboxMessage.id).first()[0]
        db.session.remove()
    return creditor, ref, inv, env.portal_link(mail), message_id


def test_portal_and_back_office_pages_have_no_serious_violation(env, browser, ledger):
    creditor, ref, inv, link, message_id = ledger
    number = inv["overdue1"]
    found: dict = {}
    debtor_ctx = browser.new_context(viewport=DESKTOP, locale="en-GB")
    office_ctx = browser.new_context(viewport=DESKTOP, locale="en-GB")
    try:
        debtor_ctx.set_default_timeout(WAIT_MS)
        office_ctx.set_default_timeout(WAIT_MS)
        page = debtor_ctx.new_page()
        check(page, f"{env.url}/l/not-a-valid-token", found, status=404)  # the error page
        page.goto(link)
        expect(page).to_have_url(f"{env.url}/portal/")
        check(page, f"{env.url}/portal/", found, widths=(PHONE, DESKTOP))

        # Rows the pages need: a card payment left waiting, a dispute on another invoice.
        page.get_by_role("button", name=f"Pay invoice {inv['later3']}").click()
        expect(page).to_have_url(re.compile(re.escape(env.stripe.url)))
        page.go_back()
        from portal.extensions import db
        from portal.models import PaymentAttempt
        with env.app.app_context():
            attempt = db.session.query(PaymentAttempt.id).order_by(PaymentAttempt.id.desc()).first()[0]
            db.session.remove()
        page.goto(f"{env.url}/portal/invoices/{inv['overdue2']}/dispute")
        page.get_by_role("radio", name="Invoice not received").check()
        page.get_by_label("Comment").fill("We never received it.")
        page.get_by_role("button", name="Send the dispute").click()
        expect(page).to_have_url(re.compile(r"/portal/disputes/\d+$"))
        dispute_id = int(page.url.rsplit("/", 1)[1])

        known = {"number": number, "dispute_id": dispute_id, "attempt_id": attempt}
        portal_pages = pages_of(env.app, "debtor", known)
        assert {"/portal/", f"/portal/payments/{attempt}", f"/portal/disputes/{dispute_id}"} <= set(portal_pages)
        for path in portal_pages:
            check(page, env.url + path, found)
        # The payment page of the waiting card payment is checked above; a form with errors too.
        page.goto(f"{env.url}/portal/invoices/{number}/dispute")
        page.get_by_role("button", name="Send the dispute").click()
        expect(page.get_by_role("group", name="Reason")).to_have_attribute("aria-invalid", "true")
        if (v := violations(page)):
            found["dispute form with errors"] = v

        office = office_ctx.new_page()
        check(office, f"{env.url}/app/login", found, widths=(PHONE, DESKTOP))
        sign_in(office, env, creditor, then="")
        known = {"ref": ref, "number": number, "dispute_id": dispute_id, "message_id": message_id}
        office_pages = pages_of(env.app, "creditor", known)
        assert {"/app/", "/app/debtors", "/app/dashboard", f"/app/disputes/{dispute_id}", f"/app/outbox/{message_id}"} <= set(office_pages)
        for path in office_pages:
            check(office, env.url + path, found)
        print(f"axe: {len(portal_pages)} portal and {len(office_pages)} back-office pages, plus the error, "
              "login, invalid-form and e-mail pages")
        check(office, f"{env.url}/app/dashboard", found, widths=(PHONE,))
        # The reminder e-mail as the back office previews it (and a mail client renders it).
        body = office.request.get(f"{env.url}/app/outbox/{message_id}/html")
        assert body.status == 200 and "sandbox" in body.headers["content-security-policy"]
        mail = office_ctx.new_page()
        mail.set_content(body.text())
        if (v := violations(mail)):
            found[f"/app/outbox/{message_id}/html (the reminder e-mail)"] = v
    finally:
        debtor_ctx.close()
        office_ctx.close()
    report = "\n".join(f"{where}:\n" + "\n".join(f"  [{v['impact']}] {v['id']}: {v['help']}\n    {v['nodes']}" for v in vs)
                       for where, vs in found.items())
    assert not found, f"axe found serious or critical violations:\n{report}"
