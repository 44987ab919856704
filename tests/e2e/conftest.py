"""Browser journeys: the app served over real HTTP, real SMTP, the fake payment providers, and
Debian's chromium driven by Playwright (never a downloaded browser).

One live server per session (SQLite file in tmp, CSRF on, rate limits off), one creditor whose
back office watches the live feed in its own browser context, and one fresh browser context per
test for the debtor. Without /usr/bin/chromium every test here is skipped with the reason shown.
"""
from __future__ import annotations

import os
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
HERE = Path(__file__).parent
ARTIFACTS = HERE / "artifacts"
AXE = HERE / "vendor" / "axe.min.js"
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 800}
SKIP_REASON = f"browser journeys need Debian's chromium at {CHROMIUM} (.ci/run installs it)"
# What an element a test waits for may take: the status page polls every 2 s, the feed every 3 s.
WAIT_MS = 15_000


def pytest_collection_modifyitems(config, items):
    """No chromium: skip (never fail) the whole package, with the reason in the summary."""
    if os.access(CHROMIUM, os.X_OK):
        return
    mark = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(mark)


# --- the live server ---------------------------------------------------------------------------

class _Dispatch:
    """A WSGI app to hand make_server before the Flask app exists: the app needs the server's
    port in PORTAL_BASE_URL, the server needs an app."""
    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@dataclass
class Creditor:
    id: int
    email: str
    password: str
    api_key: str


@dataclass
class Env:
    app: object
    url: str
    smtp: object
    stripe: object
    gocardless: object
    creditor: Creditor

    # REST API of CONTRACT §4, over HTTP like an integrator
    def api(self, method: str, path: str, creditor: Creditor | None = None, **kwargs):
        import requests
        key = (creditor or self.creditor).api_key
        r = requests.request(method, f"{self.url}/api/v1{path}", headers={"Authorization": f"Bearer {key}"},
                             timeout=10, **kwargs)
        return r

    def today(self):
        from portal.models import Creditor as CreditorRow
        from portal.domain.calendar import today_for
        from portal.extensions import db
        with self.app.app_context():
            return today_for(db.session.get(CreditorRow, self.creditor.id))

    def debtor(self, language="en", invoices=(("overdue", -3, "120.00"), ("overdue", -3, "80.50"),
                                              ("later", 20, "45.25")), creditor: Creditor | None = None):
        """A new debtor with invoices due `days` from today; (ref, email, {tag: number})."""
        tag = uuid.uuid4().hex[:6].upper()
        ref, email = f"E2E-{tag}", f"debtor-{tag.lower()}@example.com"
        r = self.api("PUT", f"/debtors/{ref}", creditor, json={"name": f"Debtor {tag} Ltd", "email": email,
                                                                "language": language})
        assert r.status_code == 201, r.text
        today, numbers = self.today(), {}
        for i, (label, days, amount) in enumerate(invoices, 1):
            number = f"INV-{tag}-{i}"
            due = today + timedelta(days=days)
            r = self.api("PUT", f"/invoices/{number}", creditor, json={
                "debtor_ref": ref, "issue_date": (due - timedelta(days=30)).isoformat(),
                "due_date": due.isoformat(), "amount": amount, "currency": "EUR"})
            assert r.status_code == 201, r.text
            numbers[f"{label}{i}"] = number
        return ref, email, numbers

    def run_dunning_day(self, creditor: Creditor | None = None, on=None):
        """The creditor's dunning day for today (or the date `on`), then the outbox over real SMTP."""
        from dunning_jobs import day
        from portal.extensions import db
        with self.app.app_context():
            try:
                return day.run(on, creditor_ids=[(creditor or self.creditor).id])
            finally:
                db.session.remove()

    def mail_to(self, address: str) -> list:
        """Take (remove) what the SMTP server received for one address, oldest first."""
        handler = self.smtp.handler
        with handler.lock:
            mine = [m for m in handler.messages if address in m.rcpt_tos]
            handler.messages[:] = [m for m in handler.messages if address not in m.rcpt_tos]
        return mine

    def portal_link(self, message) -> str:
        """The portal link of a received e-mail, from its HTML part (what the debtor clicks)."""
        links = re.findall(r'href="(' + re.escape(self.url) + r'/l/[^"]+)"', message.html())
        assert links, message.html()[:2000]
        assert all(link == links[0] for link in links)
        assert links[0] in message.text()  # the text part carries the same link
        return links[0]

    def reminder_link(self, email: str) -> str:
        """Run the day; the one reminder e-mail the debtor received; its portal link."""
        self.run_dunning_day()
        mails = self.mail_to(email)
        assert len(mails) == 1, [m.subject for m in mails]
        return self.portal_link(mails[0])


def _migrate(app):
    from flask_migrate import upgrade
    with app.app_context():
        upgrade()


def make_creditor(app, name: str, **details) -> Creditor:
    from portal.extensions import db
    from portal.services import tenants
    email = f"owner-{uuid.uuid4().hex[:8]}@creditor.test"
    password = "correct horse battery"
    with app.app_context():
        row, key = tenants.create_creditor(name=name, email=email, password=password, language="en",
                                           iban="FR7630006000011234567890189", **details)
        info = Creditor(row.id, email, password, key)
        db.session.remove()
    return info


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    from werkzeug.serving import make_server

    from fakes.gocardless_server import FakeGoCardless
    from fakes.smtp_server import SmtpServer
    from fakes.stripe_server import FakeStripe
    from portal import create_app
    from portal.extensions import db

    smtp, stripe, gocardless = SmtpServer().start(), FakeStripe().start(), FakeGoCardless().start()
    dispatch = _Dispatch()
    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    database = tmp_path_factory.mktemp("e2e") / "relance.db"
    app = create_app({
        "SECRET_KEY": "e2e-secret-key", "DATABASE_URL": f"sqlite:///{database}", "PORTAL_BASE_URL": url,
        "WTF_CSRF_ENABLED": True, "RATELIMIT_ENABLED": False, "RATELIMIT_STORAGE_URI": "memory://",
        "SMTP_URL": smtp.url, "MAIL_FROM": "Atelier E2E <relances@atelier.test>",
        "STRIPE_SECRET_KEY": stripe.api_key, "STRIPE_WEBHOOK_SECRET": stripe.webhook_secret,
        "STRIPE_API_BASE": stripe.url, "GOCARDLESS_ACCESS_TOKEN": gocardless.access_token,
        "GOCARDLESS_WEBHOOK_SECRET": gocardless.webhook_secret, "GOCARDLESS_BASE_URL": gocardless.url})
    _migrate(app)
    dispatch.app = app
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    stripe.webhook_url = f"{url}/webhooks/stripe"
    gocardless.webhook_url = f"{url}/webhooks/gocardless"
    try:
        yield Env(app, url, smtp, stripe, gocardless, make_creditor(app, "Atelier E2E"))
    finally:
        server.shutdown()
        server.server_close()
        for fake in (stripe, gocardless, smtp):
            fake.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --- the browser -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport=DESKTOP, locale="en-GB")
    ctx.set_default_timeout(WAIT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


def sign_in(page, env: Env, creditor: Creditor, then: str = "/app/dashboard"):
    """The back-office login form, CSRF token and all."""
    page.goto(f"{env.url}/app/login")
    page.get_by_label("E-mail").fill(creditor.email)
    page.get_by_label("Password").fill(creditor.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/app/(?!login)"))
    if then:
        page.goto(env.url + then)


class Watcher:
    """The creditor on /app/dashboard in a browser context of its own, never reloaded: each
    journey waits for its events to appear in the live feed (htmx polls every 3 s)."""

    def __init__(self, page):
        self.page = page
        page.evaluate("window.__e2e_not_reloaded = true")

    def sees(self, ref: str, text: str):
        from playwright.sync_api import expect
        row = (self.page.locator("#feed li")
               .filter(has=self.page.locator(f'a[href$="/debtors/{ref}"]')).filter(has_text=text))
        expect(row.first).to_be_visible(timeout=WAIT_MS)
        assert self.page.evaluate("window.__e2e_not_reloaded === true"), "the dashboard was reloaded"
        return row.first


@pytest.fixture(scope="session")
def watcher(browser, env):
    ctx = browser.new_context(viewport=DESKTOP, locale="en-GB")
    ctx.set_default_timeout(WAIT_MS)
    page = ctx.new_page()
    sign_in(page, env, env.creditor)
    yield Watcher(page)
    ctx.close()


@pytest.fixture
def shot(request):
    """shot(page, step): screenshots at phone and desktop width into tests/e2e/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    test = re.sub(r"\W+", "_", request.node.name).strip("_")

    def take(page, step: str):
        size = page.viewport_size
        for viewport in (PHONE, DESKTOP):
            page.set_viewport_size(viewport)
            page.screenshot(path=str(ARTIFACTS / f"{test}-{step}-{viewport['width']}.png"), full_page=True)
        page.set_viewport_size(size)
    return take
