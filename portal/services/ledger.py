"""Debtors, invoices and payments: the creditor's sub-ledger.

Every payment, whatever its path, is recorded here and allocated to invoices in the
same transaction that updates their paid amount and status.
"""
from __future__ import annotations

import hashlib
from datetime import date, timedelta

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.util import identity_key

from ..extensions import db
from ..models import OPEN_STATUSES, Creditor, Debtor, Document, Invoice, Payment, PaymentAllocation, PaymentReversal
from . import Conflict, Invalid, NotFound, charge_items, discounts, events
from .checks import NUMBER, amount_of, check_date, check_ref, check_text
# The input checks are kept in invoice_input.py; their names stay reachable here.
from .invoice_input import KEEP, MAX_PDF_BYTES, InvoiceInput, check_invoice, check_pdf  # noqa: F401
# Debtors are kept in debtors.py; their names stay reachable here, where callers always found them.
from .debtors import KINDS, PROFILES, DebtorInput, _put_debtor, check_debtor, commit_or_conflict, get_debtor, upsert_debtor  # noqa: F401


def status_for(amount: int, paid: int, cancelled: bool = False) -> str:
    if cancelled:
        return "cancelled"
    if paid >= amount:
        return "paid"
    return "partially_paid" if paid > 0 else "open"


# --- invoices ------------------------------------------------------------------------------

def get_invoice(creditor_id: int, number: str) -> Invoice:
    if not isinstance(number, str) or not NUMBER.fullmatch(number):
        raise NotFound("no such invoice", "number")
    invoice = db.session.scalar(select(Invoice).where(Invoice.creditor_id == creditor_id, Invoice.number == number))
    if invoice is None:
        raise NotFound("no such invoice", "number")
    return invoice


#: what an invoice with payments cannot do, by the field at fault, in the order checked
#: (_put_invoice; imports_pg checks the same in SQL)
PAID_INVOICE_RULES = {"currency": "the currency of an invoice with payments cannot change",
                      "debtor_ref": "an invoice with payments cannot move to another debtor",
                      "amount": "amount is below what was already paid"}


def _put_invoice(creditor: Creditor, number: str, d: InvoiceInput, actor: str,
                 debtor: Debtor | None = None) -> tuple[Invoice, bool]:
    if debtor is None:
        debtor = db.session.scalar(select(Debtor).where(Debtor.creditor_id == creditor.id,
                                                        Debtor.ref == d.debtor_ref))
        if debtor is None:
            raise Invalid("no debtor with this reference: create it first", "debtor_ref")
    invoice = db.session.scalar(select(Invoice).where(Invoice.creditor_id == creditor.id,
                                                      Invoice.number == number).with_for_update())
    created = invoice is None
    if created:
        invoice = Invoice(creditor_id=creditor.id, number=number, amount_paid=0, disputed=False)
        db.session.add(invoice)
        before = {}
    else:
        before = {k: getattr(invoice, k) for k in ("debtor_id", "issue_date", "due_date", "amount", "currency", "status",
                                                 "discount_percent", "discount_until")}
        if invoice.amount_paid:
            for key, broken in (("currency", d.currency != invoice.currency),
                                ("debtor_ref", debtor.id != invoice.debtor_id),
                                ("amount", d.amount < invoice.amount_paid)):
                if broken:
                    raise Conflict(PAID_INVOICE_RULES[key], key)
    invoice.debtor_id = debtor.id
    invoice.issue_date, invoice.due_date = d.issue_date, d.due_date
    invoice.amount, invoice.currency = d.amount, d.currency
    if d.discount != KEEP:
        invoice.discount_percent, invoice.discount_until = d.discount or (None, None)
    cancelled = invoice.status == "cancelled" if d.cancelled is None else d.cancelled
    invoice.status = status_for(invoice.amount, invoice.amount_paid, cancelled)
    db.session.flush()
    if d.pdf is not None:
        _attach_pdf(creditor.id, invoice, d.pdf, actor)
    if created:
        events.record("invoice.created", creditor_id=creditor.id, debtor_id=debtor.id, invoice_id=invoice.id,
                      actor=actor, amount=invoice.amount, currency=invoice.currency,
                      due_date=invoice.due_date.isoformat())
    else:
        changed = sorted(k for k, v in before.items() if getattr(invoice, k) != v)
        if changed:
            events.record("invoice.updated", creditor_id=creditor.id, debtor_id=debtor.id,
                          invoice_id=invoice.id, actor=actor, fields=changed)
    return invoice, created


def _attach_pdf(creditor_id: int, invoice: Invoice, pdf: bytes, actor: str) -> None:
    digest = hashlib.sha256(pdf).hexdigest()
    doc = db.session.scalar(select(Document).where(Document.invoice_id == invoice.id))
    if doc is not None and doc.sha256 == digest:
        return
    if doc is None:
        doc = Document(creditor_id=creditor_id, invoice_id=invoice.id)
        db.session.add(doc)
    doc.filename = f"{invoice.number.replace('/', '-')}.pdf"
    doc.content, doc.sha256, doc.source, doc.content_type = pdf, digest, "uploaded", "application/pdf"
    events.record("document.uploaded", creditor_id=creditor_id, debtor_id=invoice.debtor_id,
                  invoice_id=invoice.id, actor=actor, size=len(pdf))


def upsert_invoice(creditor: Creditor, number, data, actor: str = "api") -> tuple[Invoice, bool]:
    number = check_ref(number, "number")
    d = check_invoice(data)
    invoice, created = _put_invoice(creditor, number, d, actor)
    commit_or_conflict()
    return invoice, created


# --- payments ------------------------------------------------------------------------------

def record_payment(creditor_id: int, debtor_id: int, *, provider: str, reference: str, amount: int,
                   currency: str, received_on: date, invoice_ids: list[int] | None, actor: str,
                   commit: bool = True, discount_on: date | None = None) -> tuple[int, bool]:
    """Record money received and allocate it: to the given invoices in that order, else oldest
    due first, principal invoices before charges items (charge_items). What no invoice can take
    stays on the payment as a credit on the debtor's account.
    Idempotent on (creditor, provider, reference): a replay returns the first payment. Returns
    (payment id, created). An invoice it pays in full, early-payment discount deducted as of
    `discount_on` (default: received_on), is settled by the discount (discounts.py).

    Statements built once and run on the session's connection, not ORM objects: every webhook
    that confirms a payment comes through here. The session's pending changes are flushed first
    (Core does not autoflush) and invoices it holds are expired after, to read the new amounts."""
    payment_id, created, _lines = record_payment_lines(
        creditor_id, debtor_id, provider=provider, reference=reference, amount=amount, currency=currency,
        received_on=received_on, invoice_ids=invoice_ids, actor=actor, commit=commit, discount_on=discount_on)
    return payment_id, created


def record_payment_lines(creditor_id: int, debtor_id: int, *, provider: str, reference: str, amount: int,
                         currency: str, received_on: date, invoice_ids: list[int] | None, actor: str,
                         commit: bool = True, discount_on: date | None = None
                         ) -> tuple[int, bool, list[tuple[int, int]] | None]:
    """record_payment, with the (invoice id, amount) lines it settled (its allocations, plus the
    discounts it earned), in allocation order (None on a replay): a statement's import settles
    them in its Book without reading them back."""
    db.session.flush()
    conn = db.session.connection()
    existing = _find_payment(creditor_id, provider, reference)
    if existing is not None:
        return existing, False, None
    key = {"creditor_id": creditor_id, "debtor_id": debtor_id, "currency": currency}
    if invoice_ids is None:
        invoices = {r.id: r for r in conn.execute(_OPEN_INVOICES, key)}
    else:
        invoices = {r.id: r for r in conn.execute(_CHOSEN_INVOICES, {**key, "ids": list(invoice_ids)})}
    # Allocated by position: in the order given, else the query's (principal first, oldest due first).
    order = invoice_ids if invoice_ids is not None else list(invoices)
    discount_on = None if provider in discounts.NOT_MONEY else discount_on or received_on
    lines, grants = discounts.allocate(amount, [i for i in order if i in invoices], invoices, discount_on)
    try:
        payment_id = conn.execute(_NEW_PAYMENT, {
            "creditor_id": creditor_id, "debtor_id": debtor_id, "provider": provider, "reference": reference,
            "amount": amount, "currency": currency, "received_on": received_on}).scalar_one()
    except IntegrityError:
        db.session.rollback()
        existing = _find_payment(creditor_id, provider, reference)
        if existing is not None:
            return existing, False, None
        raise
    rows = [{"type": "payment.received", "creditor_id": creditor_id, "debtor_id": debtor_id,
             "invoice_id": lines[0][0] if len(lines) == 1 else None, "actor": actor,
             "data": {"provider": provider, "reference": reference, "amount": amount, "currency": currency,
                      "received_on": received_on.isoformat(),
                      "allocations": [{"invoice_id": i, "amount": a} for i, a in lines],
                      "unallocated": amount - sum(a for _, a in lines)}}]
    if lines:
        conn.execute(_NEW_ALLOCATION, [{"payment_id": payment_id, "invoice_id": i, "amount": a} for i, a in lines])
        paid = {i: invoices[i].amount_paid + a for i, a in lines}
        if grants:
            granted = discounts.grant(conn, creditor_id=creditor_id, debtor_id=debtor_id, currency=currency,
                                      on=discount_on, grants=grants, invoices=invoices,
                                      payment_id=payment_id, actor=actor)
            rows += granted
            grants = discounts.granted_amounts(granted)
            paid = {i: p + grants.get(i, 0) for i, p in paid.items()}
        conn.execute(_SET_PAID, [{"b_id": i, "b_paid": paid[i], "b_status": status_for(invoices[i].amount, paid[i])}
                                 for i in paid])
        expire_loaded(Invoice, paid)
        charge_items.touch_charged([i for i in paid if invoices[i].kind == "charges" and paid[i] >= invoices[i].amount])
        rows += [{"type": "invoice.paid", "creditor_id": creditor_id, "debtor_id": debtor_id, "invoice_id": i,
                  "actor": "system", "data": {}} for i in paid if paid[i] >= invoices[i].amount]
    events.record_many(rows)
    if commit:
        db.session.commit()
    return payment_id, True, [(i, a + grants.get(i, 0)) for i, a in lines]


_INV, _PAY = Invoice.__table__, Payment.__table__
_OPEN_INVOICES = (select(_INV.c.id, _INV.c.amount, _INV.c.amount_paid, _INV.c.due_date, _INV.c.kind,
                         _INV.c.discount_percent, _INV.c.discount_until)
                  .where(_INV.c.creditor_id == bindparam("creditor_id"), _INV.c.debtor_id == bindparam("debtor_id"),
                         _INV.c.currency == bindparam("currency"), _INV.c.status.in_(OPEN_STATUSES))
                  .order_by(charge_items.PRINCIPAL_FIRST, _INV.c.due_date, _INV.c.id).with_for_update())
_CHOSEN_INVOICES = _OPEN_INVOICES.where(_INV.c.id.in_(bindparam("ids", expanding=True)))
_NEW_PAYMENT = insert(_PAY).returning(_PAY.c.id)
_NEW_ALLOCATION = insert(PaymentAllocation.__table__)
_SET_PAID = (update(_INV).where(_INV.c.id == bindparam("b_id"))
             .values(amount_paid=bindparam("b_paid"), status=bindparam("b_status")))
_FIND_PAYMENT = select(_PAY.c.id).where(_PAY.c.creditor_id == bindparam("c"), _PAY.c.provider == bindparam("p"),
                                        _PAY.c.reference == bindparam("r"))


def expire_loaded(model, ids) -> None:
    """Instances of `model` the session holds for these ids re-read their row when next used
    (after a Core statement changed it behind the ORM's back)."""
    for i in ids:
        obj = db.session.identity_map.get(identity_key(model, i))
        if obj is not None:
            db.session.expire(obj)


def _find_payment(creditor_id: int, provider: str, reference: str) -> int | None:
    return db.session.connection().execute(_FIND_PAYMENT, {"c": creditor_id, "p": provider, "r": reference}).scalar()


def record_offline_payment(creditor: Creditor, number: str, data, actor: str = "api") -> tuple[Payment, bool]:
    """A bank transfer seen in the creditor's accounts, for one invoice, then the charges claimed on
    it (charge_items); what is left is a credit. Idempotent on reference. A transfer a bank statement
    already recorded (same debtor, amount and currency, booked within a week, paying this invoice)
    is that payment: it takes the reference, nothing is recorded twice."""
    invoice = get_invoice(creditor.id, number)
    if not isinstance(data, dict):
        raise Invalid("a JSON object is required")
    amount = amount_of(data.get("amount"), invoice.currency)
    received = check_date(data.get("date"), "date")
    if received > date.today() + timedelta(days=1):
        raise Invalid("date is in the future", "date")
    reference = check_text(data.get("reference"), "reference", 255)
    invoice_id = invoice.id
    existing_id = _find_payment(creditor.id, "offline", reference)
    posted = existing_id is None and _find_posted(creditor.id, reference)
    if posted:
        existing_id = posted
    if existing_id is None:
        if invoice.status == "cancelled":
            raise Conflict("the invoice is cancelled", "number")
        bank_id = _statement_payment(creditor.id, invoice, amount, received)
        if bank_id is not None:
            return _post_reference(creditor.id, bank_id, reference, actor), False
        payment_id, created = record_payment(creditor.id, invoice.debtor_id, provider="offline", reference=reference,
                                             amount=amount, currency=invoice.currency, received_on=received,
                                             invoice_ids=charge_items.with_charges(invoice_id), actor=actor)
        if created:
            return db.session.get(Payment, payment_id), True
        existing_id = payment_id  # recorded by a concurrent request: it must be the same payment too
    existing = db.session.get(Payment, existing_id)
    if existing.provider == "bank":  # posted again: the same transfer, the invoice it paid among others
        paid_here = invoice_id in {a.invoice_id for a in existing.allocations}
        if existing.amount != amount or abs(existing.received_on - received) > STATEMENT_WINDOW or not paid_here:
            raise Conflict("this reference was already used for another payment", "reference")
        return existing, False
    other_invoices = {a.invoice_id for a in existing.allocations} - set(charge_items.with_charges(invoice_id, False))
    if existing.amount != amount or existing.received_on != received or other_invoices:
        raise Conflict("this reference was already used for another payment", "reference")
    return existing, False


#: how far apart the statement's booking date and the date a creditor posts may lie for one transfer
STATEMENT_WINDOW = timedelta(days=7)


def _find_posted(creditor_id: int, reference: str) -> int | None:
    return db.session.scalar(select(Payment.id).where(Payment.creditor_id == creditor_id,
                                                      Payment.posted_reference == reference))


def _statement_payment(creditor_id: int, invoice: Invoice, amount: int, received: date) -> int | None:
    """A payment recorded from a bank statement line that is this transfer, not posted yet: the
    invoice's debtor, the amount and currency, booked within the window, paying this invoice
    (closest date first)."""
    rows = db.session.execute(
        select(Payment.id, Payment.received_on)
        .where(Payment.creditor_id == creditor_id, Payment.provider == "bank", Payment.debtor_id == invoice.debtor_id,
               Payment.amount == amount, Payment.currency == invoice.currency, Payment.posted_reference.is_(None),
               Payment.received_on.between(received - STATEMENT_WINDOW, received + STATEMENT_WINDOW),
               select(PaymentAllocation.id).where(PaymentAllocation.payment_id == Payment.id,
                                                  PaymentAllocation.invoice_id == invoice.id).exists())).all()
    return min(rows, key=lambda r: (abs(r.received_on - received), r.id)).id if rows else None


def _post_reference(creditor_id: int, payment_id: int, reference: str, actor: str) -> Payment:
    """The creditor's reference given to the statement's payment; a concurrent post of the same
    reference (unique per creditor) finds the payment it linked."""
    payment = db.session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update())
    if payment.posted_reference is not None:  # another reference took it meanwhile
        db.session.rollback()
        raise Conflict("this transfer was just posted with another reference: try again", "reference")
    payment.posted_reference = reference
    events.record("payment.reference_posted", creditor_id=creditor_id, debtor_id=payment.debtor_id, actor=actor,
                  reference=reference, payment_reference=payment.reference, amount=payment.amount,
                  currency=payment.currency)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        payment = db.session.get(Payment, _find_posted(creditor_id, reference))
        if payment is None:
            raise
    return payment


REVERSAL_EVENTS = {"refund": "payment.refunded", "chargeback": "payment.charged_back", "failed": "payment.reversed"}


def reverse_payment(payment: Payment, amount: int, *, kind: str, reference: str, actor: str = "system") -> PaymentReversal | None:
    """Take back part of a received payment (refund, chargeback, a direct debit failing late).
    The credit it left on the account goes first, then its allocations, last first: those
    invoices reopen and dunning resumes. The caller holds the payment's row lock and commits;
    None when nothing is left to take back."""
    amount = min(amount, payment.amount - payment.reversed_amount)
    if amount <= 0:
        return None
    allocations = db.session.scalars(select(PaymentAllocation).where(PaymentAllocation.payment_id == payment.id)
                                     .order_by(PaymentAllocation.id.desc())).all()
    credit = payment.amount - payment.reversed_amount - sum(a.amount - a.reversed_amount for a in allocations)
    rest = amount - min(credit, amount)
    reversal = PaymentReversal(payment_id=payment.id, kind=kind, provider=payment.provider, reference=reference,
                               amount=amount)
    db.session.add(reversal)
    db.session.flush()  # unique (provider, reference): a concurrent replay fails here, before any change
    reopened = []
    for alloc in allocations:
        part = min(rest, alloc.amount - alloc.reversed_amount)
        if part <= 0:
            continue
        inv = db.session.scalar(select(Invoice).where(Invoice.id == alloc.invoice_id).with_for_update())
        alloc.reversed_amount += part
        inv.amount_paid -= part
        inv.status = status_for(inv.amount, inv.amount_paid, inv.status == "cancelled")
        reopened.append((inv, part))
        rest -= part
    payment.reversed_amount += amount
    events.record(REVERSAL_EVENTS[kind], creditor_id=payment.creditor_id, debtor_id=payment.debtor_id,
                  invoice_id=reopened[0][0].id if len(reopened) == 1 else None, actor=actor,
                  provider=payment.provider, reference=payment.reference, reversal=reference, amount=amount,
                  currency=payment.currency, reopened=[{"invoice_id": i.id, "amount": a} for i, a in reopened])
    for inv, part in reopened:
        events.record("invoice.reopened", creditor_id=payment.creditor_id, debtor_id=payment.debtor_id,
                      invoice_id=inv.id, actor="system", amount=part, reason=kind)
    return reversal


def debtor_credit(debtor_id: int) -> dict[str, int]:
    """Unallocated money per currency: overpayments held on the debtor's account."""
    allocated = (select(func.coalesce(func.sum(PaymentAllocation.amount - PaymentAllocation.reversed_amount), 0))
                 .where(PaymentAllocation.payment_id == Payment.id).scalar_subquery())
    rows = db.session.execute(
        select(Payment.currency, func.sum(Payment.amount - Payment.reversed_amount - allocated))
        .where(Payment.debtor_id == debtor_id).group_by(Payment.currency)).all()
    return {cur: int(v) for cur, v in rows if v}
