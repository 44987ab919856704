"""CSV import of debtors and invoices: all rows checked first, then all written in one
transaction, or none when any row is bad (the report names each bad line)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Callable, Iterable

from sqlalchemy import select

from ..extensions import db
from ..models import Creditor, Debtor
from . import Invalid, ServiceError, events
from .checks import check_email, check_name, check_ref
from .debtors import DebtorInput, _put_debtor
from .ledger import _put_invoice, check_invoice

COLUMNS = ["debtor_ref", "debtor_name", "debtor_email", "invoice_number", "issue_date", "due_date", "amount",
           "currency"]
MAX_ROWS = 1_000_000


@dataclass
class RowError:
    line: int
    field: str | None
    message: str

    def __str__(self):
        return f"line {self.line}: {self.field + ': ' if self.field else ''}{self.message}"


@dataclass
class ImportResult:
    rows: int = 0
    debtors_created: int = 0
    invoices_created: int = 0
    invoices_updated: int = 0
    errors: list[RowError] = field(default_factory=list)


def read_rows(text: str) -> tuple[list[tuple[int, dict]], list[RowError]]:
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return [], [RowError(1, None, f"missing columns: {', '.join(missing)}")]
    reader.fieldnames = header
    rows = []
    try:
        for row in reader:
            if len(rows) >= MAX_ROWS:
                return rows, [RowError(reader.line_num, None, f"more than {MAX_ROWS} rows")]
            if not any((v or "").strip() for k, v in row.items() if k):
                continue  # blank line
            rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}))
    except csv.Error as e:
        # DictReader.line_num is only updated after a good row: the underlying reader's is the bad line's.
        return rows, [RowError(reader.reader.line_num, None, f"unreadable CSV: {e}")]
    return rows, []


def import_csv(creditor: Creditor, data: bytes, *, actor: str = "import",
               progress: Callable[[int], None] | None = None) -> ImportResult:
    result = ImportResult()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        result.errors.append(RowError(1, None, "the file is not UTF-8 text"))
        return result
    rows, result.errors = read_rows(text)
    result.rows = len(rows)
    if result.errors:
        return result
    checked, debtors = _check(rows, result.errors)
    if result.errors:
        return result
    try:
        _write(creditor, checked, debtors, result, actor, progress)
    except ServiceError as e:  # a conflict with data already stored, e.g. amount below paid
        db.session.rollback()
        result.debtors_created = result.invoices_created = result.invoices_updated = 0  # none of it stayed
        line = getattr(e, "line", 0)
        result.errors.append(RowError(line, e.field, e.message))
    return result


def _check(rows: Iterable[tuple[int, dict]], errors: list[RowError]):
    checked = []
    debtors: dict[str, tuple[int, str, str | None]] = {}
    seen_numbers: dict[str, int] = {}
    for line, row in rows:
        try:
            ref = check_ref(row["debtor_ref"], "debtor_ref")
            name = check_name(row["debtor_name"], "debtor_name")
            email = check_email(row["debtor_email"], "debtor_email") if row["debtor_email"] else None
            number = check_ref(row["invoice_number"], "invoice_number")
            inv = check_invoice({"debtor_ref": ref, "issue_date": row["issue_date"], "due_date": row["due_date"],
                                 "amount": row["amount"], "currency": row["currency"]})
        except Invalid as e:
            errors.append(RowError(line, e.field, e.message))
            continue
        if number in seen_numbers:
            errors.append(RowError(line, "invoice_number", f"same invoice as line {seen_numbers[number]}"))
            continue
        seen_numbers[number] = line
        if ref in debtors and debtors[ref][1:] != (name, email):
            errors.append(RowError(line, "debtor_ref",
                                   f"name or e-mail differs from line {debtors[ref][0]} for the same debtor"))
            continue
        debtors.setdefault(ref, (line, name, email))
        checked.append((line, number, inv))
    return checked, debtors


def _write(creditor, checked, debtors, result, actor, progress):
    existing = {d.ref: d for d in db.session.scalars(
        select(Debtor).where(Debtor.creditor_id == creditor.id, Debtor.ref.in_(list(debtors))))}
    by_ref = {}
    for ref, (_line, name, email) in debtors.items():
        old = existing.get(ref)
        language = old.language if old else creditor.language
        debtor, created = _put_debtor(creditor, ref, DebtorInput(name, email, language, None, None, None), actor)
        by_ref[ref] = debtor
        result.debtors_created += created
    for n, (line, number, inv) in enumerate(checked, 1):
        try:
            _invoice, created = _put_invoice(creditor, number, inv, actor, debtor=by_ref[inv.debtor_ref])
        except ServiceError as e:
            e.line = line
            raise
        if created:
            result.invoices_created += 1
        else:
            result.invoices_updated += 1
        if progress and (n % 500 == 0 or n == len(checked)):
            progress(n)
    events.record("import.completed", creditor_id=creditor.id, actor=actor, rows=len(checked),
                  invoices_created=result.invoices_created, invoices_updated=result.invoices_updated)
    db.session.commit()
