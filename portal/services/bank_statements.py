"""Importing a bank statement (CONTRACT §8): every line stored once, each new credit matched, the
matched ones recorded through the ledger, all in one transaction: a file that cannot be read
records nothing.

Lines are inserted in batches with ON CONFLICT DO NOTHING on (creditor, account, identity): a line
already stored (a re-import, an overlapping statement, another import of the same file running at
the same time, which waits on the first one's rows) comes back as a duplicate and is never matched
again. Debits are kept, as `ignored` with the reason "debit": never matched, and listed with the
ignored lines."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import BinaryIO, Callable

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from ..domain import matching
from ..extensions import db
from ..gateways.bank import StatementError, read_statement
from ..models import (TX_IGNORED, TX_MATCHED, TX_SUGGESTED, TX_UNMATCHED, BankStatement, BankTransaction, Creditor,
                      utcnow)
from . import Invalid, bank_book, events

#: lines inserted and matched per round trip
BATCH = 1000
#: the largest file the API takes (a year of statements of a busy account)
MAX_STATEMENT_BYTES = 64 * 1024 * 1024


@dataclass
class ImportResult:
    format: str
    transactions: int = 0
    new: int = 0
    duplicates: int = 0
    matched: int = 0
    suggested: int = 0
    unmatched: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def import_statement(creditor: Creditor, stream: BinaryIO, filename: str | None, actor: str,
                     progress: Callable[[int], None] | None = None, user: str | None = None) -> ImportResult:
    """Read, store and match a statement file; commit. `actor`: an Event's actor (creditor, api,
    cli); `user`: the back-office user's e-mail. `progress(bytes read)` after each batch.
    An unreadable file: Invalid (422, code unreadable_statement, field = the line or element at
    fault), nothing recorded."""
    try:
        result = _import(creditor, stream, filename, actor, user, progress or (lambda n: None))
    except StatementError as e:
        db.session.rollback()
        raise Invalid(str(e), e.location, code="unreadable_statement") from None
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    return result


def _import(creditor, stream, filename, actor, user, progress) -> ImportResult:
    statement = read_statement(stream)
    row = BankStatement(creditor_id=creditor.id, format=statement.format, filename=_clip(filename, 255),
                        imported_by=user or actor)
    db.session.add(row)
    db.session.flush()
    result = ImportResult(statement.format)
    # read once, when a batch first has a new credit: a re-import of duplicates never needs it
    get_book = cache(lambda: bank_book.load_book(creditor.id))
    batch = []
    for line in statement.lines:
        batch.append(line)
        if len(batch) >= BATCH:
            _store_and_match(creditor.id, row.id, batch, get_book, result, actor)
            batch = []
            progress(_position(stream))
    _store_and_match(creditor.id, row.id, batch, get_book, result, actor)
    progress(_position(stream))
    result.duplicates = result.transactions - result.new
    row.size = _position(stream)
    for key in ("transactions", "new", "matched", "suggested", "unmatched"):
        setattr(row, key, getattr(result, key))
    events.record("bank.statement_imported", creditor_id=creditor.id, actor=actor, statement_id=row.id,
                  filename=row.filename, user=user, **result.as_dict())
    return result


def _store_and_match(creditor_id: int, statement_id: int, lines, get_book, result: ImportResult, actor: str) -> None:
    if not lines:
        return
    result.transactions += len(lines)
    now = utcnow()
    rows = [{"creditor_id": creditor_id, "statement_id": statement_id, "account": _clip(s.account, 64),
             "identity": _clip(s.identity, 255), "booking_date": s.booking_date, "value_date": s.value_date,
             "amount": s.amount, "currency": s.currency, "counterparty": _clip(s.counterparty, 255),
             "counterparty_account": _clip(s.counterparty_account, 64), "remittance": _clip(s.remittance, None) or "",
             "structured_reference": _clip(s.structured_reference, 64), "bank_reference": _clip(s.bank_reference, 255),
             "end_to_end_id": _clip(s.end_to_end_id, 64),
             "status": TX_IGNORED if s.amount < 0 else TX_UNMATCHED, "reason": "debit" if s.amount < 0 else "none",
             "score": 0, "invoice_ids": [], "created_at": now} for s in lines if s.amount != 0]
    conn = db.session.connection()
    table = BankTransaction.__table__
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (dialect.insert(table).on_conflict_do_nothing(index_elements=["creditor_id", "account", "identity"])
            .returning(table.c.id, table.c.account, table.c.identity))
    new = {(r.account, r.identity): r.id for r in conn.execute(stmt, rows)} if rows else {}
    result.new += len(new)
    credits = [r for r in rows if r["amount"] > 0 and (r["account"], r["identity"]) in new]
    if not credits:
        return
    offline = bank_book.unlinked_offline(creditor_id, {r["amount"] for r in credits},
                                         min(r["booking_date"] for r in credits),
                                         max(r["booking_date"] for r in credits))
    book = get_book()
    decided, logged = [], []
    for r in credits:
        tx_id = new.pop((r["account"], r["identity"]), None)
        if tx_id is None:  # the same line twice in one batch: stored once
            continue
        tx = _Tx(creditor_id, r)
        outcome = matching.match(matching.Credit(r["amount"], r["currency"], r["booking_date"], r["counterparty"],
                                                 r["remittance"], r["structured_reference"]), book)
        change = {"b_id": tx_id, "status": outcome.status, "reason": outcome.reason, "score": outcome.score,
                  "debtor_id": outcome.debtor_id, "invoice_ids": list(outcome.invoice_ids), "payment_id": None}
        pointed = outcome.debtor_id if outcome.status in (TX_MATCHED, TX_SUGGESTED) else None
        posted = (bank_book.pick_offline(offline, r["amount"], r["currency"], r["booking_date"], pointed)
                  if outcome.status != TX_IGNORED else None)
        if posted is not None:  # already in the ledger through the API: linked, not recorded again
            offline.remove(posted)
            change.update(status=TX_MATCHED, reason="already_recorded", score=100, debtor_id=posted.debtor_id,
                          invoice_ids=[i for i, _ in bank_book.allocations(posted.id)], payment_id=posted.id)
        elif outcome.status == TX_MATCHED:
            payment_id, paid = bank_book.record(tx, outcome.debtor_id, outcome.invoice_ids or None, actor)
            for invoice_id, amount in paid:
                book.settle(invoice_id, amount)
            change.update(invoice_ids=[i for i, _ in paid], payment_id=payment_id)
        status = change["status"]
        if status == TX_MATCHED:
            result.matched += 1
        elif status == TX_SUGGESTED:
            result.suggested += 1
        elif status == TX_UNMATCHED:
            result.unmatched += 1
        decided.append(change)
        if status != TX_UNMATCHED:
            ids = change["invoice_ids"]
            logged.append({"type": f"bank.transaction_{status}", "creditor_id": creditor_id, "actor": actor,
                           "debtor_id": change["debtor_id"], "invoice_id": ids[0] if len(ids) == 1 else None,
                           "data": {"transaction_id": tx_id, "reason": change["reason"], "score": change["score"],
                                    "amount": r["amount"], "currency": r["currency"],
                                    "booking_date": r["booking_date"].isoformat(), "invoice_ids": ids,
                                    "payment_id": change["payment_id"], "explain": outcome.explain}})
    db.session.connection().execute(_DECIDE, [{**c, "decided_by": "system", "decided_at": now} for c in decided])
    events.record_many(logged)


_T = BankTransaction.__table__
_DECIDE = (update(_T).where(_T.c.id == bindparam("b_id"))
           .values(status=bindparam("status"), reason=bindparam("reason"), score=bindparam("score"),
                   debtor_id=bindparam("debtor_id"), invoice_ids=bindparam("invoice_ids", type_=_T.c.invoice_ids.type),
                   payment_id=bindparam("payment_id"), decided_by=bindparam("decided_by"),
                   decided_at=bindparam("decided_at")))


class _Tx:
    """The fields of a stored line that bank_book.record reads."""

    def __init__(self, creditor_id: int, row: dict):
        self.creditor_id = creditor_id
        for key in ("account", "identity", "amount", "currency", "booking_date"):
            setattr(self, key, row[key])


def _clip(value, size: int | None):
    """Text as the columns take it: no NUL (PostgreSQL refuses it), at most `size` characters."""
    if value is None:
        return None
    value = str(value).replace("\x00", "")
    return value[:size] if size else value


def _position(stream) -> int:
    try:
        return stream.tell()
    except (OSError, ValueError, AttributeError):
        return 0
