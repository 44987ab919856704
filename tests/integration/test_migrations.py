"""Every model change has a migration: from an empty database, `upgrade` builds exactly the models'
schema (Alembic's autogenerate sees no difference), and `downgrade base` takes it all away again."""
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from portal import create_app
from portal.extensions import db
from support import BASE_CONFIG

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_database(engine_name, tmp_path, request):
    """The URL of a brand-new, empty database on this engine."""
    if engine_name == "sqlite":
        path = tmp_path / "brand-new.db"
        assert not path.exists()
        yield f"sqlite:///{path}"
        return
    server = make_url(request.getfixturevalue("pg_database"))
    name = f"relance_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def model_tables():
    return {t.name for t in db.metadata.sorted_tables}


def schema_differences():
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_one_head():
    heads = ScriptDirectory(str(ROOT / "migrations")).get_heads()
    assert len(heads) == 1, f"migration branches need merging: {heads}"


def test_upgrade_from_empty_matches_models_and_downgrades(empty_database):
    app = create_app({**BASE_CONFIG, "DATABASE_URL": empty_database})
    head = ScriptDirectory(str(ROOT / "migrations")).get_current_head()
    try:
        with app.app_context():
            assert inspect(db.engine).get_table_names() == []
            upgrade()
            assert set(inspect(db.engine).get_table_names()) == model_tables() | {"alembic_version"}
            with db.engine.connect() as conn:
                assert MigrationContext.configure(conn).get_current_revision() == head
            assert schema_differences() == []

            downgrade(revision="base")
            db.session.remove()
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            with db.engine.connect() as conn:
                assert MigrationContext.configure(conn).get_current_revision() is None

            upgrade()  # and back up: the downgrade left nothing behind that blocks it
            assert schema_differences() == []
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_schema_differences_are_detected(empty_database):
    """The comparison above is not vacuous: a column the migrations lack is reported."""
    app = create_app({**BASE_CONFIG, "DATABASE_URL": empty_database})
    try:
        with app.app_context():
            upgrade()
            with db.engine.begin() as conn:
                conn.execute(text("ALTER TABLE debtor ADD COLUMN stray INTEGER"))
            diffs = schema_differences()
            assert any(d[0] == "remove_column" and d[3].name == "stray" for d in diffs), diffs
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def flask_cli(*args, database_url):
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "migration-test", "RATELIMIT_ENABLED": "0"}
    env.pop("CELERY_BROKER_URL", None)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_upgrade_then_check(empty_database):
    up = flask_cli("db", "upgrade", database_url=empty_database)
    assert up.returncode == 0, up.stderr
    check = flask_cli("db", "check", database_url=empty_database)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    down = flask_cli("db", "downgrade", "base", database_url=empty_database)
    assert down.returncode == 0, down.stderr
    engine = create_engine(empty_database.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def _old_rows(conn, refs):
    """A creditor and its debtors written as the migrations before 0008 knew them, in SQL (today's
    models have columns they lack): (insert, creditor id, debtor ids); insert(sql, **values)
    returns the new row's id."""
    def insert(sql, **values):
        return conn.execute(text(sql + " RETURNING id"), values).scalar_one()
    creditor = insert("INSERT INTO creditor (name, email, currency, timezone, language, payment_terms_days, "
                      "created_at) VALUES ('Mig', 'mig@example.com', 'EUR', 'Europe/Paris', 'fr', 30, :at)",
                      at="2026-05-01 00:00:00")
    debtors = [insert("INSERT INTO debtor (creditor_id, ref, name, language, profile, kind, created_at, "
                      "updated_at) VALUES (:c, :r, :r, 'fr', 'standard', 'business', :at, :at)",
                      c=creditor, r=ref, at="2026-05-01 00:00:00") for ref in refs]
    return insert, creditor, debtors


def test_0007_aligns_reminders_with_their_invoice(empty_database):
    """Before 0007 an invoice moved to another debtor left its reminders naming the old one; the
    composite key (invoice_id, creditor_id, debtor_id) -> invoice needs them aligned, and the
    migration aligns them on the invoice (the truth) instead of failing."""
    app = create_app({**BASE_CONFIG, "DATABASE_URL": empty_database})
    try:
        with app.app_context():
            upgrade(revision="0006")
            # Rows written as 0006 knew them, in SQL: today's models have columns 0006 lacks.
            with db.engine.begin() as conn:
                insert, creditor, (old, new) = _old_rows(conn, ("A", "B"))
                invoice = insert("INSERT INTO invoice (creditor_id, debtor_id, number, issue_date, due_date, amount, "
                                 "amount_paid, currency, status, disputed, created_at, updated_at) VALUES (:c, :d, 'M-1', "
                                 "'2026-05-01', '2026-05-31', 1000, 0, 'EUR', 'open', false, :at, :at)",
                                 c=creditor, d=new, at="2026-05-01 00:00:00")
                conn.execute(text("INSERT INTO reminder (creditor_id, debtor_id, invoice_id, step_code, position, "
                                  "dunning_date, status, interest, indemnity, created_at) VALUES "
                                  "(:c, :d, :i, 'reminder_1', 1, '2026-06-01', 'sent', 0, 0, '2026-06-01 06:30:00')"),
                             {"c": creditor, "d": old, "i": invoice})
            db.session.remove()
            upgrade()
            with db.engine.connect() as conn:
                assert conn.execute(text("SELECT debtor_id FROM reminder")).scalars().all() == [new]
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_0008_backfills_the_ladder_from_reminders_sent(empty_database):
    """Rows planned under the old rule stand, and the ladder continues from what was sent: each
    reminder's rung is its step's ordinal among its plan's after-due steps (courtesy notices and
    thank-yous have none), each invoice's rung the highest one sent, with the day it was sent for
    (planned, failed or cancelled reminders do not count)."""
    app = create_app({**BASE_CONFIG, "DATABASE_URL": empty_database})
    at = "2026-05-01 00:00:00"
    try:
        with app.app_context():
            upgrade(revision="0007")
            with db.engine.begin() as conn:
                insert, creditor, (debtor,) = _old_rows(conn, ("A",))
                plan = insert("INSERT INTO dunning_plan (creditor_id, profile, name) VALUES (:c, 'standard', 'Standard')",
                              c=creditor)
                steps = {}
                for position, (code, offset) in enumerate([("courtesy", -7), ("reminder_1", 1), ("reminder_2", 8),
                                                           ("firm", 15), ("formal_notice", 30)], 1):
                    steps[code] = insert(
                        "INSERT INTO dunning_step (plan_id, code, position, offset_days, channel, tone, "
                        "requires_approval, adds_charges, subject_fr, subject_en, body_fr, body_en) VALUES "
                        "(:p, :code, :pos, :o, 'email', 'reminder', false, false, 's', 's', 'b', 'b')",
                        p=plan, code=code, pos=position, o=offset)
                invoices = {number: insert(
                    "INSERT INTO invoice (creditor_id, debtor_id, number, issue_date, due_date, amount, amount_paid, "
                    "currency, status, disputed, created_at, updated_at) VALUES (:c, :d, :n, '2026-04-01', "
                    "'2026-05-01', 1000, 0, 'EUR', 'open', false, :at, :at)", c=creditor, d=debtor, n=number, at=at)
                    for number in ("CLIMBED", "COURTESY", "FAILED", "NONE")}
                history = [("CLIMBED", "courtesy", "2026-04-24", "sent"), ("CLIMBED", "reminder_1", "2026-05-02", "sent"),
                           ("CLIMBED", "reminder_2", "2026-05-09", "sent"), ("CLIMBED", "firm", "2026-05-16", "planned"),
                           ("COURTESY", "courtesy", "2026-04-24", "sent"), ("COURTESY", "thank_you", "2026-05-20", "sent"),
                           ("FAILED", "reminder_1", "2026-05-02", "failed"), ("FAILED", "courtesy", "2026-04-24", "cancelled")]
                for number, code, day, status in history:
                    position = list(steps).index(code) + 1 if code in steps else 0
                    conn.execute(text(
                        "INSERT INTO reminder (creditor_id, debtor_id, invoice_id, step_id, step_code, position, "
                        "dunning_date, status, interest, indemnity, created_at) VALUES (:c, :d, :i, :s, :code, :pos, "
                        ":day, :status, 0, 0, :at)"),
                        {"c": creditor, "d": debtor, "i": invoices[number], "s": steps.get(code), "code": code,
                         "pos": position, "day": day, "status": status, "at": at})
            db.session.remove()
            upgrade()
            with db.engine.connect() as conn:
                rungs = dict(conn.execute(text(
                    "SELECT i.number || ':' || r.step_code, r.rung FROM reminder r JOIN invoice i ON i.id = r.invoice_id")
                ).all())
                ladder = {number: (reached, str(sent_on) if sent_on else None) for number, reached, sent_on in conn.execute(
                    text("SELECT number, rung_reached, rung_sent_on FROM invoice"))}
                kinds = set(conn.execute(text("SELECT kind FROM invoice")).scalars())
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    assert rungs == {"CLIMBED:courtesy": None, "CLIMBED:reminder_1": 1, "CLIMBED:reminder_2": 2, "CLIMBED:firm": 3,
                     "COURTESY:courtesy": None, "COURTESY:thank_you": None, "FAILED:reminder_1": 1,
                     "FAILED:courtesy": None}
    # (the courtesy notice's day is 0017's: rung 0)
    assert ladder == {"CLIMBED": (2, "2026-05-09"), "COURTESY": (0, "2026-04-24"), "FAILED": (0, None), "NONE": (0, None)}
    assert kinds == {"invoice"}


def test_0011_marks_one_attempt_in_flight_per_invoice(empty_database):
    """Lines are in flight when their attempt is (created or processing); where the old code let
    two attempts run for one invoice, only the newest stays marked, so the unique index can be
    built; then the database refuses a second attempt in flight for that invoice."""
    app = create_app({**BASE_CONFIG, "DATABASE_URL": empty_database})
    at = "2026-05-01 00:00:00"
    try:
        with app.app_context():
            upgrade(revision="0008")
            with db.engine.begin() as conn:
                insert, creditor, (debtor,) = _old_rows(conn, ("A",))
                inv = {n: insert("INSERT INTO invoice (creditor_id, debtor_id, number, issue_date, due_date, amount, "
                                 "amount_paid, currency, status, disputed, created_at, updated_at) VALUES (:c, :d, :n, "
                                 "'2026-04-01', '2026-05-01', 1000, 0, 'EUR', 'open', false, :at, :at)",
                                 c=creditor, d=debtor, n=n, at=at) for n in ("TWICE", "DONE")}
                lines = {}
                for key, status, number in [("old", "created", "TWICE"), ("new", "processing", "TWICE"),
                                            ("failed", "failed", "DONE"), ("paid", "succeeded", "DONE")]:
                    attempt = insert("INSERT INTO payment_attempt (creditor_id, debtor_id, provider, provider_ref, amount, "
                                     "currency, status, initiated_by, created_at, updated_at) VALUES (:c, :d, 'stripe', "
                                     ":ref, 1000, 'EUR', :s, 'debtor', :at, :at)",
                                     c=creditor, d=debtor, ref=f"cs_{key}", s=status, at=at)
                    lines[key] = insert("INSERT INTO payment_attempt_line (attempt_id, invoice_id, amount) "
                                        "VALUES (:a, :i, 1000)", a=attempt, i=inv[number])
            db.session.remove()
            upgrade()
            with db.engine.connect() as conn:
                flags = dict(conn.execute(text("SELECT id, in_flight FROM payment_attempt_line")).all())
                assert {k: bool(flags[v]) for k, v in lines.items()} == {
                    "old": False, "new": True, "failed": False, "paid": False}
            with pytest.raises(IntegrityError), db.engine.begin() as conn:
                conn.execute(text("UPDATE payment_attempt_line SET in_flight = true WHERE id = :i"), {"i": lines["old"]})
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_0017_dates_the_courtesy_notices_sent_before_it(empty_database):
    """An invoice whose courtesy notice went out before 0017 gets that day as rung 0's; one that
    climbed higher, one never reminded and one whose notice failed keep what they had."""
    app = create_app({**BASE_CONFIG, "DATABASE_URL": empty_database})
    try:
        with app.app_context():
            upgrade(revision="0016")
            with db.engine.begin() as conn:
                insert, creditor, (debtor,) = _old_rows(conn, ("A",))

                def invoice(number, rung=0, sent_on=None):
                    return insert("INSERT INTO invoice (creditor_id, debtor_id, number, issue_date, due_date, amount, "
                                  "amount_paid, currency, status, disputed, created_at, updated_at, rung_reached, "
                                  "rung_sent_on) VALUES (:c, :d, :n, '2026-05-01', '2026-05-31', 1000, 0, 'EUR', 'open', "
                                  "false, :at, :at, :rung, :sent)", c=creditor, d=debtor, n=number, rung=rung,
                                  sent=sent_on, at="2026-05-01 00:00:00")

                def reminder(inv, code, day, status="sent", rung=None):
                    conn.execute(text("INSERT INTO reminder (creditor_id, debtor_id, invoice_id, step_code, position, "
                                      "dunning_date, status, interest, indemnity, created_at, rung) VALUES "
                                      "(:c, :d, :i, :code, 0, :day, :status, 0, 0, :at, :rung)"),
                                 {"c": creditor, "d": debtor, "i": inv, "code": code, "day": day, "status": status,
                                  "rung": rung, "at": day + " 06:30:00"})
                noticed, climbed, silent, refused = (invoice("N-1"), invoice("N-2", 1, "2026-06-03"), invoice("N-3"),
                                                     invoice("N-4"))
                reminder(noticed, "courtesy", "2026-05-24")
                reminder(climbed, "courtesy", "2026-05-24")
                reminder(climbed, "reminder_1", "2026-06-03", rung=1)
                reminder(refused, "courtesy", "2026-05-24", status="failed")
            db.session.remove()
            upgrade(revision="0017")
            with db.engine.connect() as conn:
                days = dict(conn.execute(text("SELECT number, rung_sent_on FROM invoice")).all())
            as_text = {n: str(d) if d is not None else None for n, d in days.items()}
            assert as_text == {"N-1": "2026-05-24", "N-2": "2026-06-03", "N-3": None, "N-4": None}
    finally:
        with app.app_context():
            db.session.remove()


def test_0015_widens_channels_and_its_downgrade_keeps_what_it_can(empty_database):
    """After 0015 a step may be a call (the database refused it before); going back, a call or SMS
    step goes by e-mail and a reminder waiting for its call is planned again, so that the older
    checks hold; the task tables go."""
    app = create_app({**BASE_CONFIG, "DATABASE_URL": empty_database})
    at = "2026-05-01 00:00:00"
    step_sql = ("INSERT INTO dunning_step (plan_id, code, position, offset_days, channel, tone, requires_approval, "
                "adds_charges, subject_fr, subject_en, body_fr, body_en) VALUES (:p, :code, :pos, :o, :ch, 'reminder', "
                "false, false, 's', 's', 'b', 'b')")
    try:
        with app.app_context():
            upgrade(revision="0013")
            with pytest.raises(IntegrityError), db.engine.begin() as conn:
                insert, creditor, _ = _old_rows(conn, ("A",))
                plan = insert("INSERT INTO dunning_plan (creditor_id, profile, name) VALUES (:c, 'standard', 'S')",
                              c=creditor)
                insert(step_sql, p=plan, code="call_1", pos=1, o=8, ch="call")
            upgrade(revision="0015")
            with db.engine.begin() as conn:
                insert, creditor, (debtor,) = _old_rows(conn, ("A",))
                plan = insert("INSERT INTO dunning_plan (creditor_id, profile, name) VALUES (:c, 'standard', 'S')",
                              c=creditor)
                call = insert(step_sql, p=plan, code="call_1", pos=1, o=8, ch="call")
                insert(step_sql, p=plan, code="sms_1", pos=2, o=15, ch="sms")
                invoice = insert("INSERT INTO invoice (creditor_id, debtor_id, number, issue_date, due_date, amount, "
                                 "amount_paid, currency, status, disputed, created_at, updated_at) VALUES (:c, :d, 'M-1', "
                                 "'2026-04-01', '2026-05-01', 1000, 0, 'EUR', 'open', false, :at, :at)",
                                 c=creditor, d=debtor, at=at)
                conn.execute(text("INSERT INTO reminder (creditor_id, debtor_id, invoice_id, step_id, step_code, "
                                  "position, dunning_date, status, interest, indemnity, created_at) VALUES (:c, :d, :i, "
                                  ":s, 'call_1', 1, '2026-05-09', 'awaiting_call', 0, 0, :at)"),
                             {"c": creditor, "d": debtor, "i": invoice, "s": call, "at": at})
            db.session.remove()
            downgrade(revision="0013")
            with db.engine.connect() as conn:
                assert set(conn.execute(text("SELECT channel FROM dunning_step")).scalars()) == {"email"}
                assert conn.execute(text("SELECT status FROM reminder")).scalars().all() == ["planned"]
            assert "task" not in inspect(db.engine).get_table_names()
            db.session.remove()
            upgrade()
            assert schema_differences() == []
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
