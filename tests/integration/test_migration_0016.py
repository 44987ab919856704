"""Migration 0016 (letters marked posted), in the style of test_migrations.py: a letter written
before it comes through with no posting record, the postage is held to ordinary or registered by
the database, and downgrading takes the four columns away and leaves the letter and the table's
other rules as they were."""

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from portal import create_app
from portal.extensions import db
from support import BASE_CONFIG
from test_migrations import ROOT, _old_rows, empty_database  # noqa: F401  (its fixture)

POSTING = {"posted_at", "posted_by", "postage", "tracking_number"}


def columns():
    return {c["name"] for c in inspect(db.engine).get_columns("outbox_message")}


def test_0016_adds_the_posting_record_and_takes_it_away(empty_database):
    before = ScriptDirectory(str(ROOT / "migrations")).get_revision("0016").down_revision
    app = create_app({**BASE_CONFIG, "DATABASE_URL": empty_database})
    insert_letter = ("INSERT INTO outbox_message (creditor_id, debtor_id, kind, channel, subject, text_body, html_body, "
                     "message_id_header, status, attempts, next_attempt_at, created_at) VALUES (:c, :d, 'formal_notice', "
                     "'letter', 's', 't', 'h', :mid, :status, 0, :at, :at)")
    try:
        with app.app_context():
            upgrade(revision=before)
            assert not POSTING & columns()
            with db.engine.begin() as conn:
                _insert, creditor, (debtor,) = _old_rows(conn, ("A",))
                conn.execute(text(insert_letter), {"c": creditor, "d": debtor, "mid": "<old@x>", "status": "letter",
                                                   "at": "2026-12-01 09:00:00"})
            db.session.remove()
            upgrade(revision="0016")
            assert POSTING <= columns()
            with db.engine.begin() as conn:
                assert conn.execute(text("SELECT status, posted_at, posted_by, postage, tracking_number "
                                         "FROM outbox_message")).one() == ("letter", None, None, None, None)
                conn.execute(text("UPDATE outbox_message SET postage = 'registered', tracking_number = '1A12345678901', "
                                  "posted_by = 'a@b.test', posted_at = :at"), {"at": "2026-12-02 10:00:00"})
            with pytest.raises(IntegrityError), db.engine.begin() as conn:
                conn.execute(text("UPDATE outbox_message SET postage = 'pigeon'"))

            downgrade(revision=before)
            db.session.remove()
            assert not POSTING & columns()
            with db.engine.begin() as conn:
                assert conn.execute(text("SELECT message_id_header, status FROM outbox_message")).one() == ("<old@x>",
                                                                                                            "letter")
            # The table's own rules survived the batch copy (SQLite rebuilds the table).
            with pytest.raises(IntegrityError), db.engine.begin() as conn:
                conn.execute(text("UPDATE outbox_message SET status = 'posted'"))
            upgrade()
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
