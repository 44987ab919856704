"""The write half of a CSV import on PostgreSQL, set-based: the checked rows are COPYed into
temporary staging tables (line numbers kept), then debtors and invoices are inserted and updated
with a few statements, and their events written with them, as ledger._put_invoice and
debtors._put_debtor write them one at a time (same event types, data and rules).

The caller (imports.import_csv) has checked every row, records import.completed and commits;
a ServiceError carrying `line` rolls everything back, staging tables included."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Debtor, utcnow
from . import Conflict, ladder, ledger

# Values for COPY's text format: a backslash, tab or line break inside a field is escaped.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

_STAGING = """
CREATE TEMPORARY TABLE import_debtor (line int, ref text, name text, email text, language text, phone text,
    address text) ON COMMIT DROP;
CREATE TEMPORARY TABLE import_invoice (line int, number text, ref text, issue_date date, due_date date,
    amount bigint, currency text) ON COMMIT DROP
"""

# Debtors as stored before the import (for the events naming what changed), then the known ones
# updated and the new ones created. An empty cell of an optional column keeps what is stored;
# the creditor's language for a new debtor.
_OLD_DEBTORS = """
CREATE TEMPORARY TABLE import_old_debtor ON COMMIT DROP AS
SELECT d.id, s.line, d.name, d.email, d.language, d.profile, d.phone, d.kind, d.address
FROM import_debtor s JOIN debtor d ON d.creditor_id = :creditor AND d.ref = s.ref
"""
_NEW = {"name": "s.name", "email": "s.email", "language": "coalesce(s.language, d.language)",
        "phone": "coalesce(s.phone, d.phone)", "address": "CASE WHEN s.address IS NULL THEN d.address "
                                                        "ELSE nullif(s.address, '') END"}
_UPDATE_DEBTORS = f"""
UPDATE debtor d SET {', '.join(f'{k} = {v}' for k, v in _NEW.items())}, updated_at = :now
FROM import_debtor s
WHERE d.creditor_id = :creditor AND d.ref = s.ref
  AND ({', '.join(f'd.{k}' for k in _NEW)}) IS DISTINCT FROM ({', '.join(_NEW.values())})
"""
# New debtors, then the events of both kinds in line order (as _put_debtor writes them, one
# debtor after the other). A plain INSERT: a debtor created meanwhile by another request is a
# unique violation, answered "retry".
_INSERT_DEBTORS = """
WITH new AS (
    INSERT INTO debtor (creditor_id, ref, name, email, language, profile, kind, phone, address, auto_collect,
                        created_at, updated_at)
    SELECT :creditor, s.ref, s.name, s.email, coalesce(s.language, :language), 'standard', 'business', s.phone,
           nullif(s.address, ''), false, :now, :now
    FROM import_debtor s WHERE NOT EXISTS (SELECT FROM import_old_debtor o WHERE o.line = s.line)
    ORDER BY s.line
    RETURNING id, ref)
INSERT INTO event (creditor_id, debtor_id, invoice_id, type, actor, at, data)
SELECT :creditor, e.id, NULL, e.type, :actor, :now, e.data FROM (
    SELECT new.id, s.line, 'debtor.created' AS type, '{}'::json AS data FROM new JOIN import_debtor s USING (ref)
    UNION ALL
    SELECT c.id, c.line, 'debtor.updated', json_build_object('fields', c.fields) FROM (
        SELECT o.id, o.line, array_remove(ARRAY[
            CASE WHEN o.address IS DISTINCT FROM d.address THEN 'address' END,
            CASE WHEN o.email IS DISTINCT FROM d.email THEN 'email' END,
            CASE WHEN o.kind IS DISTINCT FROM d.kind THEN 'kind' END,
            CASE WHEN o.language IS DISTINCT FROM d.language THEN 'language' END,
            CASE WHEN o.name IS DISTINCT FROM d.name THEN 'name' END,
            CASE WHEN o.phone IS DISTINCT FROM d.phone THEN 'phone' END,
            CASE WHEN o.profile IS DISTINCT FROM d.profile THEN 'profile' END], NULL) AS fields
        FROM import_old_debtor o JOIN debtor d ON d.id = o.id) c
    WHERE cardinality(c.fields) > 0) e
ORDER BY e.line
RETURNING debtor_id, type, data
"""

_STAGED = """
FROM import_invoice s JOIN debtor d ON d.creditor_id = :creditor AND d.ref = s.ref
"""
# ledger.status_for in SQL: a cancelled invoice stays cancelled.
_STATUS = """CASE WHEN i.status = 'cancelled' THEN 'cancelled' WHEN i.amount_paid >= s.amount THEN 'paid'
    WHEN i.amount_paid > 0 THEN 'partially_paid' ELSE 'open' END"""
_DIFFERS = """(i.debtor_id, i.issue_date, i.due_date, i.amount, i.currency, i.status)
      IS DISTINCT FROM (d.id, s.issue_date, s.due_date, s.amount, s.currency, """ + _STATUS + """)"""
# Invoices already stored, and whether the file changes them. Only those it changes are locked
# (as _put_invoice locks them: a payment recorded meanwhile waits) and read again once locked:
# a file of a ledger re-exported each day changes few of its rows, and locking every one of them
# wrote each row's lock to the table. An invoice the file leaves as it is needs no lock: a
# change committed by another request after this read is as if it came after the import.
_KNOWN_INVOICES = """
CREATE TEMPORARY TABLE import_known_invoice ON COMMIT DROP AS
SELECT i.id, s.line, """ + _DIFFERS + """ AS changed
""" + _STAGED + """ JOIN invoice i ON i.creditor_id = :creditor AND i.number = s.number
"""
_OLD_INVOICES = """
CREATE TEMPORARY TABLE import_old_invoice ON COMMIT DROP AS
SELECT i.id, k.line, i.debtor_id, i.issue_date, i.due_date, i.amount, i.currency, i.status, i.amount_paid
FROM import_known_invoice k JOIN invoice i ON i.id = k.id
WHERE k.changed
ORDER BY i.id FOR UPDATE OF i
"""
# ledger._put_invoice's rules for an invoice with payments, checked in its order; the first line
# at fault is reported, as the row-by-row import stops at it.
_PAID_CONFLICT = """
SELECT o.line, CASE WHEN s.currency <> o.currency THEN 'currency' WHEN d.id <> o.debtor_id THEN 'debtor_ref'
                    ELSE 'amount' END AS field
""" + _STAGED + """ JOIN import_old_invoice o ON o.line = s.line
WHERE o.amount_paid > 0 AND (s.currency <> o.currency OR d.id <> o.debtor_id OR s.amount < o.amount_paid)
ORDER BY o.line LIMIT 1
"""
_UPDATE_INVOICES = """
UPDATE invoice i SET debtor_id = d.id, issue_date = s.issue_date, due_date = s.due_date, amount = s.amount,
    currency = s.currency, status = """ + _STATUS + """, updated_at = :now
FROM import_old_invoice o JOIN import_invoice s ON s.line = o.line
    JOIN debtor d ON d.creditor_id = :creditor AND d.ref = s.ref
WHERE i.id = o.id AND """ + _DIFFERS + """
"""
# New invoices, then the events of both kinds in line order, as _put_invoice writes them.
_INSERT_INVOICES = """
WITH new AS (
    INSERT INTO invoice (creditor_id, debtor_id, number, issue_date, due_date, amount, amount_paid, currency, status,
                         disputed, kind, rung_reached, created_at, updated_at)
    SELECT :creditor, d.id, s.number, s.issue_date, s.due_date, s.amount, 0, s.currency, 'open', false, 'invoice', 0,
           :now, :now
    """ + _STAGED + """
    WHERE NOT EXISTS (SELECT FROM import_known_invoice k WHERE k.line = s.line)
    ORDER BY s.line
    RETURNING id, number, debtor_id, amount, currency, due_date)
INSERT INTO event (creditor_id, debtor_id, invoice_id, type, actor, at, data)
SELECT :creditor, e.debtor_id, e.id, e.type, :actor, :now, e.data FROM (
    SELECT new.id, new.debtor_id, s.line, 'invoice.created' AS type,
           json_build_object('amount', new.amount, 'currency', new.currency,
                             'due_date', to_char(new.due_date, 'YYYY-MM-DD')) AS data
    FROM new JOIN import_invoice s USING (number)
    UNION ALL
    SELECT c.id, c.debtor_id, c.line, 'invoice.updated', json_build_object('fields', c.fields) FROM (
        SELECT i.id, i.debtor_id, o.line, array_remove(ARRAY[
            CASE WHEN o.amount <> i.amount THEN 'amount' END,
            CASE WHEN o.currency <> i.currency THEN 'currency' END,
            CASE WHEN o.debtor_id <> i.debtor_id THEN 'debtor_id' END,
            CASE WHEN o.due_date <> i.due_date THEN 'due_date' END,
            CASE WHEN o.issue_date <> i.issue_date THEN 'issue_date' END,
            CASE WHEN o.status <> i.status THEN 'status' END], NULL) AS fields
        FROM import_old_invoice o JOIN invoice i ON i.id = o.id) c
    WHERE cardinality(c.fields) > 0) e
ORDER BY e.line
"""
_RACED = "this resource was changed at the same moment by another request; retry"


def write(creditor, checked, debtors, actor: str, progress) -> tuple[int, int, int]:
    """Returns (debtors created, invoices created, invoices updated)."""
    session = db.session
    session.flush()
    conn = session.connection()
    conn.exec_driver_sql("SET LOCAL jit = off")  # compiling these big statements costs more than it saves
    # The sorts into line order and the hash joins of 200,000 rows spill to disk at the default 4 MB.
    conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    for statement in _STAGING.split(";"):
        conn.exec_driver_sql(statement)
    cursor = conn.connection.driver_connection.cursor()
    _copy(cursor, "import_debtor (line, ref, name, email, language, phone, address)",
          ("\t".join([str(d.line), ref, *(_field(v) for v in (d.data.name, d.data.email,
                                                               d.data.language if d.language_given else None,
                                                               d.data.phone, d.data.address))])
           for ref, d in debtors.items()))
    _copy(cursor, "import_invoice (line, number, ref, issue_date, due_date, amount, currency)",
          (f"{line}\t{number}\t{ref}\t{issue}\t{due}\t{amount}\t{currency}"
           for line, number, ref, _i, _d, amount, currency, issue, due in checked))
    # Row counts and distinct values for the joins' plans: a sample of 3,000 rows is enough (the
    # default of 30,000 cost more than the COPY at 200,000 rows).
    conn.exec_driver_sql("SET LOCAL default_statistics_target = 10; ANALYZE import_debtor; ANALYZE import_invoice")
    key = {"creditor": creditor.id, "actor": actor, "now": utcnow(), "language": creditor.language}

    try:
        conn.execute(text(_OLD_DEBTORS), key)
        conn.execute(text(_UPDATE_DEBTORS), key)
        debtor_events = conn.execute(text(_INSERT_DEBTORS), key).all()
        for debtor_id, _type, data in debtor_events:
            if set(data.get("fields", ())) & ladder.CONTACT_FIELDS:  # as _put_debtor: failed steps go again
                ladder.replan_failed(session.get(Debtor, debtor_id), actor)
        if progress:
            progress(len(checked) // 10)

        conn.execute(text(_KNOWN_INVOICES), key)
        conn.execute(text(_OLD_INVOICES), key)
        conflict = conn.execute(text(_PAID_CONFLICT), key).first()
        if conflict is not None:
            e = Conflict(ledger.PAID_INVOICE_RULES[conflict.field], conflict.field)
            e.line = conflict.line
            raise e
        conn.execute(text(_UPDATE_INVOICES), key)
        known = conn.execute(text("SELECT count(*) FROM import_known_invoice")).scalar_one()
        if progress:
            progress(len(checked) // 2)
        conn.execute(text(_INSERT_INVOICES), key)
    except IntegrityError:  # a debtor or invoice of the file created meanwhile by another request
        raise Conflict(_RACED) from None
    if progress:
        progress(len(checked))
    return sum(t == "debtor.created" for _id, t, _d in debtor_events), len(checked) - known, known


def _field(value: str | None) -> str:
    return "\\N" if value is None else value.translate(_ESCAPES)


def _copy(cursor, table: str, lines) -> None:
    with cursor.copy(f"COPY {table} FROM STDIN") as copy:
        chunk = []
        for line in lines:
            chunk.append(line)
            if len(chunk) == 10_000:
                copy.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            copy.write("\n".join(chunk) + "\n")
