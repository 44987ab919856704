"""A re-import on PostgreSQL locks the invoices the file changes (a payment recorded meanwhile
waits, as for PUT /invoices) and no others: a ledger re-exported each day changes few rows."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from portal.extensions import db
from portal.models import Creditor
from portal.services import ledger
from portal.services.imports import import_csv

POSTGRESQL_ONLY = pytest.mark.parametrize("engine_name", [
    pytest.param("sqlite", marks=pytest.mark.skip(reason="row locks: PostgreSQL only (SQLite locks the file)")),
    pytest.param("postgresql", marks=pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"), reason="needs TEST_DATABASE_URL (PostgreSQL)"))])

GOOD = (
    "debtor_ref,debtor_name,debtor_email,invoice_number,issue_date,due_date,amount,currency\n"
    "C1,Dupont SARL,compta@dupont.example,F-100,2026-09-01,2026-10-01,1200.00,EUR\n"
    "C1,Dupont SARL,compta@dupont.example,F-101,2026-09-15,2026-10-15,99.90,EUR\n")


def import_waiting_at_most_2s(cred, text_: str):
    """The import, in a transaction that gives up after waiting 2 s for a row lock."""
    db.session.execute(text("SET LOCAL lock_timeout = '2s'"))
    return import_csv(cred, text_.encode())


@POSTGRESQL_ONLY
def test_reimport_locks_the_invoices_it_changes_and_no_other(app, creditor):
    cred = db.session.get(Creditor, creditor.id)
    assert import_csv(cred, GOOD.encode()).errors == []
    changed = GOOD.replace("1200.00", "1300.00")  # F-100 changes, F-101 stays as it is
    with db.engine.connect() as other:  # another request holds F-101 (e.g. recording a payment)
        other.execute(text("SELECT id FROM invoice WHERE number = 'F-101' FOR UPDATE"))
        result = import_waiting_at_most_2s(cred, changed)
        assert (result.errors, result.invoices_created, result.invoices_updated) == ([], 0, 2)
        other.rollback()
    assert ledger.get_invoice(cred.id, "F-100").amount == 130000

    with db.engine.connect() as other:  # now it holds F-100, which the next file changes
        other.execute(text("SELECT id FROM invoice WHERE number = 'F-100' FOR UPDATE"))
        with pytest.raises(OperationalError, match="lock timeout"):
            import_waiting_at_most_2s(cred, changed.replace("1300.00", "1400.00"))
        db.session.rollback()
        other.rollback()
    assert ledger.get_invoice(cred.id, "F-100").amount == 130000
