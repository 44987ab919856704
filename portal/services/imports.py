"""CSV import of debtors and invoices: all rows checked first, then all written in one
transaction, or none when any row is bad (the report names each bad line).

Both engines read and check a file the same way (here, in one pass); then SQLite writes through
the ORM row by row and PostgreSQL set-based (imports_pg), with the same results and errors."""
from __future__ import annotations

import csv
import gc
import io
import operator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Callable

from sqlalchemy import select

from ..extensions import db
from ..models import Creditor, Debtor
from . import Invalid, ServiceError, events, imports_pg
from .checks import REF, amount_of, check_date, check_ref, currency_of
from .debtors import DebtorInput, _put_debtor, check_debtor
from .ledger import InvoiceInput, _put_invoice

COLUMNS = ["debtor_ref", "debtor_name", "debtor_email", "invoice_number", "issue_date", "due_date", "amount",
           "currency"]
#: optional: an empty cell or a missing column keeps what the debtor has (a new one: the creditor's language)
OPTIONAL_COLUMNS = ["debtor_language", "debtor_phone", "debtor_address"]
MAX_ROWS = 1_000_000
_REF, _NAME, _EMAIL, _NUMBER, _ISSUE, _DUE, _AMOUNT, _CURRENCY, _LANGUAGE, _PHONE, _ADDRESS = range(11)


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


@dataclass
class CheckedDebtor:
    line: int  # its first line
    data: DebtorInput  # language: the creditor's when not given
    language_given: bool


#: one checked invoice row: line, number, debtor_ref, issue, due, amount (minor units), currency,
#: and the two dates as the file wrote them (ISO)
CheckedInvoice = tuple[int, str, str, date, date, int, str, str, str]


def read_rows(text: str) -> tuple[list[tuple[int, list[str]]], list[RowError]]:
    """Rows as (line, values in COLUMNS + OPTIONAL_COLUMNS order, stripped; "" when absent)."""
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader, None) or []]
    except csv.Error as e:
        return [], [RowError(reader.line_num, None, f"unreadable CSV: {e}")]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return [], [RowError(1, None, f"missing columns: {', '.join(missing)}")]
    position = {h: i for i, h in enumerate(header) if h}  # a repeated column: the last one counts
    width = len(header)
    # An absent column reads the empty cell each row gets appended after the header's columns.
    values_of = operator.itemgetter(*(position.get(c, width) for c in COLUMNS + OPTIONAL_COLUMNS))
    named = [position[h] for h in position]
    rows = []
    try:
        for row in reader:
            if len(rows) >= MAX_ROWS:
                return rows, [RowError(reader.line_num, None, f"more than {MAX_ROWS} rows")]
            if len(row) != width:
                row = row[:width] + [""] * (width - len(row))
            row.append("")
            values = list(map(str.strip, values_of(row)))
            if not any(values) and not any(row[i].strip() for i in named):
                continue  # blank line
            rows.append((reader.line_num, values))
    except csv.Error as e:
        return rows, [RowError(reader.line_num, None, f"unreadable CSV: {e}")]
    return rows, []


def import_csv(creditor: Creditor, data: bytes, *, actor: str = "import",
               progress: Callable[[int], None] | None = None) -> ImportResult:
    result = ImportResult()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        result.errors.append(RowError(1, None, "the file is not UTF-8 text"))
        return result
    # A row is a few small lists and tuples, none in a cycle: the collector's passes over a
    # large file's growing heap (half the reading time) would find nothing to free.
    collecting = gc.isenabled()
    gc.disable()
    try:
        rows, result.errors = read_rows(text)
        result.rows = len(rows)
        checked, debtors = ([], {}) if result.errors else check_rows(rows, creditor.language, result.errors)
        del rows, text  # the checked values are all the write needs (a million rows: a gigabyte)
    finally:
        if collecting:
            gc.enable()
    if result.errors:
        return result
    try:
        if db.session.get_bind().dialect.name == "postgresql":
            counts = imports_pg.write(creditor, checked, debtors, actor, progress)
        else:
            counts = _write(creditor, checked, debtors, actor, progress)
        result.debtors_created, result.invoices_created, result.invoices_updated = counts
        events.record("import.completed", creditor_id=creditor.id, actor=actor, rows=len(checked),
                      invoices_created=result.invoices_created, invoices_updated=result.invoices_updated)
        db.session.commit()
    except ServiceError as e:  # a conflict with data already stored, e.g. amount below paid
        db.session.rollback()
        result.debtors_created = result.invoices_created = result.invoices_updated = 0  # none of it stayed
        result.errors.append(RowError(getattr(e, "line", 0), e.field, e.message))
    return result


class _Checks:
    """The API's checks (checks.py, debtors.check_debtor) run once per distinct value: a file
    repeats its debtors, dates and currencies on many rows. Each memo keeps a value's result or
    the Invalid it raised."""

    def __init__(self, default_language: str):
        self.default_language = default_language
        self.debtors: dict = {}
        self.issue_dates: dict = {}
        self.due_dates: dict = {}
        self.currencies: dict = {}

    @staticmethod
    def _run(memo: dict, key, check, *args):
        try:
            memo[key] = found = check(*args)
        except Invalid as e:
            memo[key] = found = e
        return found

    def _debtor(self, values: list[str]) -> tuple[DebtorInput, bool]:
        data = {"name": values[_NAME], "email": values[_EMAIL]}
        for key, i in (("language", _LANGUAGE), ("phone", _PHONE), ("address", _ADDRESS)):
            if values[i]:
                data[key] = values[i]
        return check_debtor(data, self.default_language, "debtor_"), bool(values[_LANGUAGE])


def check_rows(rows, default_language: str, errors: list[RowError]) -> tuple[list[CheckedInvoice], dict]:
    """Each row as the API would check it, plus what only a file can get wrong: an invoice twice,
    one debtor described two ways. Errors in line order, the first one of each row."""
    checks = _Checks(default_language)
    run, debtor_memo, issue_memo, due_memo, currency_memo = (
        checks._run, checks.debtors, checks.issue_dates, checks.due_dates, checks.currencies)
    checked: list[CheckedInvoice] = []
    debtors: dict[str, CheckedDebtor] = {}
    seen_numbers: dict[str, int] = {}
    for line, v in rows:
        try:
            ref = v[_REF]
            if not REF.fullmatch(ref):
                check_ref(ref, "debtor_ref")
            key = (v[_NAME], v[_EMAIL], v[_LANGUAGE], v[_PHONE], v[_ADDRESS])
            found = debtor_memo.get(key) or run(debtor_memo, key, checks._debtor, v)
            if isinstance(found, Invalid):
                raise found.with_traceback(None)  # a memo's Invalid, raised again: no growing traceback
            debtor, language_given = found
            number = v[_NUMBER]
            if not REF.fullmatch(number):
                check_ref(number, "invoice_number")
            issue = issue_memo.get(v[_ISSUE]) or run(issue_memo, v[_ISSUE], check_date, v[_ISSUE], "issue_date")
            if isinstance(issue, Invalid):
                raise issue.with_traceback(None)
            due = due_memo.get(v[_DUE]) or run(due_memo, v[_DUE], check_date, v[_DUE], "due_date")
            if isinstance(due, Invalid):
                raise due.with_traceback(None)
            if due < issue:
                raise Invalid("due_date is before issue_date", "due_date")
            # the currency first, as the API checks it; amounts are nearly all distinct: no memo
            currency = currency_memo.get(v[_CURRENCY]) or run(currency_memo, v[_CURRENCY], currency_of, v[_CURRENCY])
            if isinstance(currency, Invalid):
                raise currency.with_traceback(None)
            amount = amount_of(v[_AMOUNT], currency)
        except Invalid as e:
            errors.append(RowError(line, e.field, e.message))
            continue
        if number in seen_numbers:
            errors.append(RowError(line, "invoice_number", f"same invoice as line {seen_numbers[number]}"))
            continue
        seen_numbers[number] = line
        first = debtors.get(ref)
        if first is None:
            debtors[ref] = CheckedDebtor(line, debtor, language_given)
        elif first.data is not debtor and (first.data, first.language_given) != (debtor, language_given):
            errors.append(RowError(line, "debtor_ref", f"name, e-mail, language, phone or address differs from "
                                                       f"line {first.line} for the same debtor"))
            continue
        checked.append((line, number, ref, issue, due, amount, currency, v[_ISSUE], v[_DUE]))
    return checked, debtors


def _write(creditor, checked: list[CheckedInvoice], debtors: dict[str, CheckedDebtor], actor, progress):
    """Row by row through the services the API uses (SQLite, the embedded default)."""
    existing = {d.ref: d for d in db.session.scalars(
        select(Debtor).where(Debtor.creditor_id == creditor.id, Debtor.ref.in_(list(debtors))))}
    by_ref = {}
    debtors_created = invoices_created = 0
    for ref, d in debtors.items():
        old = existing.get(ref)
        data = d.data
        if old is not None and not d.language_given:
            data = replace(data, language=old.language)
        by_ref[ref], created = _put_debtor(creditor, ref, data, actor)
        debtors_created += created
    for n, (line, number, ref, issue, due, amount, currency, _i, _d) in enumerate(checked, 1):
        try:
            _invoice, created = _put_invoice(creditor, number, InvoiceInput(ref, issue, due, amount, currency),
                                             actor, debtor=by_ref[ref])
        except ServiceError as e:
            e.line = line
            raise
        invoices_created += created
        if progress and (n % 500 == 0 or n == len(checked)):
            progress(n)
    return debtors_created, invoices_created, len(checked) - invoices_created
