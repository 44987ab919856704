"""Promises to pay: a debtor promises a date (within the creditor's limit) and optionally an
amount for one open invoice; while the promise is live the invoice is not reminded. The daily
settlement (kept / broken / cancelled) is `dunning_jobs.promises.settle`.

Every query here filters by the session's debtor id (through `account.invoice_for`)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..domain.calendar import today_for
from ..models import Creditor, Debtor, Dispute, Invoice, PaymentPromise
from . import Conflict, Invalid, account, events
from .checks import amount_of, check_date

MAX_DAYS_RANGE = (1, 180)
#: the Conflict's message for each refusal code of `account.promise_refusal`
REFUSALS = {"not_open": "the invoice is not open", "disputed": "the invoice is under dispute",
            "payment_in_flight": "a payment for this invoice is on its way",
            "already_promised": "a promise is already live for this invoice"}


@dataclass
class Offer:
    """What the promise form needs: the invoice and the dates the debtor may choose from."""
    debtor: Debtor
    creditor: Creditor
    invoice: Invoice
    earliest: date
    latest: date


def offer(debtor_id: int, number: str) -> Offer:
    """The debtor's own open invoice that can take a promise; Conflict when it cannot (paid,
    cancelled, under dispute, a payment on its way, already promised), NotFound when it is not theirs."""
    invoice = account.invoice_for(debtor_id, number)
    debtor = invoice.debtor
    creditor = db.session.get(Creditor, invoice.creditor_id)
    refusal = account.promise_refusal(
        invoice, promised=live_promise(debtor_id, invoice.id) is not None,
        in_flight=account.payment_in_flight(invoice.id),
        dispute_open=db.session.scalar(select(Dispute.id).where(
            Dispute.invoice_id == invoice.id, Dispute.debtor_id == debtor_id, Dispute.status == "open")) is not None)
    if refusal is not None:
        raise Conflict(REFUSALS[refusal], "invoice", code=refusal)
    today = today_for(creditor)
    return Offer(debtor, creditor, invoice, today, today + timedelta(days=creditor.promise_max_days))


def live_promise(debtor_id: int, invoice_id: int) -> PaymentPromise | None:
    return db.session.scalar(select(PaymentPromise).where(
        PaymentPromise.debtor_id == debtor_id, PaymentPromise.invoice_id == invoice_id,
        PaymentPromise.status == "live"))


def make(debtor_id: int, number: str, promised_date, amount=None, actor: str = "debtor") -> PaymentPromise:
    """Record the debtor's promise to pay `number` by `promised_date` (ISO string), and `amount`
    (decimal string, a comma accepted; blank = the whole balance). One transaction. `actor`:
    "creditor" when a collector records a promise made on the phone (call_tasks)."""
    o = offer(debtor_id, number)
    day = check_date(promised_date.strip() if isinstance(promised_date, str) else promised_date, "date")
    if not o.earliest <= day <= o.latest:
        raise Invalid(f"the date must be between {o.earliest.isoformat()} and {o.latest.isoformat()}", "date")
    raw = str(amount or "").strip().replace(",", ".")
    minor = None if raw == "" else amount_of(raw, o.invoice.currency, "amount")
    if minor is not None and not 0 < minor <= o.invoice.balance:
        raise Invalid("the amount must be positive and at most the balance", "amount")
    promise = PaymentPromise(creditor_id=o.creditor.id, debtor_id=debtor_id, invoice_id=o.invoice.id,
                             promised_date=day, amount=minor, paid_before=o.invoice.amount_paid, status="live")
    try:
        with db.session.begin_nested():  # the partial unique index: one live promise per invoice
            db.session.add(promise)
    except IntegrityError:
        db.session.rollback()
        raise Conflict(REFUSALS["already_promised"], "invoice", code="already_promised") from None
    events.record("promise.made", creditor_id=o.creditor.id, actor=actor, debtor_id=debtor_id,
                  invoice_id=o.invoice.id, promise_id=promise.id, date=day.isoformat(), amount=minor,
                  balance=o.invoice.balance, currency=o.invoice.currency)
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent promise committed between our flush and commit
        db.session.rollback()
        raise Conflict(REFUSALS["already_promised"], "invoice", code="already_promised") from None
    return promise


def set_max_days(creditor: Creditor, value, user: str) -> None:
    """How far ahead debtors may promise to pay, in days (1 to 180)."""
    raw = str(value if value is not None else "").strip()
    if not re.fullmatch(r"[0-9]{1,4}", raw):
        raise Invalid("a whole number of days is required", "promise_max_days")
    days = int(raw)
    low, high = MAX_DAYS_RANGE
    if not low <= days <= high:
        raise Invalid(f"between {low} and {high} days", "promise_max_days")
    creditor.promise_max_days = days
    events.record("creditor.promise_settings_updated", creditor_id=creditor.id, actor="creditor", user=user,
                  promise_max_days=days)
    db.session.commit()
