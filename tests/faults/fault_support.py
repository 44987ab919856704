"""What the fault tests share: a private PostgreSQL (tests/fakes/private_servers.py) that a test
may restart, migrated once per module and wired into the suite's usual fixtures (`app`,
`creditor`, `live_app`…) by overriding `database_url` and `engine_name`; an SMTP server a test
can hold (`slow_smtp`); seeding; and the exactly-once checks every fault test ends with.

Test modules import the fixtures by name: `from fault_support import private_pg, database_url, …`.
"""
from __future__ import annotations

import time
from collections import Counter
from datetime import date, timedelta

import psycopg
import pytest
from sqlalchemy import select

from fakes.private_servers import PrivatePostgres
from fakes.slow_smtp import SlowSmtpServer
from portal import create_app
from portal.extensions import db
from portal.models import Creditor, Debtor, Invoice, OutboxMessage, Reminder
from portal.services import ledger
from portal.domain.schedule import Step, due_step
from portal.services.plans import DEFAULT_STEPS, PROFILE_OFFSETS
from support import BASE_CONFIG, count, migrate  # noqa: F401 (count: for the fault tests)

#: the planner's advisory lock key (dunning_jobs/planner.py lock_creditor)
PLANNER_LOCK = 7311


@pytest.fixture(scope="module")
def private_pg():
    reason = PrivatePostgres.unavailable()
    if reason:
        pytest.skip(reason)
    pg = PrivatePostgres().start()
    try:
        app = create_app({**BASE_CONFIG, "DATABASE_URL": pg.url})
        migrate(app)
        with app.app_context():
            db.engine.dispose()
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture
def slow_smtp():
    """An SMTP server that a test can hold at a given step (tests/fakes/slow_smtp.py)."""
    server = SlowSmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def engine_name():
    return "postgresql"


@pytest.fixture
def database_url(private_pg):
    return private_pg.url


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def connect(pg: PrivatePostgres) -> psycopg.Connection:
    return psycopg.connect(libpq(pg.url), autocommit=True)


def wait_until(predicate, timeout: float = 30, what: str = "condition", interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def backends(pg: PrivatePostgres, where: str) -> int:
    """How many other sessions of the test database match `where` in pg_stat_activity."""
    with connect(pg) as conn:
        return conn.execute(f"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            f"AND pid <> pg_backend_pid() AND {where}").fetchone()[0]


def waiting_on_planner_lock(pg: PrivatePostgres) -> int:
    return backends(pg, "wait_event_type = 'Lock' AND wait_event = 'advisory'")


def hold_planner_lock(pg: PrivatePostgres, creditor_id: int) -> psycopg.Connection:
    """Take the planner's advisory lock of this creditor in a session of the test's own: a
    `dunning run` then stops inside its planning transaction until the lock goes."""
    conn = connect(pg)
    conn.execute("SELECT pg_advisory_lock(%s, %s)", (PLANNER_LOCK, creditor_id))
    return conn


def expected_step(profile: str, age: int, reached: int = 0, sent_ago: int | None = None) -> str | None:
    """The step the ladder (domain/schedule.py) plans for an invoice `age` days late on a
    default plan: never reminded, the first rung at most."""
    steps = [Step(code, position, offset) for position, ((code, *_), offset)
             in enumerate(zip(DEFAULT_STEPS, PROFILE_OFFSETS[profile][1]), 1)]
    day = date(2026, 1, 1)
    sent_on = None if sent_ago is None else day - timedelta(days=sent_ago)
    step = due_step(steps, day - timedelta(days=age), day, reached, sent_on)
    return step.code if step else None


#: days late on the dunning date of each debtor's invoices, by debtor number modulo 4
AGES = [(1, 8), (-7, 1), (15, 2), (9, -3)]


def seed_dunning(creditor_id: int, day: date, debtors: int, prefix: str = "R") -> dict[str, str]:
    """`debtors` debtors with two invoices each; returns {invoice number: step expected on `day`}."""
    creditor = db.session.get(Creditor, creditor_id)
    expected = {}
    for n in range(debtors):
        ref = f"{prefix}{n:03d}"
        ledger.upsert_debtor(creditor, ref, {"name": f"Client {n}", "email": f"{ref.lower()}@example.com",
                                             "language": "fr" if n % 2 else "en"})
        for k, age in enumerate(AGES[n % len(AGES)]):
            number = f"{ref}-{k}"
            due = day - timedelta(days=age)
            ledger.upsert_invoice(creditor, number, {"debtor_ref": ref, "issue_date": (due - timedelta(days=30)).isoformat(),
                                                     "due_date": due.isoformat(), "amount": f"{100 + n}.00",
                                                     "currency": "EUR"})
            step = expected_step("standard", age)
            if step:
                expected[number] = step
    db.session.commit()
    return expected


def assert_dunning_exactly_once(expected: dict[str, str], received, creditor_id: int | None = None) -> None:
    """Every expected (invoice, step) reminded once and sent; one e-mail per debtor, each
    received by the SMTP server exactly once; nothing else."""
    db.session.expire_all()
    where = [] if creditor_id is None else [Reminder.creditor_id == creditor_id]
    rows = db.session.execute(select(Invoice.number, Reminder.step_code, Reminder.status)
                              .join(Invoice, Invoice.id == Reminder.invoice_id).where(*where)).all()
    per_pair = Counter((number, step) for number, step, _ in rows)
    assert [pair for pair, n in per_pair.items() if n > 1] == [], "a reminder planned twice"
    assert {number: step for number, step, _ in rows} == expected, "reminders lost or unexpected"
    assert {status for *_, status in rows} == {"sent"}

    owhere = [] if creditor_id is None else [OutboxMessage.creditor_id == creditor_id]
    messages = db.session.scalars(select(OutboxMessage).where(*owhere)).all()
    assert {m.status for m in messages} == {"sent"}
    assert Counter(m.debtor_id for m in messages).most_common(1)[0][1] == 1, "two e-mails for one debtor"
    debtors_due = {number.rsplit("-", 1)[0] for number in expected}
    refs = dict(db.session.execute(select(Debtor.id, Debtor.ref)).all())
    assert {refs[m.debtor_id] for m in messages} == debtors_due

    ids = Counter(r.message["Message-ID"] for r in received)
    wanted = {m.message_id_header for m in messages}
    mine = Counter({mid: n for mid, n in ids.items() if mid in wanted})
    assert [mid for mid, n in mine.items() if n > 1] == [], "a message received twice"
    assert set(mine) == wanted, "a message recorded as sent never reached the server"


