"""Shared fixtures: the app on SQLite always, and on PostgreSQL when TEST_DATABASE_URL is set.

Each pytest run gets its own PostgreSQL database (created from TEST_DATABASE_URL's server and
dropped at the end), so several runs on one machine never share rows.
"""
from __future__ import annotations

import html
import os
import re
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.extensions import db

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")
ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="PostgreSQL tests need TEST_DATABASE_URL (see .ci/run)"))]
BASE_CONFIG = {"SECRET_KEY": "test-secret-key", "TESTING": True, "WTF_CSRF_ENABLED": False,
               "RATELIMIT_ENABLED": False, "PORTAL_BASE_URL": "http://portal.test",
               "RATELIMIT_STORAGE_URI": "memory://"}


def _psycopg(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)


@pytest.fixture(scope="session")
def pg_database():
    """A fresh database on the test server for this run; its URL."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL")
    admin_url = make_url(_psycopg(PG_URL))
    name = f"relance_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _migrate(app):
    from flask_migrate import upgrade
    with app.app_context():
        upgrade()


@pytest.fixture(scope="session")
def _pg_migrated(pg_database):
    app = create_app({**BASE_CONFIG, "DATABASE_URL": pg_database})
    _migrate(app)
    return pg_database


def _truncate(app):
    with app.app_context():
        # reference_rate holds data seeded by the migrations: keep it.
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables if t.name != "reference_rate")
        db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.session.commit()


@pytest.fixture(params=ENGINES)
def engine_name(request):
    return request.param


@pytest.fixture
def database_url(engine_name, tmp_path, request):
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path / 'relance.db'}"
    return request.getfixturevalue("_pg_migrated")


@pytest.fixture
def make_app(database_url, engine_name):
    """Build an app on this test's database; extra config as keyword arguments."""
    apps = []

    def make(**config):
        app = create_app({**BASE_CONFIG, "DATABASE_URL": database_url, **config})
        apps.append(app)
        return app

    first = make()
    if engine_name == "sqlite":
        _migrate(first)
    else:
        _truncate(first)
    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app_config():
    """Extra config for the `app` fixture; a test module overrides this fixture to change it."""
    return {}


@pytest.fixture
def app(make_app, app_config):
    app = make_app(**app_config)
    with app.app_context():
        yield app


@pytest.fixture
def client(app, make_app, app_config):
    """A browser on its own app instance (same database and config): the test's own app
    context must not be shared with requests, or `g` (locale, debtor) would leak between them."""
    return make_app(**app_config).test_client()


@dataclass
class CreditorInfo:
    id: int
    email: str
    password: str
    api_key: str

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def new_creditor(app):
    """Create creditors: new_creditor(name='B') -> CreditorInfo."""
    from portal.services import tenants
    count = [0]

    def make(name=None, **kwargs):
        count[0] += 1
        email = kwargs.pop("email", f"owner{count[0]}@creditor{count[0]}.test")
        password = "correct horse battery"
        creditor, key = tenants.create_creditor(name=name or f"Creditor {count[0]}", email=email,
                                                password=password, iban="FR7630006000011234567890189", **kwargs)
        return CreditorInfo(creditor.id, email, password, key)

    return make


@pytest.fixture
def creditor(new_creditor):
    return new_creditor("Atelier Test")


class Api:
    """The creditor REST API through the test client, with a bearer key."""

    def __init__(self, client, creditor: CreditorInfo):
        self.client, self.headers = client, creditor.headers

    def __getattr__(self, method):
        def call(path, **kwargs):
            return getattr(self.client, method)("/api/v1" + path, headers=self.headers, **kwargs)
        return call


@pytest.fixture
def api(client, creditor):
    return Api(client, creditor)


@pytest.fixture
def seeded(api):
    """Two debtors, four invoices: a small ledger most tests can start from."""
    api.put("/debtors/D1", json={"name": "Alpha SARL", "email": "alpha@example.com", "language": "fr"})
    api.put("/debtors/D2", json={"name": "Beta Ltd", "email": "beta@example.com", "language": "en"})
    for number, ref, issue, due, amount in [("F-1", "D1", "2026-09-01", "2026-10-01", "1200.00"),
                                            ("F-2", "D1", "2026-10-01", "2026-10-31", "300.50"),
                                            ("F-3", "D2", "2026-10-15", "2026-11-14", "99.99"),
                                            ("F-4", "D2", "2026-11-01", "2026-12-31", "5000.00")]:
        r = api.put(f"/invoices/{number}", json={"debtor_ref": ref, "issue_date": issue, "due_date": due,
                                                 "amount": amount, "currency": "EUR"})
        assert r.status_code == 201, r.json
    return api


def portal_login(client, app, debtor_ref: str, creditor_id: int, **issue_kwargs):
    """Open a fresh portal link for a debtor in this client; return the link's URL."""
    from portal.services import ledger, links
    with app.app_context():
        debtor = ledger.get_debtor(creditor_id, debtor_ref)
        url = links.issue(debtor, issued_by="creditor", **issue_kwargs).url
    r = client.get(url.replace("http://portal.test", ""))
    assert r.status_code == 303, r.data
    return url


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1 for this test."""
    from fakes.smtp_server import SmtpServer
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_stripe():
    """A fake Stripe API on 127.0.0.1 (tests/fakes/stripe_server.py), started for this test."""
    from fakes.stripe_server import FakeStripe
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_gocardless():
    from fakes.gocardless_server import FakeGoCardless
    fake = FakeGoCardless().start()
    yield fake
    fake.stop()


@pytest.fixture
def providers_config(fake_stripe, fake_gocardless):
    """App config pointing the real SDKs at the fakes."""
    return {"STRIPE_SECRET_KEY": fake_stripe.api_key, "STRIPE_WEBHOOK_SECRET": fake_stripe.webhook_secret,
            "STRIPE_API_BASE": fake_stripe.url, "GOCARDLESS_ACCESS_TOKEN": fake_gocardless.access_token,
            "GOCARDLESS_WEBHOOK_SECRET": fake_gocardless.webhook_secret, "GOCARDLESS_BASE_URL": fake_gocardless.url}


@pytest.fixture
def live_app(make_app, providers_config, fake_stripe, fake_gocardless):
    """The app with both providers, served over HTTP; the fakes deliver their webhooks to it."""
    from fakes.live_app import LiveApp
    server = LiveApp(make_app(**providers_config)).start()
    fake_stripe.webhook_url = f"{server.url}/webhooks/stripe"
    fake_gocardless.webhook_url = f"{server.url}/webhooks/gocardless"
    yield server
    server.stop()


# --- helpers the journey and fault tests share ---------------------------------------------------

def count(model, *where) -> int:
    """Rows of `model` matching `where`, read afresh (the test's session may hold stale objects)."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def portal_text(client, path="/portal/") -> str:
    """A page as text, character references resolved."""
    return html.unescape(client.get(path).get_data(as_text=True))


def flashes(text: str) -> list[str]:
    return re.findall(r'<p class="flash [^"]*" role="(?:status|alert)">([^<]*)</p>', text)


def buttons(text: str) -> list[str]:
    """Accessible names of the page's buttons: aria-label, else the text content."""
    names = []
    for attrs, inner in re.findall(r"<button([^>]*)>(.*?)</button>", text, re.S):
        label = re.search(r'aria-label="([^"]*)"', attrs)
        names.append(label.group(1) if label else " ".join(re.sub(r"<[^>]+>", " ", inner).split()))
    return names


def post_webhook(url: str, body: bytes, headers: dict):
    import requests
    return requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=30)


def deliver_ten_times(url: str, body: bytes, headers: dict) -> list[int]:
    """The same webhook five times at once (released together), then five times in a row; the
    status codes answered."""
    import threading
    answers: list[int] = []
    barrier = threading.Barrier(5)

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
