"""What bank reconciliation reads of the ledger and how a decided credit reaches it: the matching's
Book for a creditor, and applying a match (a new ledger payment, or a link to the payment already
recorded through the API). Callers own the transaction: nothing here commits."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from ..domain import discount, matching
from ..extensions import db
from ..models import (OPEN_STATUSES, BankTransaction, Debtor, Invoice, OutboxMessage, Payment, PaymentAllocation,
                      Reminder)
from . import ledger

#: the provider of the payments recorded from a bank statement
PROVIDER = "bank"
#: the provider of the transfers a creditor posts through POST /invoices/{n}/payments
OFFLINE = "offline"
#: how far from the booking date a transfer posted through the API may lie to be the same money
LINK_WINDOW = timedelta(days=7)
#: message kinds that ask for money (a thank-you asks for nothing)
ASKING = ("reminder", "formal_notice")


def payment_reference(account: str, identity: str) -> str:
    """The ledger payment's reference: the line's identity on its account, stable across re-imports
    (the unique (creditor, provider, reference) of payments then also holds it once)."""
    return f"{account}/{identity}"[:255]


def load_book(creditor_id: int) -> matching.Book:
    """Three queries: the open invoices (in the Book's allocation order, with their early-payment
    discounts), the debtors' names, and the invoices each debtor's last asking message named (with
    the charges items claimed on them)."""
    inv = Invoice.__table__
    rows = db.session.execute(
        select(inv.c.id, inv.c.debtor_id, inv.c.number, inv.c.amount - inv.c.amount_paid, inv.c.currency,
               inv.c.due_date, inv.c.disputed, inv.c.charged_invoice_id, inv.c.amount, inv.c.discount_percent,
               inv.c.discount_until)
        .where(inv.c.creditor_id == creditor_id, inv.c.status.in_(OPEN_STATUSES), inv.c.amount > inv.c.amount_paid)
        .order_by(inv.c.debtor_id, inv.c.disputed, inv.c.due_date, inv.c.id)).all()
    debtors = [matching.DebtorName(i, n) for i, n in db.session.execute(
        select(Debtor.id, Debtor.name).where(Debtor.creditor_id == creditor_id))]
    last = (select(func.max(OutboxMessage.id)).where(OutboxMessage.creditor_id == creditor_id,
                                                     OutboxMessage.kind.in_(ASKING))
            .group_by(OutboxMessage.debtor_id))
    asked: dict[int, list[int]] = {}
    for debtor_id, invoice_id in db.session.execute(
            select(Reminder.debtor_id, Reminder.invoice_id).where(Reminder.message_id.in_(last))
            .order_by(Reminder.debtor_id, Reminder.invoice_id)):
        asked.setdefault(debtor_id, []).append(invoice_id)
    named = {i for ids in asked.values() for i in ids}
    for r in rows:  # the charges claimed on an asked invoice were asked too (the message's one amount)
        if r.charged_invoice_id in named:
            asked[r.debtor_id].append(r.id)
    # an early-payment discount, for transfers booked by its last day (CONTRACT §10)
    discounts = {r.id: (off, r.discount_until) for r in rows if r.discount_until is not None
                 and (off := discount.discount_amount(r.amount, r.discount_percent)) > 0}
    return matching.Book([tuple(r[:7]) for r in rows], debtors, {d: tuple(ids) for d, ids in asked.items()},
                         discounts)


def unlinked_offline(creditor_id: int, amounts, first: date, last: date) -> list[tuple]:
    """Transfers posted through the API of these amounts near these dates, not linked to a line yet:
    (id, debtor_id, amount, currency, received_on)."""
    linked = select(BankTransaction.id).where(BankTransaction.payment_id == Payment.id).exists()
    return db.session.execute(
        select(Payment.id, Payment.debtor_id, Payment.amount, Payment.currency, Payment.received_on)
        .where(Payment.creditor_id == creditor_id, Payment.provider == OFFLINE, Payment.amount.in_(list(amounts)),
               Payment.received_on.between(first - LINK_WINDOW, last + LINK_WINDOW), ~linked)
        .order_by(Payment.id)).all()


def pick_offline(candidates: list, amount: int, currency: str, booked: date, debtor_id: int | None):
    """The posted transfer that is this line: same amount and currency, within the window, of the
    debtor the line points to (closest date first); with no debtor, only when it is the only one."""
    fit = [c for c in candidates if c.amount == amount and c.currency == currency
           and abs(c.received_on - booked) <= LINK_WINDOW and (debtor_id is None or c.debtor_id == debtor_id)]
    if debtor_id is None and len(fit) != 1:
        return None
    return min(fit, key=lambda c: (abs(c.received_on - booked), c.id), default=None)


def record(tx, debtor_id: int, invoice_ids, actor: str) -> tuple[int, list[tuple[int, int]]]:
    """Record the credit `tx` (a row with creditor_id, account, identity, amount, currency,
    booking_date) through the ledger for these invoices, in this order: dunning stops, invoice.paid
    events follow and the planner thanks. The payment id and its allocations (as `allocations`)."""
    payment_id, _created, lines = ledger.record_payment_lines(
        tx.creditor_id, debtor_id, provider=PROVIDER, reference=payment_reference(tx.account, tx.identity),
        amount=tx.amount, currency=tx.currency, received_on=tx.booking_date,
        invoice_ids=None if invoice_ids is None else list(invoice_ids), actor=actor, commit=False)
    return payment_id, (allocations(payment_id) if lines is None else list(lines))


def allocations(payment_id: int) -> list[tuple[int, int]]:
    """(invoice id, amount) a payment was allocated, in allocation order."""
    return [tuple(r) for r in db.session.execute(
        select(PaymentAllocation.invoice_id, PaymentAllocation.amount)
        .where(PaymentAllocation.payment_id == payment_id).order_by(PaymentAllocation.id))]

