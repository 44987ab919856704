"""Bank reconciliation after the import (CONTRACT §8): the lines for a person, confirming or making
a match (recorded through the ledger in the same transaction), ignoring a line. Each decision is an
Event; each call owns its transaction."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..extensions import db
from ..models import (OPEN_STATUSES, TRANSACTION_STATUSES, TX_IGNORED, TX_MATCHED, TX_OPEN_STATUSES, TX_SUGGESTED,
                      TX_UNMATCHED, BankTransaction, Creditor, Debtor, Invoice, utcnow)
from . import Conflict, Invalid, NotFound, bank_book, events
from .bank_statements import MAX_STATEMENT_BYTES, ImportResult, import_statement  # noqa: F401  (one way in for the views)
from .checks import NUMBER

#: invoices a person may name in one match
MAX_INVOICES = 100


@dataclass
class Line:
    """A transaction as the screens and the API show it."""
    tx: BankTransaction
    debtor_ref: str | None
    debtor_name: str | None
    #: numbers of its invoice_ids, in order
    invoices: list[str]


def list_transactions(creditor_id: int, status: str | None = None, limit: int = 500) -> list[Line]:
    """Newest booking first; one status or all."""
    if status is not None and status not in TRANSACTION_STATUSES:
        raise Invalid(f"status must be one of {', '.join(TRANSACTION_STATUSES)}", "status")
    q = (select(BankTransaction, Debtor.ref, Debtor.name).outerjoin(Debtor, Debtor.id == BankTransaction.debtor_id)
         .where(BankTransaction.creditor_id == creditor_id)
         .order_by(BankTransaction.booking_date.desc(), BankTransaction.id.desc()).limit(limit))
    if status is not None:
        q = q.where(BankTransaction.status == status)
    rows = db.session.execute(q).all()
    ids = {i for tx, _, _ in rows for i in tx.invoice_ids or ()}
    numbers = dict(db.session.execute(select(Invoice.id, Invoice.number).where(
        Invoice.creditor_id == creditor_id, Invoice.id.in_(ids))).all()) if ids else {}
    return [Line(tx, ref, name, [numbers[i] for i in tx.invoice_ids or () if i in numbers]) for tx, ref, name in rows]


def screen(creditor_id: int, recent: int = 50) -> dict[str, list[Line]]:
    """The reconciliation screen's lists: what waits for a person first, then what was decided."""
    return {status: list_transactions(creditor_id, status, limit=500 if status in TX_OPEN_STATUSES else recent)
            for status in (TX_SUGGESTED, TX_UNMATCHED, TX_MATCHED, TX_IGNORED)}


def get_line(creditor_id: int, transaction_id: int) -> Line:
    tx = _transaction(creditor_id, transaction_id)
    debtor = db.session.get(Debtor, tx.debtor_id) if tx.debtor_id else None
    numbers = dict(db.session.execute(select(Invoice.id, Invoice.number).where(
        Invoice.id.in_(tx.invoice_ids or []))).all()) if tx.invoice_ids else {}
    return Line(tx, debtor and debtor.ref, debtor and debtor.name,
                [numbers[i] for i in tx.invoice_ids or () if i in numbers])


def confirm_match(creditor: Creditor, transaction_id: int, invoice_numbers, actor: str,
                  user: str | None = None) -> BankTransaction:
    """Match a suggested or unmatched credit to these invoices (of one debtor, open, in its currency;
    none: its suggestion) and record the payment, oldest due first; what is left is a credit. Linked
    instead to a transfer already posted through the API, when there is one. Idempotent: confirming
    a matched line again with its invoices (or none) changes nothing."""
    numbers = _numbers(invoice_numbers)
    tx = _transaction(creditor.id, transaction_id, lock=True)
    if tx.amount < 0:
        raise Conflict("a debit is not matched to invoices", "id", code="debit")
    if tx.status == TX_MATCHED:
        if not numbers or set(numbers) == set(_numbers_of(creditor.id, tx.invoice_ids)):
            db.session.rollback()
            return tx
        raise Conflict("this transaction is already matched", "invoices", code="already_matched")
    if tx.status == TX_IGNORED and tx.reason == "payout":
        raise Conflict("a payout of a payment provider is not matched: its payments are already recorded",
                       "id", code="payout")
    if numbers:
        invoices = _invoices(creditor.id, numbers, tx.currency)
        reason = "manual"
    elif tx.status == TX_SUGGESTED and tx.debtor_id:
        invoices = _open(creditor.id, tx.invoice_ids or []) if tx.invoice_ids else []
        if tx.invoice_ids and not invoices:
            raise Conflict("the suggested invoices are no longer open: name the invoices", "invoices",
                           code="not_open")
        reason = "confirmed"
    else:
        raise Invalid("name the invoices to match: this transaction has no suggestion", "invoices")
    debtor_id = invoices[0].debtor_id if invoices else tx.debtor_id
    invoice_ids = [i.id for i in sorted(invoices, key=lambda i: (i.due_date, i.id))] or None
    candidates = bank_book.unlinked_offline(creditor.id, [tx.amount], tx.booking_date, tx.booking_date)
    posted = bank_book.pick_offline(candidates, tx.amount, tx.currency, tx.booking_date, debtor_id)
    if posted is not None:
        payment_id, reason = posted.id, "already_recorded"
    else:
        payment_id, _lines = bank_book.record(tx, debtor_id, invoice_ids, actor)
    paid = [i for i, _ in bank_book.allocations(payment_id)]
    tx.status, tx.reason, tx.score, tx.debtor_id = TX_MATCHED, reason, 100, debtor_id
    tx.invoice_ids, tx.payment_id, tx.decided_by, tx.decided_at = paid, payment_id, user or actor, utcnow()
    events.record("bank.transaction_matched", creditor_id=creditor.id, actor=actor, debtor_id=debtor_id,
                  invoice_id=paid[0] if len(paid) == 1 else None, transaction_id=tx.id, reason=reason,
                  amount=tx.amount, currency=tx.currency, booking_date=tx.booking_date.isoformat(),
                  invoice_ids=paid, payment_id=payment_id, user=user)
    db.session.commit()
    return tx


def ignore(creditor: Creditor, transaction_id: int, actor: str, user: str | None = None) -> BankTransaction:
    """Set a line aside (a transfer between the creditor's own accounts, a refund…). A matched line
    is not: its payment is in the ledger. Idempotent."""
    tx = _transaction(creditor.id, transaction_id, lock=True)
    if tx.status == TX_MATCHED:
        raise Conflict("a matched transaction cannot be ignored: its payment is recorded", "id",
                       code="already_matched")
    if tx.status == TX_IGNORED:
        db.session.rollback()
        return tx
    tx.status, tx.reason, tx.decided_by, tx.decided_at = TX_IGNORED, "manual", user or actor, utcnow()
    events.record("bank.transaction_ignored", creditor_id=creditor.id, actor=actor, debtor_id=tx.debtor_id,
                  transaction_id=tx.id, reason="manual", amount=tx.amount, currency=tx.currency,
                  booking_date=tx.booking_date.isoformat(), user=user)
    db.session.commit()
    return tx


def transaction_id(raw: str) -> int:
    """A transaction id as a URL gives it; anything else is not found."""
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise NotFound("no such transaction", "id")
    return int(raw)


def _transaction(creditor_id: int, transaction_id, lock: bool = False) -> BankTransaction:
    if not isinstance(transaction_id, int) or not 0 < transaction_id < 2**31:  # an INTEGER key
        raise NotFound("no such transaction", "id")
    q = select(BankTransaction).where(BankTransaction.id == transaction_id, BankTransaction.creditor_id == creditor_id)
    tx = db.session.scalar(q.with_for_update() if lock else q)
    if tx is None:
        raise NotFound("no such transaction", "id")
    return tx


def _numbers(value) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_INVOICES:
        raise Invalid(f"invoices must be a list of at most {MAX_INVOICES} invoice numbers", "invoices")
    out = []
    for n in value:
        if not isinstance(n, str) or not NUMBER.fullmatch(n.strip()):
            raise Invalid("invoices must be a list of invoice numbers", "invoices")
        if n.strip() not in out:
            out.append(n.strip())
    return out


def _invoices(creditor_id: int, numbers: list[str], currency: str) -> list[Invoice]:
    found = {i.number: i for i in db.session.scalars(select(Invoice).where(
        Invoice.creditor_id == creditor_id, Invoice.number.in_(numbers)).with_for_update())}
    for n in numbers:
        if n not in found:
            raise NotFound(f"no invoice {n}", "invoices")
    invoices = [found[n] for n in numbers]
    if len({i.debtor_id for i in invoices}) > 1:
        raise Invalid("the invoices must all be of one debtor", "invoices", code="several_debtors")
    for i in invoices:
        if i.status not in OPEN_STATUSES:
            raise Conflict(f"invoice {i.number} is {i.status}: nothing is left to pay on it", "invoices",
                           code="not_open")
        if i.currency != currency:
            raise Invalid(f"invoice {i.number} is in {i.currency}, the transaction in {currency}", "invoices",
                          code="currency")
    return invoices


def _open(creditor_id: int, ids) -> list[Invoice]:
    return list(db.session.scalars(select(Invoice).where(Invoice.creditor_id == creditor_id, Invoice.id.in_(ids),
                                                         Invoice.status.in_(OPEN_STATUSES))))


def _numbers_of(creditor_id: int, ids) -> list[str]:
    if not ids:
        return []
    return list(db.session.scalars(select(Invoice.number).where(Invoice.creditor_id == creditor_id,
                                                                Invoice.id.in_(ids))))


__all__ = ["MAX_STATEMENT_BYTES", "Line", "ImportResult", "import_statement", "list_transactions", "get_line", "confirm_match", "ignore",
           "screen", "transaction_id", "TX_OPEN_STATUSES"]
