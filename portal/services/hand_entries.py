"""A payment or a credit note recorded by hand from the debtor's page: the money or the credit goes
through the one ledger (ledger.record_offline_payment / record_payment), with its checks and its
events, so dunning stops and the thank-you follows exactly as for POST /invoices/{n}/payments.
Allocated to the invoices the person chose, in that order (each with the charges claimed on it),
else the debtor's open invoices oldest first."""
from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from ..extensions import db
from ..models import OPEN_STATUSES, Creditor, Debtor, Invoice, Payment, Reminder, utcnow
from . import Invalid, charge_items, events, ledger
from .atomic import atomic
from ..domain.money import exponent
from .checks import amount_of, check_date, check_storable

#: how the money came: said in the event (the ledger's provider stays "offline", as over the API)
METHODS = ("transfer", "cheque", "cash", "card", "other")
CREDIT_NOTE = "credit_note"  # the ledger's provider for a credit note (as disputes.resolve)
_SPACES = re.compile(r"[\s\u00a0\u202f]")


def typed_amount(value, currency: str) -> int:
    """An amount as people type it: "1 234,56" or "1234.56"; more than zero."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid("an amount is required", "amount", code="amount_required")
    text = _SPACES.sub("", value).replace(",", ".")
    if re.fullmatch(r"0*\.?0*", text):
        raise Invalid("the amount must be more than zero", "amount", code="amount_invalid")
    amount = amount_of(text, currency)
    if amount <= 0:
        raise Invalid("the amount must be more than zero", "amount", code="amount_invalid")
    return amount


def _chosen(debtor: Debtor, numbers) -> list[Invoice]:
    """The debtor's open invoices among `numbers`, in the order given; none chosen: []."""
    numbers = [n for n in (numbers or []) if isinstance(n, str) and n]
    if not numbers:
        return []
    found = {i.number: i for i in db.session.scalars(select(Invoice).where(
        Invoice.debtor_id == debtor.id, Invoice.number.in_(numbers), Invoice.status.in_(OPEN_STATUSES)))}
    if len(found) != len(set(numbers)):
        raise Invalid("choose among the debtor's open invoices", "invoices", code="invoices_unknown")
    invoices = [found[n] for n in dict.fromkeys(numbers)]
    if len({i.currency for i in invoices}) > 1:
        raise Invalid("invoices in different currencies are recorded separately", "invoices", code="currencies")
    return invoices


def _currency(creditor: Creditor, debtor: Debtor, invoices: list[Invoice]) -> str:
    if invoices:
        return invoices[0].currency
    return db.session.scalar(select(Invoice.currency).where(Invoice.debtor_id == debtor.id,
                                                            Invoice.status.in_(OPEN_STATUSES))
                             .order_by(Invoice.due_date).limit(1)) or creditor.currency


def _text(value, field: str, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field} is required", field, code=f"{field}_required")
    if len(value.strip()) > max_len:
        raise Invalid(f"{field} is longer than {max_len} characters", field, code=f"{field}_too_long")
    return check_storable(value.strip(), field)


def _received(value, today: date) -> date:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("a date is required", "date", code="date_required")
    day = check_date(value.strip(), "date")
    if day > today:
        raise Invalid("the date is in the future", "date", code="date_future")
    return day


def _targets(invoices: list[Invoice]) -> list[int] | None:
    return [i for inv in invoices for i in charge_items.with_charges(inv.id)] if invoices else None


@atomic
def record_payment(creditor: Creditor, debtor: Debtor, *, amount, received, method, reference, invoices,
                   today: date, user: str) -> Payment:
    """Money received outside the portal. One invoice chosen: exactly the API's path (a transfer
    a bank statement already recorded is linked, not recorded twice). A reference already used
    is refused, nothing recorded. Events: the ledger's payment.received (and invoice.paid), and
    payment.entered (how the money came, who entered it)."""
    chosen = _chosen(debtor, invoices)
    value = typed_amount(amount, _currency(creditor, debtor, chosen))
    day = _received(received, today)
    if method not in METHODS:
        raise Invalid("choose how the money came", "method", code="method_invalid")
    reference = _text(reference, "reference", 255)
    if ledger._find_payment(creditor.id, "offline", reference) or ledger._find_posted(creditor.id, reference):
        raise Invalid("this reference was already used for another payment", "reference", code="reference_used")
    currency = _currency(creditor, debtor, chosen)
    if len(chosen) == 1:
        payment, _created = ledger.record_offline_payment(creditor, chosen[0].number, {
            "amount": _plain(value, currency), "date": day.isoformat(), "reference": reference}, actor="creditor")
    else:
        payment_id, _created = ledger.record_payment(
            creditor.id, debtor.id, provider="offline", reference=reference, amount=value, currency=currency,
            received_on=day, invoice_ids=_targets(chosen), actor="creditor", commit=False)
        payment = db.session.get(Payment, payment_id)
    events.record("payment.entered", creditor_id=creditor.id, debtor_id=debtor.id, actor="creditor", user=user,
                  method=method, reference=reference, amount=value, currency=currency, received_on=day.isoformat(),
                  invoices=[i.number for i in chosen] or None, payment_id=payment.id)
    db.session.commit()
    return payment


def _plain(value: int, currency: str) -> str:
    """Minor units back to the API's decimal string."""
    places = exponent(currency)
    if not places:
        return str(value)
    return f"{value // 10 ** places}.{value % 10 ** places:0{places}d}"


@atomic
def record_credit_note(creditor: Creditor, debtor: Debtor, *, amount, number, invoices, today: date,
                       user: str) -> int:
    """A credit note issued by the creditor's invoicing system, entered here: credited through the
    ledger (provider credit_note, its number the reference), at most what the invoices it goes
    to still owe. An invoice it settles gets no thank-you for a payment (as disputes.resolve).
    Events: the ledger's payment.received (and invoice.paid), credit_note.entered."""
    chosen = _chosen(debtor, invoices)
    currency = _currency(creditor, debtor, chosen)
    value = typed_amount(amount, currency)
    number = _text(number, "number", 64)
    if ledger._find_payment(creditor.id, CREDIT_NOTE, number):
        raise Invalid("this credit note was already recorded", "number", code="number_used")
    targets = chosen or list(db.session.scalars(select(Invoice).where(
        Invoice.debtor_id == debtor.id, Invoice.currency == currency, Invoice.status.in_(OPEN_STATUSES))))
    owed = sum(i.balance for i in targets)
    if value > owed:
        raise Invalid("a credit note cannot exceed what the invoices still owe", "amount", code="amount_over_balance")
    payment_id, _created = ledger.record_payment(
        creditor.id, debtor.id, provider=CREDIT_NOTE, reference=number, amount=value, currency=currency,
        received_on=today, invoice_ids=_targets(chosen), actor="creditor", commit=False)
    settled = [i for i in targets if i.status == "paid" and i.kind == "invoice"]
    thanked = set(db.session.scalars(select(Reminder.invoice_id).where(
        Reminder.invoice_id.in_([i.id for i in settled]), Reminder.step_code == "thank_you"))) if settled else set()
    for inv in settled:
        if inv.id not in thanked:  # settled by a credit, not by money: no "we have received your payment"
            db.session.add(Reminder(creditor_id=creditor.id, debtor_id=debtor.id, invoice_id=inv.id,
                                    step_code="thank_you", position=0, dunning_date=today, status="cancelled",
                                    decided_at=utcnow()))
    events.record("credit_note.entered", creditor_id=creditor.id, debtor_id=debtor.id, actor="creditor", user=user,
                  number=number, amount=value, currency=currency, invoices=[i.number for i in chosen] or None,
                  payment_id=payment_id)
    db.session.commit()
    return payment_id

