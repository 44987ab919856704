"""Shared fixtures: the app on SQLite always, and on PostgreSQL when TEST_DATABASE_URL is set.
The plain helpers the tests import are in support.py; this module holds fixtures and hooks only.

Each pytest run gets its own PostgreSQL database (created from TEST_DATABASE_URL's server and
dropped at the end), so several runs on one machine never share rows.
"""
from __future__ import annotations

import os
import re
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.extensions import db
from support import BASE_CONFIG, IBAN, Api, CreditorInfo, migrate

PG_URL = os.environ.get("TEST_DATABASE_URL")
ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="PostgreSQL tests need TEST_DATABASE_URL (see .ci/run)"))]


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


@pytest.fixture(scope="session")
def _pg_migrated(pg_database):
    app = create_app({**BASE_CONFIG, "DATABASE_URL": pg_database})
    migrate(app)
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
        migrate(first)
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
                                                password=password, iban=IBAN, **kwargs)
        return CreditorInfo(creditor.id, email, password, key)

    return make


@pytest.fixture
def creditor(new_creditor):
    return new_creditor("Atelier Test")


@pytest.fixture
def api(client, creditor):
    return Api(client, creditor)


@pytest.fixture
def today(app, creditor):
    """The creditor's calendar day by the real clock, as the portal sees it."""
    from portal.domain.calendar import today_for
    from portal.models import Creditor
    return today_for(db.session.get(Creditor, creditor.id))


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



@pytest.fixture
def fake_twilio():
    """A fake Twilio Messages API on 127.0.0.1 (tests/fakes/twilio_server.py), started for this test."""
    from fakes.twilio_server import FakeTwilio
    fake = FakeTwilio().start()
    yield fake
    fake.stop()
