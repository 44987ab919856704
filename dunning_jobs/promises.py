"""Settling promises to pay at the start of a creditor's dunning day, before anything is planned.

A live promise becomes
- cancelled when its invoice was cancelled;
- kept when its invoice is paid, or, for a promised amount, when what was paid since the
  promise (amount_paid - paid_before) reaches it; the planner's thank-you note follows;
- broken when its date has passed (promised_date < day) without that: the creditor's users are
  told (alerts.notify, same transaction) and the planner resumes dunning this very day, with the
  most advanced step whose day has come.
A promise on an invoice under dispute is not broken while the dispute is open: the dispute, not
the promise, is what holds the reminders then.

Each transition is a conditional UPDATE (status still 'live'), so a second run, or a concurrent
one, settles nothing twice; the creditor's advisory lock serialises them on PostgreSQL.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from babel.dates import format_date
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update

from portal.domain.money import format_money
from portal.extensions import db
from portal.models import Creditor, Invoice, PaymentPromise, utcnow
from portal.services import alerts, events

from .planner import lock_creditor


@dataclass
class Settled:
    kept: int = 0
    broken: int = 0
    cancelled: int = 0


def outcome(promise: PaymentPromise, invoice: Invoice, day: date) -> str | None:
    """What a live promise becomes on `day`, or None while it stays live."""
    if invoice.status == "cancelled":
        return "cancelled"
    if invoice.status == "paid" or (promise.amount is not None
                                    and invoice.amount_paid - promise.paid_before >= promise.amount):
        return "kept"
    if promise.promised_date < day and not invoice.disputed:
        return "broken"
    return None


def _transition(promise_id: int, status: str, now) -> bool:
    table = PaymentPromise.__table__
    done = db.session.execute(update(table).where(table.c.id == promise_id, table.c.status == "live")
                              .values(status=status, settled_at=now).returning(table.c.id)).all()
    return bool(done)


def _detail(creditor: Creditor, promise: PaymentPromise, invoice: Invoice) -> str:
    with force_locale(creditor.language):
        when = format_date(promise.promised_date, format="long", locale=creditor.language)
        if promise.amount is None:
            return _("Promised to pay the balance by %(date)s.", date=when)
        return _("Promised to pay %(amount)s by %(date)s; received since: %(paid)s.", date=when,
                 amount=format_money(promise.amount, invoice.currency, creditor.language),
                 paid=format_money(max(0, invoice.amount_paid - promise.paid_before), invoice.currency,
                                   creditor.language))


def settle(creditor: Creditor, day: date) -> Settled:
    """Settle this creditor's live promises for `day` (its calendar date); one transaction."""
    lock_creditor(creditor.id)
    now = utcnow()
    result = Settled()
    rows = db.session.execute(
        select(PaymentPromise, Invoice).join(Invoice, Invoice.id == PaymentPromise.invoice_id)
        .where(PaymentPromise.creditor_id == creditor.id, PaymentPromise.status == "live")
        .order_by(PaymentPromise.id)).all()
    for promise, invoice in rows:
        status = outcome(promise, invoice, day)
        if status is None or not _transition(promise.id, status, now):
            continue
        paid_since = max(0, invoice.amount_paid - promise.paid_before)
        events.record(f"promise.{status}", creditor_id=creditor.id, actor="system", debtor_id=promise.debtor_id,
                      invoice_id=invoice.id, promise_id=promise.id, date=promise.promised_date.isoformat(),
                      amount=promise.amount, paid_since=paid_since, currency=invoice.currency,
                      dunning_date=day.isoformat())
        if status == "broken":
            alerts.notify("promise_broken", creditor_id=creditor.id, debtor_id=promise.debtor_id,
                          numbers=[invoice.number], amount=invoice.balance, currency=invoice.currency,
                          detail=_detail(creditor, promise, invoice))
        setattr(result, status, getattr(result, status) + 1)
    db.session.commit()
    return result
