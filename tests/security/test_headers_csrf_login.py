"""Security headers, CSP-clean HTML, CSRF, login throttling and the login redirect."""
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Event, PortalLink
from support import (InlineFinder, assert_csp_clean_html, assert_security_headers, browser_destination, csrf_token_in,
                     portal_login)


def test_inline_finder_catches_what_it_should():
    """The checker itself: each of these would be blocked by the CSP, so each must be reported."""
    for html in ['<script>alert(1)</script>', '<p style="color:red">x</p>', '<style>p{}</style>',
                 '<a href="javascript:alert(1)">x</a>', '<button onclick="x()">x</button>',
                 '<script src="https://cdn.test/x.js"></script>', '<div hx-on:click="x()"></div>']:
        finder = InlineFinder()
        finder.feed(html)
        assert finder.problems, html
    finder = InlineFinder()
    finder.feed('<script src="/static/x.js" defer></script><p class="a">ok</p>')
    assert finder.problems == []


@pytest.fixture
def app_config(providers_config):
    """Both payment providers configured (fakes), so their buttons and pages are checked too."""
    return providers_config


@pytest.fixture
def full_ledger(seeded, app, creditor):
    """Enough state for every portal and back-office section to render: a paid invoice, a payment,
    partial card payments allowed."""
    from portal.extensions import db
    from portal.models import Creditor
    db.session.get(Creditor, creditor.id).partial_payment_min = 5000
    db.session.commit()
    r = seeded.post("/invoices/F-2/payments", json={"amount": "300.50", "date": "2026-01-05", "reference": "VIR-1"})
    assert r.status_code == 201, r.json
    return seeded


def creditor_login(client, creditor):
    r = client.post("/app/login", data={"email": creditor.email, "password": creditor.password})
    assert r.status_code == 302, r.status_code
    return r


# --- headers and HTML --------------------------------------------------------------------

def test_portal_pages_headers_and_html(client, app, full_ledger, creditor):
    r = client.get("/l/not-a-token")
    assert r.status_code == 404
    assert_security_headers(r, "link error")
    assert_csp_clean_html(r, "link error")

    link_path = portal_login(client, app, "D1", creditor.id).replace("http://portal.test", "")
    r = client.get(link_path)
    assert r.status_code == 303
    assert_security_headers(r, "link redirect")

    pages, _ = get_pages(app, "debtor")
    assert {"/portal/", "/portal/statement", "/portal/invoices/F-1.pdf"} <= set(pages)
    for path in pages:
        r = client.get(path)
        if path == "/portal/mandate/return":  # back from GoCardless: redirects home with a message
            assert r.status_code == 303 and r.headers["Location"].endswith("/portal/"), path
            assert_security_headers(r, path)
            continue
        assert r.status_code == 200, path
        assert_security_headers(r, path)
        if r.mimetype == "text/html":
            assert_csp_clean_html(r, path)
        assert r.headers["Cache-Control"] == "no-store"
    assert b"F-2" in client.get("/portal/").data  # the settled section rendered too

    r = client.get("/portal/invoices/NOPE.pdf")
    assert r.status_code == 404
    assert_security_headers(r, "portal 404")
    assert_csp_clean_html(r, "portal 404")

    r = client.post("/portal/logout")
    assert_security_headers(r, "logout")
    assert_csp_clean_html(r, "logout")
    r = client.get("/portal/")
    assert r.status_code == 401
    assert_security_headers(r, "session ended")
    assert_csp_clean_html(r, "session ended")


# Values for the URL parameters of GET pages; a page needing anything else is listed as skipped.
KNOWN_ARGS = {"ref": "D1", "number": "F-1"}


def get_pages(app, blueprint):
    """Every GET page of a blueprint, so that pages added later are checked too."""
    pages, skipped = [], []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(blueprint + ".") or "GET" not in rule.methods:
            continue
        if set(rule.arguments) <= set(KNOWN_ARGS):
            pages.append(rule.build({k: KNOWN_ARGS[k] for k in rule.arguments}, append_unknown=False)[1])
        else:
            skipped.append(rule.rule)
    return pages, skipped


def test_back_office_pages_headers_and_html(client, app, full_ledger, creditor):
    r = client.get("/app/login")
    assert_security_headers(r, "login")
    assert_csp_clean_html(r, "login")
    r = client.post("/app/login", data={"email": creditor.email, "password": "wrong password"})
    assert r.status_code == 401
    assert_csp_clean_html(r, "login failed")
    creditor_login(client, creditor)
    r = client.post("/app/debtors/D1/links")  # flashes the new link on the debtor page
    assert r.status_code == 302
    pages, _ = get_pages(app, "creditor")
    assert {"/app/", "/app/debtors", "/app/debtors/D1", "/app/invoices/F-1", "/app/activity", "/app/api-keys"} <= set(pages)
    for path in pages + ["/app/debtors?q=Alpha", "/app/invoices/F-2"]:
        r = client.get(path)
        if r.status_code == 302 and path == "/app/login":
            continue  # already signed in
        assert r.status_code == 200, (path, r.status_code)
        assert_security_headers(r, path)
        if r.mimetype == "text/html":
            assert_csp_clean_html(r, path)
        assert r.headers["Cache-Control"] == "no-store"


def test_api_and_health_carry_headers_too(client, api):
    for r in (client.get("/healthz"), api.get("/debtors/none"), client.get("/api/v1/openapi.json")):
        assert r.headers.get("X-Content-Type-Options") == "nosniff"
        assert "frame-ancestors 'none'" in r.headers.get("Content-Security-Policy", "")


# --- CSRF --------------------------------------------------------------------------------

def test_portal_logout_needs_csrf_token(make_app, seeded, creditor):
    strict = make_app(WTF_CSRF_ENABLED=True)
    c = strict.test_client()
    portal_login(c, strict, "D1", creditor.id)
    home = c.get("/portal/")
    assert home.status_code == 200
    r = c.post("/portal/logout")
    assert r.status_code == 400
    r = c.post("/portal/logout", data={"csrf_token": "forged"})
    assert r.status_code == 400
    assert c.get("/portal/").status_code == 200  # still signed in: nothing changed
    # The form's own token works, which shows the 400s above were CSRF and nothing else.
    assert c.post("/portal/logout", data={"csrf_token": csrf_token_in(home.data)}).status_code == 200
    assert c.get("/portal/").status_code == 401


def test_back_office_login_needs_csrf_token(make_app, seeded, creditor):
    strict = make_app(WTF_CSRF_ENABLED=True)
    c = strict.test_client()
    r = c.post("/app/login", data={"email": creditor.email, "password": creditor.password})
    assert r.status_code == 400
    assert c.get("/app/").status_code == 302  # not signed in
    with strict.app_context():
        assert db.session.scalars(select(Event).where(Event.type == "user.logged_in")).all() == []
    token = csrf_token_in(c.get("/app/login").data)
    r = c.post("/app/login", data={"email": creditor.email, "password": creditor.password, "csrf_token": token})
    assert r.status_code == 302
    assert c.get("/app/").status_code == 200


def test_back_office_actions_need_csrf_token(make_app, seeded, creditor):
    strict = make_app(WTF_CSRF_ENABLED=True)
    c = strict.test_client()
    token = csrf_token_in(c.get("/app/login").data)
    c.post("/app/login", data={"email": creditor.email, "password": creditor.password, "csrf_token": token})
    assert c.post("/app/debtors/D1/links").status_code == 400
    with strict.app_context():
        assert db.session.scalars(select(PortalLink)).all() == []
    page = c.get("/app/debtors/D1")
    assert c.post("/app/debtors/D1/links", data={"csrf_token": csrf_token_in(page.data)}).status_code == 302
    with strict.app_context():
        link = db.session.scalars(select(PortalLink)).one()
    assert c.post(f"/app/links/{link.id}/revoke").status_code == 400
    with strict.app_context():
        assert db.session.get(PortalLink, link.id).revoked_at is None


def test_stripe_cancel_url_changes_nothing_and_cancelling_needs_csrf(make_app, seeded, creditor, providers_config,
                                                                     fake_stripe, live_app):
    """Issue 15, 11: the browser comes back from Checkout by GET (Stripe's cancel_url): that shows
    the payment and changes nothing; cancelling is a POST with the page's CSRF token. So is the
    back office's refund."""
    from portal.models import PaymentAttempt
    strict = make_app(WTF_CSRF_ENABLED=True, **providers_config)
    c = strict.test_client()
    portal_login(c, strict, "D1", creditor.id)
    token = csrf_token_in(c.get("/portal/").data)
    r = c.post("/portal/pay", data={"method": "card", "only": "F-1", "csrf_token": token})
    assert r.status_code == 303 and "/c/pay/" in r.headers["Location"]
    sid = r.headers["Location"].rsplit("/", 1)[1]

    def state():
        with strict.app_context():
            attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.provider_ref == sid))
            return attempt.id, attempt.status, fake_stripe.sessions[sid]["status"]
    attempt_id = state()[0]
    for _ in range(2):  # a reload too
        page = c.get(f"/portal/payments/{attempt_id}/cancel")
        assert page.status_code == 200 and state() == (attempt_id, "created", "open")
    assert f'action="/portal/payments/{attempt_id}/cancel"' in page.get_data(as_text=True)
    assert c.post(f"/portal/payments/{attempt_id}/cancel").status_code == 400
    assert c.post(f"/portal/payments/{attempt_id}/cancel", data={"csrf_token": "forged"}).status_code == 400
    assert state() == (attempt_id, "created", "open")
    r = c.post(f"/portal/payments/{attempt_id}/cancel", data={"csrf_token": csrf_token_in(page.data)})
    assert r.status_code == 303 and state() == (attempt_id, "expired", "expired")

    office = make_app(WTF_CSRF_ENABLED=True, **providers_config).test_client()
    token = csrf_token_in(office.get("/app/login").data)
    office.post("/app/login", data={"email": creditor.email, "password": creditor.password, "csrf_token": token})
    assert office.post("/app/payments/1/refund").status_code == 400
    assert office.post("/app/payments/1/refund", data={"csrf_token": "forged"}).status_code == 400
    assert fake_stripe.refunds == {}


# --- back-office login throttling --------------------------------------------------------

def test_login_rate_limited(make_app, seeded, creditor):
    limited = make_app(RATELIMIT_ENABLED=True)
    c = limited.test_client()
    statuses = [c.post("/app/login", data={"email": creditor.email, "password": f"guess {i}"}).status_code
                for i in range(10)]
    assert statuses == [401] * 10
    r = c.post("/app/login", data={"email": creditor.email, "password": creditor.password})
    assert r.status_code == 429  # even the right password waits
    assert c.get("/app/").status_code == 302  # and did not sign in
    assert c.get("/app/login").status_code == 200  # the form itself is still served
    other = limited.test_client()
    r = other.post("/app/login", data={"email": creditor.email, "password": creditor.password},
                   environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert r.status_code == 302


# --- login redirect ----------------------------------------------------------------------

@pytest.mark.parametrize("hops", [0, 1])
def test_login_limit_counts_the_client_behind_a_trusted_proxy_only(make_app, seeded, creditor, hops):
    """Behind one proxy (TRUSTED_PROXY_HOPS=1) each client has its own count; with none trusted, a
    forged X-Forwarded-For is ignored: the socket's peer is counted, however the header varies."""
    c = make_app(RATELIMIT_ENABLED=True, TRUSTED_PROXY_HOPS=hops).test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for i in range(10):
        r = c.post("/app/login", data={"email": creditor.email, "password": f"guess {i}"}, environ_base=proxy,
                   headers={"X-Forwarded-For": "203.0.113.5"})
        assert r.status_code == 401
    r = c.post("/app/login", data={"email": creditor.email, "password": creditor.password}, environ_base=proxy,
               headers={"X-Forwarded-For": "198.51.100.9"})
    assert r.status_code == (302 if hops else 429)


@pytest.mark.parametrize("target", [
    "//evil.test", "https://evil.test", "http://evil.test/app/", "/\\evil.test", "\\\\evil.test",
    "/\\/evil.test", "/\t/evil.test", "/%09/evil.test", "%2F%2Fevil.test", "/%2F/evil.test",
    "https:evil.test", "javascript:alert(1)", "///evil.test", " //evil.test", "/ /evil.test",
])
def test_login_next_never_leaves_the_site(client, creditor, target):
    r = client.post(f"/app/login?next={quote(target, safe='')}",
                    data={"email": creditor.email, "password": creditor.password})
    assert r.status_code == 302
    destination = urlsplit(browser_destination(r.headers["Location"]))
    assert destination.scheme == "http" and destination.netloc == "localhost", r.headers["Location"]


@pytest.mark.parametrize("target, expected", [("/app/activity", "/app/activity"),
                                              ("/app/debtors/D1?x=1", "/app/debtors/D1?x=1")])
def test_login_next_same_site_is_honoured(client, creditor, target, expected):
    r = client.post(f"/app/login?next={quote(target, safe='')}",
                    data={"email": creditor.email, "password": creditor.password})
    assert r.status_code == 302 and r.headers["Location"] == expected
