"""Plain helpers the tests share: the app's test config, the creditor API through the test client,
logging into the portal and the back office, reading pages, counting rows, delivering webhooks,
the security checks every page must pass, and a GoCardless mandate set up end to end.

Fixtures and hooks stay in conftest.py; this module is imported by name (`from support import …`),
tests/ being on sys.path (pyproject: [tool.pytest.ini_options] pythonpath).
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin

from sqlalchemy import func, select

from portal.extensions import db

BASE_CONFIG = {"SECRET_KEY": "test-secret-key", "TESTING": True, "WTF_CSRF_ENABLED": False,
               "RATELIMIT_ENABLED": False, "PORTAL_BASE_URL": "http://portal.test",
               "RATELIMIT_STORAGE_URI": "memory://"}
#: the IBAN every test creditor and test mandate uses
IBAN = "FR7630006000011234567890189"


def migrate(app):
    from flask_migrate import upgrade
    with app.app_context():
        upgrade()


# --- the creditor and its API ------------------------------------------------------------------

@dataclass
class CreditorInfo:
    id: int
    email: str
    password: str
    api_key: str

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.api_key}"}


class Api:
    """The creditor REST API through the test client, with a bearer key."""

    def __init__(self, client, creditor: CreditorInfo):
        self.client, self.headers = client, creditor.headers

    def __getattr__(self, method):
        def call(path, **kwargs):
            return getattr(self.client, method)("/api/v1" + path, headers=self.headers, **kwargs)
        return call


def put_ledger(api, invoices, debtors=(("D1", "Alpha SARL", "fr"), ("D2", "Beta Ltd", "en"))):
    """Debtors (ref, name, language) and invoices (number, debtor ref, due date, amount) issued
    30 days before due, through the API."""
    for ref, name, language in debtors:
        r = api.put(f"/debtors/{ref}", json={"name": name, "email": f"{name.split()[0].lower()}@example.com",
                                             "language": language})
        assert r.status_code in (200, 201), r.json
    for number, ref, due, amount in invoices:
        r = api.put(f"/invoices/{number}", json={"debtor_ref": ref, "issue_date": (due - timedelta(days=30)).isoformat(),
                                                 "due_date": due.isoformat(), "amount": amount, "currency": "EUR"})
        assert r.status_code == 201, r.json
    return api


# --- signing in --------------------------------------------------------------------------------

def portal_login(client, app, debtor_ref: str, creditor_id: int, **issue_kwargs):
    """Open a fresh portal link for a debtor in this client; return the link's URL."""
    from portal.services import ledger, links
    with app.app_context():
        debtor = ledger.get_debtor(creditor_id, debtor_ref)
        url = links.issue(debtor, issued_by="creditor", **issue_kwargs).url
    r = client.get(url.replace("http://portal.test", ""))
    assert r.status_code == 303, r.data
    return url


def back_office_login(client, who):
    """Sign a creditor's user into the back office in this client; the client."""
    r = client.post("/app/login", data={"email": who.email, "password": who.password})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return client


# --- reading pages and rows --------------------------------------------------------------------

def count(model, *where) -> int:
    """Rows of `model` matching `where`, read afresh (the test's session may hold stale objects)."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def look(fn):
    """Read through the test's own session in a transaction of its own: rows as committed now."""
    db.session.rollback()
    try:
        return fn()
    finally:
        db.session.rollback()


def portal_text(client, path="/portal/") -> str:
    """A page as text, character references resolved."""
    return html.unescape(client.get(path).get_data(as_text=True))


def response_text(response) -> str:
    """The page with character references resolved (a translated apostrophe may come either way)."""
    return html.unescape(response.get_data(as_text=True))


def flashes(text: str) -> list[str]:
    return re.findall(r'<p class="flash [^"]*" role="(?:status|alert)">([^<]*)</p>', text)


def buttons(text: str) -> list[str]:
    """Accessible names of the page's buttons: aria-label, else the text content."""
    names = []
    for attrs, inner in re.findall(r"<button([^>]*)>(.*?)</button>", text, re.S):
        label = re.search(r'aria-label="([^"]*)"', attrs)
        names.append(label.group(1) if label else " ".join(re.sub(r"<[^>]+>", " ", inner).split()))
    return names


# --- webhooks over HTTP ------------------------------------------------------------------------

def post_webhook(url: str, body: bytes, headers: dict):
    import requests
    return requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=30)


def deliver_ten_times(url: str, body: bytes, headers: dict) -> list[int]:
    """The same webhook five times at once (released together), then five times in a row; the
    status codes answered."""
    import threading
    answers: list[int] = []
    barrier = threading.Barrier(5, timeout=120)

    def deliver():
        barrier.wait()
        answers.append(post_webhook(url, body, headers).status_code)
    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for _ in range(5):
        answers.append(post_webhook(url, body, headers).status_code)
    return answers


# --- security checks ---------------------------------------------------------------------------

def csp_directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out.setdefault(words[0].lower(), [w.lower() for w in words[1:]])  # first one wins (CSP3)
    return out


def assert_security_headers(response, where):
    h = response.headers
    csp = h.get("Content-Security-Policy")
    assert csp, where
    d = csp_directives(csp)
    scripts = d.get("script-src", d.get("default-src"))
    assert scripts is not None, where
    for unsafe in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:", "blob:"):
        assert unsafe not in scripts, (where, unsafe)
    styles = d.get("style-src", d.get("default-src"))
    assert styles is not None and "'unsafe-inline'" not in styles, where
    assert d.get("frame-ancestors") == ["'none'"], where
    assert d.get("object-src") == ["'none'"], where
    assert h.get("X-Content-Type-Options") == "nosniff", where
    # Portal addresses carry nothing secret once the token is gone, but say nothing to others anyway.
    assert h.get("Referrer-Policy") in ("no-referrer", "same-origin", "strict-origin"), where
    assert h.get("X-Frame-Options") == "DENY", where


class InlineFinder(HTMLParser):
    """Everything a strict CSP would block in a page: inline scripts and styles, handlers, js: URLs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems, self.scripts, self._in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._in_script = True
            self.scripts.append(attrs.get("src"))
            if not attrs.get("src"):
                self.problems.append("inline <script>")
            elif not attrs["src"].startswith("/") or attrs["src"].startswith("//"):
                self.problems.append(f"script from elsewhere: {attrs['src']}")
        if tag == "style":
            self.problems.append("<style> element")
        for name, value in attrs.items():
            if name == "style":
                self.problems.append(f"style= on <{tag}>")
            if name.startswith("on") or name.startswith("hx-on"):
                self.problems.append(f"{name}= on <{tag}>")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self._in_script = False

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append("script body")


def assert_csp_clean_html(response, where):
    assert response.mimetype == "text/html", where
    finder = InlineFinder()
    finder.feed(response.get_data(as_text=True))
    finder.close()
    assert finder.problems == [], (where, finder.problems)
    assert finder.scripts, where  # the pages do load htmx: the check above saw them


def assert_clean(response, where):
    """The page keeps the site's CSP and needs no inline script or style to work."""
    assert_security_headers(response, where)
    finder = InlineFinder()
    finder.feed(response_text(response))
    finder.close()
    assert finder.problems == [], (where, finder.problems)


def csrf_token_in(html: bytes) -> str:
    m = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(rb'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert m, "no CSRF token in the page"
    return m.group(1).decode()


def browser_destination(location: str, current: str = "http://localhost/app/login") -> str:
    """Where a browser actually goes: it drops tabs and newlines and reads '\\' as '/'."""
    return urljoin(current, re.sub(r"[\t\n\r]", "", location).replace("\\", "/"))


# --- a GoCardless mandate, through the portal and the fake -------------------------------------

def mandate_row():
    """The newest mandate, read afresh."""
    from portal.models import Mandate
    db.session.expire_all()
    return db.session.scalars(select(Mandate).order_by(Mandate.id.desc())).first()


def start_mandate_flow(client, fake) -> str:
    """The debtor asks for a mandate in the portal: the hosted flow's id at the fake."""
    r = client.post("/portal/mandate")
    assert r.status_code == 303, r.data
    location = r.headers["Location"]
    assert location.startswith(f"{fake.url}/flow/"), location
    return location.rsplit("/", 1)[1]


def set_up_mandate(client, fake, activate=True) -> str:
    """The hosted flow, end to end; returns the GoCardless mandate id."""
    flow_id = start_mandate_flow(client, fake)
    redirect_uri = fake.authorise(flow_id, iban=IBAN, account_holder_name="Beta Ltd")
    assert client.get(redirect_uri.replace("http://portal.test", "")).status_code == 303
    mandate_id = mandate_row().mandate_ref
    assert mandate_id in fake.mandates
    if activate:
        fake.activate_mandate(mandate_id)
        assert mandate_row().status == "active"
    return mandate_id
