"""CSRF on every state-changing form route, cookie flags, HSTS and redirect parameters — found
from the URL map, so routes added later are covered without editing this file.
(test_headers_csrf_login.py holds the header, CSP and login-`next` checks; not repeated here.)"""
from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from support import browser_destination, csrf_token_in, portal_login

STATE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ARGS = {"ref": "D1", "number": "F-1"}  # int arguments get 1


def state_changing_rules(app):
    out = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/webhooks/", "/static/")):
            continue
        for method in sorted(rule.methods & STATE_METHODS):
            values = {a: ARGS.get(a, 1) for a in rule.arguments}
            out.append((method, rule.build(values, append_unknown=False)[1], rule.endpoint))
    return out


def snapshot(app) -> dict[str, int]:
    """Row counts of every table, and the events: a refused request must leave all of them."""
    with app.app_context():
        return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables}


def test_every_state_changing_route_needs_a_csrf_token(make_app, seeded, creditor):
    strict = make_app(WTF_CSRF_ENABLED=True)
    rules = state_changing_rules(strict)
    endpoints = {e for _m, _p, e in rules}
    # the list is found, not written: make sure it found the forms we know of
    assert {"creditor.login", "creditor.create_link", "creditor.edit_step", "debtor.pay", "debtor.logout",
            "debtor.promise_make", "debtor.dispute_create", "debtor.dispute_reply"} <= endpoints, endpoints

    office = strict.test_client()
    token = csrf_token_in(office.get("/app/login").data)
    r = office.post("/app/login", data={"email": creditor.email, "password": creditor.password, "csrf_token": token})
    assert r.status_code == 302
    portal = strict.test_client()
    portal_login(portal, strict, "D1", creditor.id)

    before = snapshot(strict)
    refused = []
    for method, path, endpoint in rules:
        browser = portal if path.startswith("/portal") else office
        for data in ({}, {"csrf_token": "forged"}):
            r = browser.open(path, method=method, data={**data, "amount": "1", "body": "x", "date": "2030-01-01"})
            refused.append((method, path, r.status_code))
            assert r.status_code == 400, (method, path, data, r.status_code)
    after = snapshot(strict)
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t] and t not in ("portal_link",)}
    assert not changed, changed
    # Both sessions survived the forged posts (logout without a token did nothing).
    assert office.get("/app/").status_code == 200
    assert portal.get("/portal/").status_code == 200


@pytest.mark.parametrize("base, secure", [("https://portal.example", True), ("http://portal.test", False)])
def test_session_cookies_flags_and_hsts(make_app, seeded, creditor, base, secure):
    app = make_app(PORTAL_BASE_URL=base)

    def cookie_header(r):
        headers = r.headers.getlist("Set-Cookie")
        session = [h for h in headers if h.startswith("session=")]
        assert session, headers
        return session[-1]

    def check(header, where):
        attrs = {a.strip().split("=")[0].lower(): a.strip() for a in header.split(";")[1:]}
        assert "httponly" in attrs, (where, header)
        assert attrs.get("samesite", "").lower() == "samesite=lax", (where, header)
        assert ("secure" in attrs) is secure, (where, header)
        assert attrs.get("path") in ("Path=/", None), (where, header)
        assert "domain" not in attrs, (where, header)  # host-only: no sibling sub-domain gets it

    c = app.test_client()
    with app.app_context():
        from portal.services import ledger, links
        url = links.issue(ledger.get_debtor(creditor.id, "D1"), issued_by="creditor").url
    r = c.get(urlsplit(url).path, base_url=base)
    assert r.status_code == 303
    check(cookie_header(r), "portal")
    assert ("Strict-Transport-Security" in r.headers) is secure
    if secure:
        hsts = r.headers["Strict-Transport-Security"]
        assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 15552000, hsts  # 180 days at least

    c = app.test_client()
    r = c.post("/app/login", data={"email": creditor.email, "password": creditor.password}, base_url=base)
    assert r.status_code == 302
    check(cookie_header(r), "back office")
    for h in r.headers.getlist("Set-Cookie"):
        if h.startswith("remember_token="):
            check(h.replace("remember_token=", "session=", 1), "remember")
    assert ("Strict-Transport-Security" in c.get("/app/", base_url=base).headers) is secure
    # The API and the webhooks carry HSTS too under https.
    assert ("Strict-Transport-Security" in c.get("/api/v1/openapi.json", base_url=base).headers) is secure


EVIL = ["//evil.example", "https://evil.example", "http://evil.example/app/", "/\\evil.example", "\\\\evil.example",
        "/\t/evil.example", "javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "///evil.example",
        "https:evil.example", "%2F%2Fevil.example", "/%5Cevil.example", "@evil.example", "http://localhost@evil.example",
        "/\r\n/evil.example", "/app/\r\nLocation: https://evil.example"]  # CR/LF: was a 500 on login (issue 15)
REDIRECT_PARAMS = ["next", "return_to", "redirect", "redirect_uri", "url", "back", "continue", "to", "from"]


def assert_stays(r, current):
    location = r.headers.get("Location")
    if r.status_code in (301, 302, 303, 307, 308) and location:
        dest = urlsplit(browser_destination(location, current))
        # Only the two providers' hosted pages (the fakes) are allowed off-site, and only from the pay forms.
        assert dest.scheme in ("http", "https") and dest.netloc in ("localhost", "portal.test") or \
            dest.netloc.startswith("127.0.0.1:"), (current, location)
    for header in ("Refresh", "HX-Redirect", "HX-Location"):
        assert "evil.example" not in (r.headers.get(header) or ""), (current, header)


@pytest.fixture
def app_config(providers_config):
    return providers_config


def test_no_redirect_parameter_leaves_the_site(make_app, seeded, creditor, app_config):
    """Every GET page and every form, signed in and not, with every usual redirect parameter set
    to an off-site target: no answer sends the browser elsewhere (`next` on login included)."""
    app = make_app(**app_config)
    office, portal, anonymous = app.test_client(), app.test_client(), app.test_client()
    office.post("/app/login", data={"email": creditor.email, "password": creditor.password})
    portal_login(portal, app, "D1", creditor.id)
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/webhooks/", "/static/", "/l/")):
            continue
        path = rule.build({a: ARGS.get(a, 1) for a in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods & {"GET", "POST"}):
            for browser in (office, portal, anonymous):
                for target in EVIL:
                    query = "&".join(f"{p}={quote(target, safe='')}" for p in REDIRECT_PARAMS)
                    data = {"email": creditor.email, "password": creditor.password} if rule.endpoint == \
                        "creditor.login" else {}
                    r = browser.open(f"{path}?{query}", method=method, data={**data, **{p: target for p in
                                                                                       REDIRECT_PARAMS}})
                    assert r.status_code < 500, (method, path, r.status_code)
                    assert_stays(r, "http://localhost" + path)
                    checked += 1
                    if rule.endpoint == "creditor.login" and method == "POST":
                        office.post("/app/login", data=data)  # signed in again for the next pages
    assert checked > 500
