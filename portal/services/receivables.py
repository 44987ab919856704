"""What the back office and the API read of a creditor's receivables: a debtor's invoices, its
open items with their balance per currency, the payments applied to an invoice, and invoice
numbers by id. Read-only; every caller has already checked that the debtor or invoice is the
creditor's own (ledger.get_debtor, ledger.get_invoice)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..extensions import db
from ..models import OPEN_STATUSES, Invoice, Payment, PaymentAllocation


@dataclass
class OpenItems:
    """A debtor's open invoices, the oldest due first, and their balance per currency (invoices
    in several currencies are listed together; their totals stay apart)."""
    invoices: list[Invoice]
    balances: dict[str, int]


def debtor_invoices(debtor_id: int) -> list[Invoice]:
    """Every invoice of the debtor, the latest due first."""
    return list(db.session.scalars(select(Invoice).where(Invoice.debtor_id == debtor_id)
                                   .order_by(Invoice.due_date.desc(), Invoice.id.desc())))


def open_items(debtor_id: int) -> OpenItems:
    invoices = list(db.session.scalars(select(Invoice).where(Invoice.debtor_id == debtor_id,
                                                             Invoice.status.in_(OPEN_STATUSES))
                                       .order_by(Invoice.due_date, Invoice.id)))
    balances: dict[str, int] = {}
    for invoice in invoices:
        balances[invoice.currency] = balances.get(invoice.currency, 0) + invoice.balance
    return OpenItems(invoices, balances)


def allocations(invoice_id: int) -> list[tuple[PaymentAllocation, Payment]]:
    """The payments applied to an invoice, in the order they were received."""
    return list(db.session.execute(
        select(PaymentAllocation, Payment).join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(PaymentAllocation.invoice_id == invoice_id).order_by(Payment.received_on)).all())


def split(payment: Payment) -> tuple[int, int]:
    """(allocated, unallocated): how much of a payment went to invoices, and the rest, held as
    the debtor's credit."""
    allocated = sum(a.amount for a in payment.allocations)
    return allocated, payment.amount - allocated


def invoice_numbers(creditor_id: int, invoice_ids) -> dict[int, str]:
    """{invoice id: number} for those of the ids that are the creditor's invoices."""
    ids = set(invoice_ids)
    if not ids:
        return {}
    return dict(db.session.execute(select(Invoice.id, Invoice.number).where(
        Invoice.creditor_id == creditor_id, Invoice.id.in_(ids))).all())
