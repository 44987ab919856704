"""Late-payment charges as open items of their own (DESIGN "Dunning model"; issue 14 "One amount").

When a message claims charges (interest + the fixed indemnity), they become an Invoice row with
kind 'charges', charged_invoice_id = the invoice they were claimed on, number
"<invoice number[:56]>+F<n>" ('+' never appears in a creditor's own numbers), issued and due the
day of that message, for the same debtor and currency. So they are payable like any open item
(portal, card, direct debit, transfer), and paying exactly what the message asked settles it.

- Allocated after the principal: a payment the payer did not spread himself goes to the principal
  invoices first, oldest due first, then to the charges items (`PRINCIPAL_FIRST`, used by the
  ledger, the portal's selection and automatic collection). A payment recorded against one invoice
  (the API's POST /invoices/{n}/payments) pays that invoice, then the charges claimed on it.
- Waivable by the creditor from the back office (`waive`), never through the API.
- No thank-you of its own and no reminder (the planner): the invoice they were claimed on is thanked
  once its charges are paid or waived too; settling or waiving them touches that invoice
  (`touch_charged`) so the planner's "paid recently" window sees it.
- People read "Late-payment charges — invoice F-2026-001" (`label`), never the technical number;
  a charges item has no document.
"""
from __future__ import annotations

from contextlib import nullcontext
from datetime import date

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import case, func, select, update

from ..extensions import db
from ..models import OPEN_STATUSES, Invoice, utcnow
from . import Conflict, Invalid, NotFound, events
from .checks import NUMBER

KIND = "charges"
#: longest prefix of the charged invoice's number kept in a charges item's number (64 - "+F" - 6 digits)
PREFIX_MAX = 56
#: ORDER BY term: principal invoices before charges items (then the caller's own order)
PRINCIPAL_FIRST = case((Invoice.kind == KIND, 1), else_=0)


def claim(creditor, debtor, invoice: Invoice, amount: int, day: date, actor: str = "system") -> Invoice:
    """A charges item of `amount` (minor units) claimed on `invoice` by a message of `day`, in the
    caller's transaction (the composer's, which commits it with the message that claims it).
    `creditor` and `debtor` are the invoice's (objects or ids); no charges, no item: amount > 0."""
    creditor_id, debtor_id = getattr(creditor, "id", creditor), getattr(debtor, "id", debtor)
    if not isinstance(amount, int) or amount <= 0:
        raise Invalid("charges are a positive amount in minor units", "amount")
    if (creditor_id, debtor_id) != (invoice.creditor_id, invoice.debtor_id) or invoice.kind == KIND:
        raise Conflict("charges are claimed on an invoice of this creditor and debtor", "invoice")
    # Items claimed earlier are in the database (each flushes itself below): the count needs no
    # autoflush, which would write the caller's batch (composing's) one message at a time.
    with db.session.no_autoflush:
        n = 1 + db.session.scalar(select(func.count()).where(Invoice.charged_invoice_id == invoice.id))
    item = Invoice(creditor_id=creditor_id, debtor_id=debtor_id, number=f"{invoice.number[:PREFIX_MAX]}+F{n}",
                   issue_date=day, due_date=day, amount=amount, amount_paid=0, currency=invoice.currency,
                   status="open", disputed=False, kind=KIND, charged_invoice_id=invoice.id)
    db.session.add(item)
    db.session.flush([item])  # its id, for the event; the caller's other changes wait for its flush
    events.record("charges.claimed", creditor_id=creditor_id, debtor_id=debtor_id, invoice_id=item.id, actor=actor,
                  charged_invoice=invoice.number, amount=amount, currency=invoice.currency, day=day.isoformat())
    return item


# --- what people read ---------------------------------------------------------------------------

def charged_number(item: Invoice) -> str:
    """The number of the invoice a charges item was claimed on: its number's prefix, unless that
    was cut (a number over 56 characters), then the invoice's own."""
    prefix = item.number.rpartition("+F")[0]
    if len(prefix) < PREFIX_MAX:
        return prefix
    return db.session.scalar(select(Invoice.number).where(Invoice.id == item.charged_invoice_id)) or prefix


def describe(number: str, debtor_kind: str | None = None, language: str | None = None) -> str:
    """What a charges item is called for people, in the current locale (or `language`): a consumer
    owes late-payment interest only, others interest and the fixed recovery indemnity."""
    with force_locale(language) if language else nullcontext():
        if debtor_kind == "consumer":
            return _("Late-payment interest — invoice %(number)s", number=number)
        return _("Late-payment charges — invoice %(number)s", number=number)


def label(item: Invoice, language: str | None = None) -> str:
    """An open item's name for people: an invoice's number, a charges item's description."""
    if item.kind != KIND:
        return item.number
    return describe(charged_number(item), item.debtor.kind, language)


# --- reading ------------------------------------------------------------------------------------

def of_invoice(invoice_id: int, only_open: bool = False) -> list[Invoice]:
    """The charges items claimed on an invoice, in the order claimed."""
    q = select(Invoice).where(Invoice.charged_invoice_id == invoice_id).order_by(Invoice.id)
    if only_open:
        q = q.where(Invoice.status.in_(OPEN_STATUSES))
    return list(db.session.scalars(q))


def open_by_invoice(invoice_ids: list[int]) -> dict[int, list[Invoice]]:
    """Per invoice, the charges items claimed on it that are still to be paid, in the order
    claimed: of_invoice(only_open=True) for several invoices in one statement (composing)."""
    found: dict[int, list[Invoice]] = {}
    if invoice_ids:
        for item in db.session.scalars(select(Invoice).where(
                Invoice.charged_invoice_id.in_(invoice_ids), Invoice.status.in_(OPEN_STATUSES))
                .order_by(Invoice.id)):
            found.setdefault(item.charged_invoice_id, []).append(item)
    return found


def waivable(creditor_id: int, number: str) -> tuple[Invoice, list[Invoice]]:
    """(the creditor's invoice or charges item of that number, the open charges items the creditor
    may waive there: the invoice's, or that item if still open)."""
    item = _find(creditor_id, number)
    if item.kind == KIND:
        return item, [item] if item.status in OPEN_STATUSES else []
    return item, of_invoice(item.id, only_open=True)


def _find(creditor_id: int, number: str, lock: bool = False) -> Invoice:
    if not isinstance(number, str) or not NUMBER.fullmatch(number):
        raise NotFound("no such invoice", "number")
    q = select(Invoice).where(Invoice.creditor_id == creditor_id, Invoice.number == number)
    item = db.session.scalar(q.with_for_update() if lock else q)
    if item is None:
        raise NotFound("no such invoice", "number")
    return item


def with_charges(invoice_id: int, only_open: bool = True) -> list[int]:
    """The invoice's id, then those of the charges claimed on it: what a payment named against
    that invoice pays, in that order."""
    return [invoice_id, *(c.id for c in of_invoice(invoice_id, only_open))]


# --- settling ------------------------------------------------------------------------------------

def touch_charged(charges_ids, connection=None) -> None:
    """Charges items just settled or waived: the invoices they were claimed on count as changed now,
    so the planner's thank-you (once per invoice paid recently, and only once its charges are
    closed) sees them even when the principal was paid long before."""
    ids = list(charges_ids)
    if ids:
        inv = Invoice.__table__
        claimed_on = select(inv.c.charged_invoice_id).where(inv.c.id.in_(ids), inv.c.kind == KIND).scalar_subquery()
        (connection or db.session.connection()).execute(
            update(inv).where(inv.c.id.in_(claimed_on)).values(updated_at=utcnow()))


def waive(creditor_id: int, number: str, user: str) -> Invoice:
    """The creditor forgoes a charges item: it leaves the debtor's balance. Unpaid, it is cancelled.
    Partly paid, the rest is waived and what was paid stays paid: its amount becomes what was paid
    and it is settled (status 'paid'), so the payment keeps its allocation and the statement
    balances. Event charges.waived (who, how much). Only charges items; a closed one is refused."""
    item = _find(creditor_id, number, lock=True)
    if item.kind != KIND:
        raise NotFound("no such charges", "number")
    if item.status not in OPEN_STATUSES:
        raise Conflict("these charges are no longer open", "number")
    waived, original = item.balance, item.amount
    if item.amount_paid:
        item.amount, item.status = item.amount_paid, "paid"
    else:
        item.status = "cancelled"
    db.session.flush()
    touch_charged([item.id])
    events.record("charges.waived", creditor_id=creditor_id, debtor_id=item.debtor_id, invoice_id=item.id,
                  actor="creditor", user=user, amount=waived, original_amount=original, currency=item.currency,
                  charged_invoice=charged_number(item))
    db.session.commit()
    return item
